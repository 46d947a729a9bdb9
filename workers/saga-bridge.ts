/**
 * The JetStream → sagas bridge: a durable pull consumer on the aggregate stream, filtered to the subjects of the
 * sagas' triggers (one set per tenant of a shard, or every tenant) and shared by every replica, so the server splits
 * the messages between them and never hands one to two replicas at once. Each message goes through the one routing
 * code path of the HTTP ingress (`SagaIngress.ingestEachEvent`, `via: 'jetstream'`): same routing, deduplication by
 * (tenant, eventId), unmatched and late handling.
 *
 * Acknowledgement discipline:
 * - ack only once the ingress answered (accepted, duplicate, unmatched or late: Temporal took the signal, or the event
 *   was recorded); a working ack every ackWait/3 keeps a slow call from being delivered to another replica;
 * - the ingress failing for an event (Temporal or Postgres unavailable) → NAK of that message alone, with a backoff by
 *   delivery count;
 * - a payload that does not decode, an event that fails the contract or routing, a subject whose tenant differs from
 *   the event's → recorded in quarantine at once, then terminated;
 * - still failing at the `maxDeliver`-th delivery → recorded in quarantine (`max_deliver`), then terminated.
 * A message is terminated only after its quarantine row is written: when that write fails, it is NAKed instead.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  ReplayPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { IngestResult, SagaIngress } from '../api/services/saga-ingress.js';
import { decodeAggregateEvent } from '../api/services/saga-ingress.js';
import type { AppConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import { recordQuarantinedEvent, type QuarantineErrorKind } from '../db/queries/saga-quarantine.js';
import type { AggregateEvent, SagaDefinition } from '../workflows/sagas/definitions.js';
import { SAGAS } from '../workflows/sagas/registry.js';
import { routeEvent } from '../workflows/sagas/routing.js';
import type { BridgeOutcome, RunnerMetrics } from './runner-metrics.js';
import { parseAggregateSubject, sagaTriggerSubjects } from './saga-streams.js';

/** What the bridge runs on. */
export interface SagaBridgeOptions {
  /** The process' NATS connection (the bridge neither opens nor closes it). */
  connection: NatsConnection;
  nats: AppConfig['nats'];
  /** The routing code path the HTTP ingress uses too. */
  ingress: SagaIngress;
  /** Where quarantined messages are recorded. */
  pool: Pool;
  logger: Logger;
  metrics?: RunnerMetrics;
  /** The sagas whose triggers the consumer filters on (default: the registered ones). */
  sagas?: readonly SagaDefinition[];
}

/** The bridge as `/ready` and the operations port show it. */
export interface SagaBridgeStatus {
  stream: string;
  /** The durable consumer's name. */
  consumer: string;
  filterSubjects: string[];
  /** Whether it is pulling messages now (false while it waits to retry after an error, and once draining). */
  pulling: boolean;
  draining: boolean;
  /** Messages pulled and not yet acknowledged, NAKed or terminated. */
  inFlight: number;
  /** The last error of the pull loop, cleared by the next successful pull. */
  lastError?: string;
}

/** A running bridge. */
export interface SagaBridge {
  /** Stops pulling, finishes in-flight messages (each acked, NAKed or terminated), resolves when drained; idempotent. */
  drain(): Promise<void>;
  /** Re-filters the durable consumer to these tenants ([] = every tenant): the tenant placement reload. */
  setTenants(tenants: string[]): Promise<void>;
  status(): SagaBridgeStatus;
  /** Whether the NATS connection is up (for /ready). */
  connected(): boolean;
}

/** First NAK delay; doubled per delivery up to {@link NAK_MAX_DELAY_MS}. */
export const NAK_BASE_DELAY_MS = 1_000;
/** Longest NAK delay. */
export const NAK_MAX_DELAY_MS = 60_000;
/**
 * How long one pull request waits for messages before the next one is sent; also the longest a drain waits for the
 * open request to run out (see {@link SagaBridge.drain}).
 */
