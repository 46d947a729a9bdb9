/**
 * The JetStream side of sagas: the connection to NATS (`NATS_URL` and its credentials file, or the embedded
 * nats-server) and the two streams — aggregate events in (`AGGREGATE_EVENTS`, subjects
 * `{prefix}.{tenant}.{aggregateType}.{eventType}`), effect results and saga facts out (`WORKFLOW_EVENTS`).
 * Streams are created when missing if `NATS_CREATE_STREAMS` is on (local runs); otherwise a missing stream stops
 * the start, naming it. The subject helpers derive what the bridge consumes from the sagas' own triggers.
 */
import { readFile } from 'node:fs/promises';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import { connect, credsAuthenticator, nanos, type NatsConnection } from '@nats-io/transport-node';
import { natsServersOf, type AppConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { AggregateEvent, SagaDefinition } from '../workflows/sagas/definitions.js';
import { SAGAS } from '../workflows/sagas/registry.js';

// Stryker disable all: connecting and the streams' set-up talk to NATS; test/integration/nats.test.ts exercises them
// on a real server, the mutation run covers the pure subject helpers below.

/** The two streams of sagas, by role. */
export const SAGA_STREAM_ROLES = ['aggregate', 'workflow'] as const;
export type SagaStreamRole = (typeof SAGA_STREAM_ROLES)[number];

/** The variables that name each stream and its subjects, for messages an operator can act on. */
const VARIABLES: Record<SagaStreamRole, { name: string; subjects: string }> = {
  aggregate: { name: 'NATS_AGGREGATE_STREAM', subjects: 'NATS_AGGREGATE_SUBJECTS' },
  workflow: { name: 'NATS_WORKFLOW_STREAM', subjects: 'NATS_WORKFLOW_SUBJECTS' },
};

/** What {@link ensureSagaStreams} found for one stream. */
export interface SagaStreamStatus {
  role: SagaStreamRole;
  name: string;
  /** The stream's subjects as the server has them. */
  subjects: string[];
  /** Whether this call created it. */
  created: boolean;
}

/** A stream that is missing (and may not be created) or does not capture the configured subjects. */
export class SagaStreamsError extends Error {
  override name = 'SagaStreamsError';
  constructor(readonly problems: string[]) {
    super(`JetStream streams of sagas are not usable:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Window in which JetStream drops a repeated `Nats-Msg-Id` (the egress' retries), as the server's default. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;

/**
 * Connects to NATS as configured: `NATS_URL` with `NATS_CREDENTIALS_FILE` when set, else the embedded server.
 * Reconnects without limit once connected (a long-lived process outlives a server restart).
 * @throws Error naming `NATS_CREDENTIALS_FILE` when it cannot be read or parsed, or naming the servers when none
 *   accepts the first connection.
 */
export async function connectNats(config: AppConfig, options: { name: string }): Promise<NatsConnection> {
  const servers = natsServersOf(config);
  const authenticator = config.nats.credentialsFile ? await credentialsOf(config.nats.credentialsFile) : undefined;
  try {
    return await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      ...(authenticator && { authenticator }),
    });
  } catch (error) {
    const where = config.nats.url ? `NATS_URL ${servers.join(', ')}` : `the embedded nats-server ${servers.join('')}`;
    throw new Error(`Cannot connect to ${where}: ${(error as Error).message}`, { cause: error });
  }
}

/** The authenticator of a credentials file, parsed once here so that a broken file is named at start-up. */
async function credentialsOf(path: string): Promise<ReturnType<typeof credsAuthenticator>> {
  let contents: Uint8Array;
  try {
    contents = await readFile(path);
  } catch (error) {
    throw new Error(`NATS_CREDENTIALS_FILE ${path} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const authenticator = credsAuthenticator(contents);
  try {
    authenticator('');
  } catch (error) {
    throw new Error(
      `NATS_CREDENTIALS_FILE ${path} is not a NATS credentials file (a user JWT and an NKey seed, as nsc writes it)`,
      { cause: error },
    );
  }
  return authenticator;
}

/**
 * Makes sure both streams exist and capture the configured subjects: a missing one is created (file storage, one
 * replica, limits retention) when `createStreams` is on; otherwise, and for an existing stream that does not
 * capture a configured subject, every problem is reported at once. Safe to run from several processes at once.
 * @throws SagaStreamsError naming each stream and the variable to fix.
 */
export async function ensureSagaStreams(
  jsm: JetStreamManager,
  nats: AppConfig['nats'],
  logger?: Logger,
): Promise<SagaStreamStatus[]> {
  const problems: string[] = [];
  const statuses: SagaStreamStatus[] = [];
  for (const role of SAGA_STREAM_ROLES) {
    const wanted = role === 'aggregate' ? nats.aggregateStream : nats.workflowStream;
    const existing = await streamInfo(jsm, wanted.name);
    if (!existing && !nats.createStreams) {
      problems.push(
        `stream ${wanted.name} (${VARIABLES[role].name}) does not exist and NATS_CREATE_STREAMS is off: create it ` +
          `with subjects ${wanted.subjects.join(', ')}, or set NATS_CREATE_STREAMS=true`,
      );
      continue;
    }
    let info = existing;
    if (!info) {
      try {
        info = await createStream(jsm, wanted.name, wanted.subjects);
      } catch (error) {
        problems.push(
          `stream ${wanted.name} (${VARIABLES[role].name}) could not be created: ${(error as Error).message}`,
        );
        continue;
      }
    }
    const created = !existing;
    if (created) logger?.info({ stream: wanted.name, subjects: wanted.subjects }, 'JetStream stream created');
    const uncaptured = wanted.subjects.filter(
      (subject) => !info.config.subjects?.some((existing) => subjectCovers(existing, subject)),
    );
    if (uncaptured.length > 0) {
      problems.push(
        `stream ${wanted.name} (${VARIABLES[role].name}) does not capture ${uncaptured.join(', ')} ` +
          `(${VARIABLES[role].subjects}); its subjects are ${info.config.subjects?.join(', ') || 'none'}`,
      );
      continue;
    }
    statuses.push({ role, name: wanted.name, subjects: info.config.subjects ?? [], created });
  }
  if (problems.length > 0) throw new SagaStreamsError(problems);
  return statuses;
}

/** The stream's info, or undefined when it does not exist. */
async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}

async function createStream(jsm: JetStreamManager, name: string, subjects: string[]): Promise<StreamInfo> {
  try {
    return await jsm.streams.add({
      name,
      subjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: 1,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
  } catch (error) {
    // Another process created it a moment ago with other settings (the same settings are accepted as they are).
    const existing = await streamInfo(jsm, name);
    if (existing) return existing;
    throw error;
  }
}

/**
 * Connects as configured, ensures both streams (see {@link ensureSagaStreams}) and disconnects: the start-up check
 * of `npm start` and of the processes that publish or consume.
 */
export async function prepareSagaStreams(config: AppConfig, logger?: Logger): Promise<SagaStreamStatus[]> {
  const connection = await connectNats(config, { name: 'stellaops-streams' });
  try {
    return await ensureSagaStreams(await jetstreamManager(connection), config.nats, logger);
  } finally {
    await connection.close();
  }
}

// Stryker restore all

/** Whether every subject `subject` matches is also matched by `filter` (`*`: one token, `>`: one or more). */
export function subjectCovers(filter: string, subject: string): boolean {
  const outer = filter.split('.');
  const inner = subject.split('.');
  for (const [i, token] of outer.entries()) {
    const other = inner[i];
    if (other === undefined) return false;
    if (token === '>') return true;
    if (other === '>') return false;
    if (token !== '*' && (other === '*' || other !== token)) return false;
  }
  return outer.length === inner.length;
}

/** A subject token: non-empty, no dots, no whitespace, no wildcards. */
function isPlainToken(token: string): boolean {
  return token !== '' && !/[\s.*>]/.test(token);
}

/** The part of each `{prefix}.>` filter before `.>`: where `{tenant}.{aggregateType}.{eventType}` follows. */
function prefixesOf(aggregateSubjects: readonly string[]): string[] {
  return aggregateSubjects.filter((subject) => subject.endsWith('.>')).map((subject) => subject.slice(0, -2));
}

/**
 * The literal prefix events are published under: that of the first `{prefix}.>` of the aggregate stream's subjects
 * without wildcards; undefined when there is none.
 */
export function aggregatePublishPrefix(aggregateSubjects: readonly string[]): string | undefined {
  return prefixesOf(aggregateSubjects).find((prefix) => prefix.split('.').every(isPlainToken));
}

/**
 * The subject token of a tenant id: tenant ids may contain dots, which separate subject tokens, so each dot is written
 * `%2E`. Tenant ids never contain `%`, so the encoding is unambiguous and {@link tenantOfSubjectToken} reverses it.
 * @throws Error when the id cannot be a token even so (blank, whitespace, wildcards or `%`).
 */
export function tenantSubjectToken(tenantId: string): string {
  const token = tenantId.replaceAll('.', '%2E');
  if (!isPlainToken(token) || tenantId.includes('%')) {
    throw new Error(`tenantId "${tenantId}" cannot be a subject token (no blanks, wildcards or '%')`);
  }
  return token;
}

/** The tenant id a subject token stands for (see {@link tenantSubjectToken}). */
export function tenantOfSubjectToken(token: string): string {
  return token.replaceAll('%2E', '.');
}

/**
 * The subject an aggregate event is published on: `{prefix}.{tenant}.{aggregateType}.{eventType}`, the tenant written
 * with {@link tenantSubjectToken}. The event type is last, so it may contain dots (`Advisory.Published`); the
 * aggregate type must be a single token.
 * @throws Error when the prefix is not literal or a part cannot be a subject token.
 */
export function aggregateEventSubject(
  prefix: string,
  event: Pick<AggregateEvent, 'tenantId' | 'aggregateType' | 'eventType'>,
): string {
  if (!prefix.split('.').every(isPlainToken)) throw new Error(`"${prefix}" is not a literal subject prefix`);
  const tenant = tenantSubjectToken(event.tenantId);
  if (!isPlainToken(event.aggregateType)) {
    throw new Error(`aggregateType "${event.aggregateType}" cannot be a subject token (no dots or wildcards)`);
  }
  if (!event.eventType.split('.').every(isPlainToken)) {
    throw new Error(`eventType "${event.eventType}" cannot be the end of a subject`);
  }
  return `${prefix}.${tenant}.${event.aggregateType}.${event.eventType}`;
}

/**
 * Where an aggregate subject's tenant token is: the subject under one of the `{prefix}.>` filters, split into the
 * tenant id (decoded), the aggregate type and the event type; undefined when no configured prefix matches.
 */
export function parseAggregateSubject(
  aggregateSubjects: readonly string[],
  subject: string,
): { tenantId: string; aggregateType: string; eventType: string } | undefined {
  for (const prefix of prefixesOf(aggregateSubjects)) {
    if (!subject.startsWith(`${prefix}.`)) continue;
    const [tenant, aggregateType, ...eventType] = subject.slice(prefix.length + 1).split('.');
    if (!tenant || !aggregateType || eventType.length === 0) return undefined;
    return { tenantId: tenantOfSubjectToken(tenant), aggregateType, eventType: eventType.join('.') };
  }
  return undefined;
}

/**
 * The subject filters of the sagas' triggers on the aggregate stream: one `{prefix}.{tenant}.{aggregateType}.{eventType}`
 * per configured `{prefix}.>` and distinct trigger, `tenant` being `*` (every tenant) unless a shard names one.
 * What the bridge's durable consumer filters on, so it never pulls an event no saga reacts to.
 * @throws Error when a trigger or the tenant cannot be part of a subject.
 */
export function sagaTriggerSubjects(
  aggregateSubjects: readonly string[],
  options: { sagas?: readonly SagaDefinition[]; tenant?: string } = {},
): string[] {
  const tenant = options.tenant === undefined ? '*' : tenantSubjectToken(options.tenant);
  const subjects = new Set<string>();
  for (const saga of options.sagas ?? SAGAS) {
    for (const trigger of saga.triggers) {
      if (!isPlainToken(trigger.aggregateType) || !trigger.eventType.split('.').every(isPlainToken)) {
        throw new Error(
          `saga ${saga.name}: trigger ${trigger.aggregateType}/${trigger.eventType} cannot be part of a subject`,
        );
      }
      for (const prefix of prefixesOf(aggregateSubjects)) {
        subjects.add(`${prefix}.${tenant}.${trigger.aggregateType}.${trigger.eventType}`);
      }
    }
  }
  return [...subjects];
}
