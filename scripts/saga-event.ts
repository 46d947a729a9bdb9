/**
 * `npm run saga-event -- <event.json> [--fresh] [--aggregate-id ID] [--api URL] [--token TOKEN]`: posts an aggregate
 * event (or a batch: a JSON array, or `{ "events": [...] }`) to the sagas' ingress `POST /api/v1/events`, as an
 * aggregate would. The bearer token (scope `Runner.Events:Write`, the events' tenant) is minted from the local key
 * unless `--token` gives one (needed when the API verifies tokens of an external issuer).
 *
 * `--fresh` gives each event a new eventId, `occurredAt` now and a new correlation id, so the same sample starts a
 * new saga instance every time instead of reaching the one an earlier post started; `--aggregate-id` replaces the
 * aggregate id (another bundle, another advisory).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { Scope } from '../core/scopes.js';

/** The sample posted when no file is named. */
export const DEFAULT_SAGA_EVENT_FILE = 'samples/sagas/advisory-published.json';

/** What `npm run saga-event` was asked to do. */
export interface SagaEventArgs {
  file: string;
  fresh: boolean;
  aggregateId: string | undefined;
  api: string | undefined;
  token: string | undefined;
}

/** A command line `npm run saga-event` cannot run; the message says why and how to call it. */
export class SagaEventUsageError extends Error {
  override name = 'SagaEventUsageError';
}

const USAGE = 'usage: npm run saga-event -- [<event.json>] [--fresh] [--aggregate-id ID] [--api URL] [--token TOKEN]';

/** Parses the arguments after `npm run saga-event --`. @throws SagaEventUsageError */
export function parseSagaEventArgs(argv: readonly string[]): SagaEventArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        fresh: { type: 'boolean', default: false },
        'aggregate-id': { type: 'string' },
        api: { type: 'string' },
        token: { type: 'string' },
      },
    });
  } catch (error) {
    throw new SagaEventUsageError(`${(error as Error).message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new SagaEventUsageError(`one event file at a time\n${USAGE}`);
  if (values.api !== undefined && !/^https?:\/\/[^\s/]+/.test(values.api)) {
    throw new SagaEventUsageError(`--api must be an http(s) URL (got "${values.api}")\n${USAGE}`);
  }
  return {
    file: positionals[0] ?? DEFAULT_SAGA_EVENT_FILE,
    fresh: values.fresh,
    aggregateId: values['aggregate-id'],
    api: values.api?.replace(/\/$/, ''),
    token: values.token,
  };
}

/** An event as the file holds it: an object with at least a tenant (the ingress validates the rest). */
export type LoadedEvent = Record<string, unknown>;

/** Longest correlation id the ingress accepts (`ID_PATTERN`). */
const MAX_ID_LENGTH = 128;

/**
 * `event` as a new occurrence: a new eventId, `occurredAt` at `now`, and a new correlation id made from the old one
 * (or the aggregate id) and a random suffix, e.g. `CVE-2023-44487.3f9a1c2e`, so that it starts a new saga instance.
 */
export function withFreshIds(event: LoadedEvent, now: number = Date.now()): LoadedEvent {
  const suffix = randomUUID().slice(0, 8);
  const previous = [event.correlationId, event.aggregateId].find((v): v is string => typeof v === 'string' && v !== '');
  const base = (previous ?? 'event').replace(/\.[0-9a-f]{8}$/, '');
  const fresh: LoadedEvent = {
    ...event,
    eventId: `evt-${randomUUID()}`,
    occurredAt: new Date(now).toISOString(),
    correlationId: `${base.slice(0, MAX_ID_LENGTH - suffix.length - 1)}.${suffix}`,
  };
  // The old correlation id must not live on in the metadata: a reader of the event would see two.
  const { metadata } = event;
  if (metadata !== null && typeof metadata === 'object' && 'correlationId' in metadata) {
    const { correlationId: _old, ...rest } = metadata as Record<string, unknown>;
    fresh.metadata = rest;
  }
  return fresh;
}

/** The events of a sample file: one event, an array of them, or `{ events: [...] }`. @throws SagaEventUsageError */
export function eventsOf(loaded: unknown): { events: LoadedEvent[]; batch: boolean } {
  const isObject = (value: unknown): value is LoadedEvent =>
    value !== null && typeof value === 'object' && !Array.isArray(value);
  const list = Array.isArray(loaded) ? loaded : isObject(loaded) && Array.isArray(loaded.events) ? loaded.events : null;
  if (list === null) {
    if (!isObject(loaded))
      throw new SagaEventUsageError('the file must hold an event, an array of events or { events }');
    return { events: [loaded], batch: false };
  }
  if (list.length === 0 || !list.every(isObject)) {
    throw new SagaEventUsageError('a batch must hold at least one event, each a JSON object');
  }
  return { events: list, batch: true };
}

/** The tenant every event belongs to (the token's tenant). @throws SagaEventUsageError when they differ or lack one. */
export function tenantOf(events: readonly LoadedEvent[]): string {
  const tenants = new Set(events.map((e) => e.tenantId));
  const [tenant] = tenants;
  if (tenants.size !== 1 || typeof tenant !== 'string' || tenant === '') {
    throw new SagaEventUsageError('every event needs the same tenantId (the token is minted for one tenant)');
  }
  return tenant;
}

/** The request body `npm run saga-event` posts for the file's contents and the arguments. */
export function bodyToPost(
  loaded: unknown,
  options: Pick<SagaEventArgs, 'fresh' | 'aggregateId'>,
  now: number = Date.now(),
): { body: LoadedEvent; tenantId: string } {
  const { events, batch } = eventsOf(loaded);
  const prepared = events.map((event) => {
    const moved = options.aggregateId === undefined ? event : { ...event, aggregateId: options.aggregateId };
    return options.fresh ? withFreshIds(moved, now) : moved;
  });
  // The events of one fresh batch belong together: they share the first event's new correlation id.
  const correlated =
    options.fresh && prepared.length > 1
      ? prepared.map((event) => ({ ...event, correlationId: prepared[0]!.correlationId }))
      : prepared;
  return { body: batch ? { events: correlated } : correlated[0]!, tenantId: tenantOf(correlated) };
}

async function main(): Promise<void> {
  let args: SagaEventArgs;
  let prepared: ReturnType<typeof bodyToPost>;
  try {
    args = parseSagaEventArgs(process.argv.slice(2));
    prepared = bodyToPost(JSON.parse(await readFile(args.file, 'utf8')), args);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  if (args.token === undefined && !config.auth.useLocalKey) {
    console.error('the API verifies tokens of an external issuer: pass --token with scope Runner.Events:Write');
    process.exitCode = 2;
    return;
  }
  const token =
    args.token ??
    (await mintToken(await loadOrCreateLocalKey(config.dataDir), {
      tenant: prepared.tenantId,
      scopes: [Scope.RunnerEventsWrite],
      subject: 'saga-event',
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      expiresIn: '5m',
    }));
  const response = await fetch(`${args.api ?? `http://127.0.0.1:${config.api.port}`}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(prepared.body),
  });
  console.log(response.status, await response.text());
  process.exitCode = response.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