const FETCH_EXPIRES_MS = 2_000;
/** How often consumer lag and ack-pending gauges are refreshed from the consumer's info. */
const CONSUMER_INFO_REFRESH_MS = 5_000;
/** Pause after a failed pull (no consumer, JetStream unavailable, disconnected), doubled up to the longest. */
// Stryker disable next-line all: the pull loop's pacing, exercised by the integration tests
const PULL_RETRY_MS = { initial: 500, max: 10_000 };

/** The delay of the NAK of a message's `deliveryCount`-th failed delivery: 1 s · 2^(n−1), at most 60 s. */
export function nakDelayMs(deliveryCount: number): number {
  const exponent = Math.max(0, Math.min(deliveryCount, 32) - 1);
  return Math.min(NAK_MAX_DELAY_MS, NAK_BASE_DELAY_MS * 2 ** exponent);
}

/** What to do with a message whose processing failed: retry it later, or give up on it (quarantine). */
export function afterFailure(
  deliveryCount: number,
  maxDeliver: number,
): { action: 'nak'; delayMs: number } | { action: 'quarantine' } {
  return deliveryCount >= maxDeliver ? { action: 'quarantine' } : { action: 'nak', delayMs: nakDelayMs(deliveryCount) };
}

/** Message headers as the quarantine keeps them: each name with its values (a header may repeat). */
export function flattenHeaders(
  headers: { keys(): string[]; values(key: string): string[] } | undefined,
): Record<string, string[]> {
  const flat: Record<string, string[]> = {};
  for (const key of headers?.keys() ?? []) flat[key] = [...(flat[key] ?? []), ...headers!.values(key)];
  return flat;
}

/** What a message turned out to be before it reaches the ingress. */
export type MessageCheck =
  | { kind: 'event'; tenantId: string; event: AggregateEvent }
  | {
      kind: Exclude<QuarantineErrorKind, 'max_deliver'>;
      /** The subject's tenant (what the quarantine row belongs to); the event's when the subject has none. */
      tenantId: string;
      eventId: string | null;
      sagaNames: string[];
      error: string;
    };

/**
 * Classifies one message of the aggregate stream: an event to ingest, or why it must be quarantined — a payload that
 * is not UTF-8 JSON (`undecodable`), one that fails the event contract or whose subject does not name its aggregate
 * and event type (`invalid`), an event of another tenant than its subject's (`tenant_mismatch`).
 */
export function checkMessage(
  aggregateSubjects: readonly string[],
  subject: string,
  data: Uint8Array,
  sagas: readonly SagaDefinition[] = SAGAS,
): MessageCheck {
  const parsed = parseAggregateSubject(aggregateSubjects, subject);
  // The parser's own message is not kept: some quote the text, and the payload never goes into logs.
  const undecodable = (error: string): MessageCheck => ({
    kind: 'undecodable',
    tenantId: parsed?.tenantId ?? '',
    eventId: null,
    sagaNames: [],
    error: `payload of ${data.byteLength} bytes ${error}`,
  });
  const check = decodeAggregateEvent(data);
  if ('undecodable' in check) return undecodable(check.undecodable);
  if ('errors' in check) {
    return {
      kind: 'invalid',
      tenantId: parsed?.tenantId ?? '',
      eventId: check.eventId,
      sagaNames: [],
      error: check.errors.map((e) => `${e.pointer || '/'}: ${e.message}`).join('; '),
    };
  }
  const { event } = check;
  const sagaNames = [...new Set(routeEvent(event, sagas).routes.map((route) => route.sagaName))];
  const refused = (kind: 'invalid' | 'tenant_mismatch', tenantId: string, error: string): MessageCheck => ({
    kind,
    tenantId,
    eventId: event.eventId,
    sagaNames,
    error,
  });
  if (!parsed) return refused('invalid', event.tenantId, `subject ${subject} is not an aggregate-event subject`);
  if (parsed.tenantId !== event.tenantId) {
    return refused(
      'tenant_mismatch',
      parsed.tenantId,
      `subject tenant "${parsed.tenantId}" differs from the event's tenantId "${event.tenantId}"`,
    );
  }
  // The consumer picked the message by its subject and the ingress routes it by its body: both must agree.
  if (parsed.aggregateType !== event.aggregateType || parsed.eventType !== event.eventType) {
    return refused(
      'invalid',
      parsed.tenantId,
      `subject ${subject} names ${parsed.aggregateType}/${parsed.eventType}, ` +
        `the event is ${event.aggregateType}/${event.eventType}`,
    );
  }
  return { kind: 'event', tenantId: event.tenantId, event };
}

/** The consumer's filter subjects: the sagas' trigger subjects for each tenant, or for every tenant. */
export function bridgeFilterSubjects(
  aggregateSubjects: readonly string[],
  tenants: readonly string[],
  sagas?: readonly SagaDefinition[],
): string[] {
  const options = sagas ? { sagas } : {};
  if (tenants.length === 0) return sagaTriggerSubjects(aggregateSubjects, options);
  return [...new Set(tenants.flatMap((tenant) => sagaTriggerSubjects(aggregateSubjects, { ...options, tenant })))];
}

// Stryker disable all: from here on the bridge talks to NATS and Postgres; test/integration/saga-bridge.test.ts
// exercises it on real servers, the mutation run covers the pure decisions above.

/** Whether the consumer's settings differ from what the bridge wants (what an update changes). */
function differs(info: ConsumerInfo, wanted: Partial<ConsumerConfig>): boolean {
  const current = info.config;
  const filters = current.filter_subjects ?? (current.filter_subject ? [current.filter_subject] : []);
  return (
    [...filters].sort().join('\n') !== [...(wanted.filter_subjects ?? [])].sort().join('\n') ||
    current.ack_wait !== wanted.ack_wait ||
    current.max_ack_pending !== wanted.max_ack_pending ||
    (current.max_deliver ?? -1) !== wanted.max_deliver
  );
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound;
}

/**
 * Creates the durable consumer or brings it to `filterSubjects` and the configured limits; safe from several
 * replicas at once (creating the same configuration twice is accepted; a replica that lost the race updates).
 */
async function ensureConsumer(
  jsm: JetStreamManager,
  nats: AppConfig['nats'],
  filterSubjects: string[],
): Promise<ConsumerInfo> {
  const stream = nats.aggregateStream.name;
  const { durable } = nats.bridge;
  // The server redelivers without limit (max_deliver -1) and the bridge enforces maxDeliver itself. Were the limit
  // the server's, a message whose last delivery failed while Postgres was down too (so its quarantine row could not
  // be written) would never be delivered again and never be recorded either: lost without a trace. Here the bridge
  // terminates a message only once its quarantine row exists, and NAKs it otherwise, so it comes back until it does.
  const wanted = {
    ack_wait: nanos(nats.bridge.ackWaitSeconds * 1000),
    max_ack_pending: nats.bridge.maxAckPending,
    max_deliver: -1,
    filter_subjects: filterSubjects,
  };
  const infoOf = () =>
    jsm.consumers.info(stream, durable).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
  let info = await infoOf();
  if (!info) {
    try {
      return await jsm.consumers.add(stream, {
        ...wanted,
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        replay_policy: ReplayPolicy.Instant,
      });
    } catch (error) {
      // Another replica created it a moment ago, maybe with other filters (a shard being moved): update it below.
      info = await infoOf();
      if (!info) throw error;
    }
  }
  if (!differs(info, wanted)) return info;
  return jsm.consumers.update(stream, durable, wanted);
}

/** A message being processed. */
interface InFlight {
  msg: JsMsg;
  receivedAt: number;
  deliveryCount: number;
}

/**
 * Starts the bridge: ensures the durable consumer (see the module comment), then pulls in batches of `batchSize`
 * until {@link SagaBridge.drain}. A pull that fails (JetStream unavailable, consumer deleted, disconnected) is retried
 * with backoff, re-ensuring the consumer; {@link SagaBridgeStatus.lastError} says why meanwhile.
 * @throws when the consumer cannot be created or updated at start (the stream missing, a tenant that cannot be a
 *   subject token).
 */
export async function startSagaBridge(options: SagaBridgeOptions): Promise<SagaBridge> {
  const { connection, nats, ingress, pool, metrics } = options;
  const settings = nats.bridge;
  const stream = nats.aggregateStream.name;
  const durable = settings.durable;
  const logger = options.logger.child({ component: 'saga-bridge', consumer: durable });
  const jsm = await jetstreamManager(connection);
  const js = jetstream(connection);

  let filterSubjects = bridgeFilterSubjects(nats.aggregateStream.subjects, settings.tenants, options.sagas);
  await ensureConsumer(jsm, nats, filterSubjects);
  logger.info({ stream, filterSubjects }, 'saga bridge consuming');

  const inFlight = new Set<InFlight>();
  let draining = false;
  let pulling = false;
  let lastError: string | undefined;
  let wakeRetry: (() => void) | undefined;
  let up = !connection.isClosed();

  const statusWatch = connection.status();
  void (async () => {
    for await (const s of statusWatch) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => undefined);

  const fieldsOf = (entry: InFlight, event?: { tenantId: string; eventId: string | null }) => ({
    subject: entry.msg.subject,
    streamSequence: entry.msg.info.streamSequence,
    deliveryCount: entry.deliveryCount,
    ...(event && { tenantId: event.tenantId, eventId: event.eventId }),
  });

  /**
   * Runs an ack, NAK, term or working ack: they publish on the connection, which throws once it is closed; the
   * server then delivers the message again after the ack wait, which is all that can be done.
   */
  const tell = (entry: InFlight, what: string, op: () => void) => {
    try {
      op();
    } catch (error) {
      logger.warn({ ...fieldsOf(entry), err: error }, `${what} not sent; the message comes again after the ack wait`);
    }
  };

  // Working acks: every ackWait/3, each message still in flight tells the server it is being worked on.
  const working = setInterval(
    () => {
      for (const entry of inFlight) tell(entry, 'working ack', () => entry.msg.working());
    },
    Math.max(100, (settings.ackWaitSeconds * 1000) / 3),
  );
  working.unref();

  const refreshGauges = async () => {
    if (!metrics) return;
    try {
      const info = await jsm.consumers.info(stream, durable);
      metrics.bridge.consumerLag.set({ consumer: durable }, info.num_pending);
      metrics.bridge.ackPending.set({ consumer: durable }, info.num_ack_pending);
    } catch {
      // The next refresh tries again; the pull loop reports the outage.
    }
  };
  const gauges = setInterval(() => void refreshGauges(), CONSUMER_INFO_REFRESH_MS);
  gauges.unref();

  const settled = (entry: InFlight, outcome: BridgeOutcome) => {
    inFlight.delete(entry);
    metrics?.bridge.messages.inc({ outcome });
    metrics?.bridge.processingSeconds.observe((Date.now() - entry.receivedAt) / 1000);
  };

  const nak = (entry: InFlight, delayMs: number) => {
    tell(entry, 'NAK', () => entry.msg.nak(delayMs));
    settled(entry, 'nak');
  };

  const ack = async (entry: InFlight, event: AggregateEvent, status: Exclude<IngestResult['status'], 'invalid'>) => {
    try {
      // The ack is confirmed: a lost one would deliver the message again, which the ingress answers `duplicate`,
      // but the outcome counted here would be wrong.
      await entry.msg.ackAck();
    } catch (error) {
      logger.warn(
        { ...fieldsOf(entry, event), err: error },
        'ack not confirmed; the message comes again and is answered as a duplicate',
      );
    }
    logger.debug({ ...fieldsOf(entry, event), status }, 'message acknowledged');
    settled(entry, status);
  };

  /** Records the message in quarantine, then terminates it; NAKs it when the record cannot be written. */
  const quarantine = async (
    entry: InFlight,
    record: { kind: QuarantineErrorKind; tenantId: string; eventId: string | null; sagaNames: string[]; error: string },
  ) => {
    const fields = fieldsOf(entry, record);
    try {
      const { id } = await recordQuarantinedEvent(pool, {
        tenantId: record.tenantId,
        stream,
        streamSequence: entry.msg.info.streamSequence,
        subject: entry.msg.subject,
        headers: flattenHeaders(entry.msg.headers),
        payload: entry.msg.data,
        eventId: record.eventId,
        sagaNames: record.sagaNames,
        errorKind: record.kind,
        error: record.error,
        deliveryCount: entry.deliveryCount,
      });
      metrics?.bridge.quarantined.inc({ reason: record.kind });
      logger.warn({ ...fields, quarantineId: id, errorKind: record.kind, error: record.error }, 'message quarantined');
    } catch (error) {
      const delayMs = nakDelayMs(entry.deliveryCount);
      logger.error(
        { ...fields, errorKind: record.kind, err: error, delayMs },
        'quarantine not recorded; the message is NAKed, not terminated',
      );
      nak(entry, delayMs);
      return;
    }
    // Terminated only now that the record exists (a term lost with the connection is recorded again next time).
    tell(entry, 'term', () => entry.msg.term(`quarantined (${record.kind})`));
    settled(entry, record.kind === 'max_deliver' ? 'quarantined' : 'invalid');
  };

  /** The ingress failed for this message (Temporal or Postgres unavailable): retry later, or give up on it. */
  const failed = async (entry: InFlight, event: AggregateEvent, error: unknown) => {
    const decision = afterFailure(entry.deliveryCount, settings.maxDeliver);
    const message = (error as Error)?.message ?? String(error);
    if (decision.action === 'quarantine') {
      const sagaNames = [...new Set(routeEvent(event, options.sagas ?? SAGAS).routes.map((r) => r.sagaName))];
      await quarantine(entry, {
        kind: 'max_deliver',
        tenantId: event.tenantId,
        eventId: event.eventId,
        sagaNames,
        error: `still failing at delivery ${entry.deliveryCount} of ${settings.maxDeliver}: ${message}`,
      });
      return;
    }
    logger.warn({ ...fieldsOf(entry, event), error: message, delayMs: decision.delayMs }, 'message NAKed');
    nak(entry, decision.delayMs);
  };

  const handleBatch = async (batch: InFlight[]) => {
    const events: { entry: InFlight; event: AggregateEvent }[] = [];
    const refused: Promise<void>[] = [];
    for (const entry of batch) {
      const check = checkMessage(nats.aggregateStream.subjects, entry.msg.subject, entry.msg.data, options.sagas);
      if (check.kind === 'event') events.push({ entry, event: check.event });
      else refused.push(quarantine(entry, check));
    }
    const ingested = (async () => {
      if (events.length === 0) return;
      // Each message is settled by its own event's result: one that failed is retried while the others of the batch,
      // recorded, are acknowledged (NAKing them too would have them answered `duplicate` at their next delivery).
      const settled = await ingress.ingestEachEvent(
        events.map((e) => e.event),
        { via: 'jetstream' },
      );
      await Promise.all(
        events.map(({ entry, event }, i) => {
          const settlement = settled[i]!;
          if (settlement.status === 'rejected') return failed(entry, event, settlement.reason);
          const result = settlement.value;
          if (result.status !== 'invalid') return ack(entry, event, result.status);
          // Valid by the contract, refused by routing (a correlation id the saga cannot derive, …).
          return quarantine(entry, {
            kind: 'invalid',
            tenantId: event.tenantId,
            eventId: event.eventId,
            sagaNames: [...new Set(routeEvent(event, options.sagas ?? SAGAS).routes.map((r) => r.sagaName))],
            error: result.errors.map((e) => `${e.pointer || '/'}: ${e.message}`).join('; '),
          });
        }),
      );
    })();
    await Promise.all([...refused, ingested]);
  };

  /**
   * Processes one pull: messages are taken as they arrive (nothing waits for the batch to fill) and handled in
   * arrival order, those that arrived while the previous ones were being handled as one call of the ingress.
   */
  const runPull = async (messages: ConsumerMessages) => {
    const queue: InFlight[] = [];
    let ended = false;
    let wake: (() => void) | undefined;
    const signal = () => {
      wake?.();
      wake = undefined;
    };
    const reading = (async () => {
      try {
        for await (const msg of messages) {
          if (draining) {
            // A pull request cannot be withdrawn: what the server still sends for it goes back, for another replica
            // to get in a moment rather than after the ack wait. Not at once: the server would hand it straight back
            // to this very request, again and again until the request runs out.
            try {
              msg.nak(FETCH_EXPIRES_MS);
            } catch {
              // Closed connection: delivered again after the ack wait.
            }
            logger.debug(
              { subject: msg.subject, streamSequence: msg.info.streamSequence },
              'message handed back: draining',
            );
            continue;
          }
          const entry: InFlight = { msg, receivedAt: Date.now(), deliveryCount: msg.info.deliveryCount };
          if (entry.deliveryCount > 1) metrics?.bridge.redeliveries.inc();
          inFlight.add(entry);
          queue.push(entry);
          lastError = undefined;
          signal();
        }
      } finally {
        ended = true;
        signal();
      }
    })();
    while (!ended || queue.length > 0) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      await handleBatch(queue.splice(0));
    }
    await reading;
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeRetry = undefined;
        resolve();
      }
      wakeRetry = done;
    });

  const loop = async () => {
    let consumer: Consumer | undefined;
    let retryMs = PULL_RETRY_MS.initial;
    while (!draining) {
      try {
        consumer ??= await js.consumers.get(stream, durable);
        if (draining) break;
        const messages = await consumer.fetch({ max_messages: settings.batchSize, expires: FETCH_EXPIRES_MS });
        pulling = true;
        await runPull(messages);
        lastError = undefined;
        retryMs = PULL_RETRY_MS.initial;
      } catch (error) {
        pulling = false;
        if (draining) break;
        lastError = (error as Error)?.message ?? String(error);
        logger.warn({ err: error, retryInMs: retryMs }, 'saga bridge pull failed; retrying');
        await pause(retryMs);
        retryMs = Math.min(PULL_RETRY_MS.max, retryMs * 2);
        // The consumer may have been deleted (or the stream restored): make sure it is there before pulling again.
        consumer = undefined;
        if (draining) break;
        await ensureConsumer(jsm, nats, filterSubjects).catch((err: unknown) => {
          lastError = (err as Error)?.message ?? String(err);
        });
      }
    }
    pulling = false;
  };
  const running = loop();
  void refreshGauges();

  let drained: Promise<void> | undefined;
  return {
    drain() {
      drained ??= (async () => {
        draining = true;
        pulling = false;
        wakeRetry?.();
        // No new pull; the open one runs out (FETCH_EXPIRES_MS) while the messages received are handled.
        await running;
        clearInterval(working);
        clearInterval(gauges);
        logger.info('saga bridge drained');
      })();
      return drained;
    },

    async setTenants(tenants) {
      const subjects = bridgeFilterSubjects(nats.aggregateStream.subjects, tenants, options.sagas);
      // Set first, so that the pull loop re-ensuring the consumer meanwhile (after an error) does not restore the
      // old filters; put back when the update fails.
      const previous = filterSubjects;
      filterSubjects = subjects;
      try {
        await ensureConsumer(jsm, nats, subjects);
      } catch (error) {
        filterSubjects = previous;
        throw error;
      }
      logger.info({ tenants, filterSubjects }, 'saga bridge re-filtered');
    },

    status: () => ({
      stream,
      consumer: durable,
      filterSubjects: [...filterSubjects],
      pulling: pulling && !draining,
      draining,
      inFlight: inFlight.size,
      ...(lastError !== undefined && { lastError }),
    }),

    connected: () => up && !connection.isClosed(),
  };
}
