/**
 * How the reference aggregates publish their events: an in-memory outbox delivered in order, with one of two
 * transports.
 * - JetStream (when the process has NATS): each event published to the aggregate stream on its subject
 *   (`{prefix}.{tenant}.{aggregateType}.{eventType}`) with `Nats-Msg-Id` = eventId, so a repeated publish is dropped
 *   by the stream, and the publish acknowledged by the stream before the next one; the bridge takes it from there.
 * - HTTP: posted to the product's event ingress (`POST {apiUrl}/api/v1/events`) with a bearer token of the event's
 *   tenant: one event alone, or, when several of one tenant are waiting (under load, or after an outage), up to
 *   `maxBatch` of them as one batch `{ events }`, which the ingress processes in order.
 * A failure that may pass (no stream or no answer yet, a 5xx, 408, 429, the network, a timeout: the API or NATS may
 * start after the reference services or be restarting) is retried with backoff, honouring Retry-After; any other
 * refusal (a 4xx, an event that cannot be put on a subject) is final, logged and dropped, since repeating the same
 * event cannot change the answer. The outbox lives in memory: events still in it when the process stops are lost,
 * which is fine for a reference service and logged.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../core/logger.js';
import { DeliveryError, parseDeliveryUrl, postJson } from '../activities/shared/http.js';
import type { AggregateEvent } from '../workflows/sagas/definitions.js';
import { aggregateEventSubject } from '../workers/saga-streams.js';

/** Where emitted events go: anything that takes them (an outbox emitter, or a test's own sink). */
export interface EventSink {
  /** Queues `event` for delivery; never throws and never waits. */
  emit(event: AggregateEvent): void;
  /** Stops delivering; events not delivered yet are dropped (and counted). */
  close(): Promise<void>;
}

/** Figures of an emitter, for tests and the start-up banner. */
export interface EmitterStats {
  /** Events waiting in the outbox (the one being delivered included). */
  pending: number;
  delivered: number;
  /** Refused for good, or left in the outbox when the emitter closed. */
  dropped: number;
  /** Attempts that failed and were retried. */
  retries: number;
}

/** An emitter delivering its outbox to the ingress or to JetStream. */
export interface OutboxEmitter extends EventSink {
  stats(): EmitterStats;
  /** Resolves once the outbox is empty (or the emitter closed). */
  idle(): Promise<void>;
}

/** A bearer token with scope `Runner.Events:Write` for `tenantId` (the ingress wants the token's tenant on each event). */
export type EventTokenProvider = (tenantId: string) => Promise<string>;

/** Retry and timeout settings every emitter shares. */
export interface EmitterRetryOptions {
  logger: Logger;
  /** First retry delay (doubled per failed attempt up to `retryMaxMs`); default 250 ms. */
  retryInitialMs?: number;
  /** Longest retry delay; default 10 s. */
  retryMaxMs?: number;
  /** Timeout of one attempt; default 10 s. */
  timeoutMs?: number;
}

/** Options of {@link createIngressEmitter}. */
export interface IngressEmitterOptions extends EmitterRetryOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:3000`. */
  apiUrl: string;
  tokenFor: EventTokenProvider;
  /** Most events in one request (consecutive events of one tenant); default 100. */
  maxBatch?: number;
}

/** Options of {@link createJetStreamEmitter}. */
export interface JetStreamEmitterOptions extends EmitterRetryOptions {
  js: JetStreamClient;
  /** The literal prefix of the aggregate stream's subjects (`aggregate` of `aggregate.>`). */
  subjectPrefix: string;
}

/** The ingress's answer per event, as far as the emitter reads it. */
interface IngressAnswer {
  results?: { eventId?: unknown; status?: unknown; errors?: unknown }[];
}

/**
 * One delivery attempt of `batch`: true when done with it (delivered or dropped, counted through `count`), false or a
 * throw to retry it (a DeliveryError's Retry-After is honoured).
 */
type Attempt = (
  batch: AggregateEvent[],
  context: { signal: AbortSignal; count: (what: 'delivered' | 'dropped', n: number) => void },
) => Promise<boolean>;

/** The outbox, its order and its retries, whatever the transport of one attempt. */
function createOutboxEmitter(options: EmitterRetryOptions & { maxBatch: number; attempt: Attempt }): OutboxEmitter {
  const { logger, maxBatch, attempt } = options;
  const retryInitialMs = options.retryInitialMs ?? 250;
  const retryMaxMs = options.retryMaxMs ?? 10_000;
  const outbox: AggregateEvent[] = [];
  const stats = { delivered: 0, dropped: 0, retries: 0 };
  const closing = new AbortController();
  const context = {
    signal: closing.signal,
    count: (what: 'delivered' | 'dropped', n: number) => {
      stats[what] += n;
    },
  };
  let running: Promise<void> | undefined;
  let idleWaiters: (() => void)[] = [];

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        closing.signal.removeEventListener('abort', done);
        resolve();
      }
      closing.signal.addEventListener('abort', done);
    });

  /** The events of the next attempt: the head of the outbox and the events of its tenant right behind it. */
  function nextBatch(): AggregateEvent[] {
    const tenantId = outbox[0]!.tenantId;
    let end = 1;
    while (end < outbox.length && end < maxBatch && outbox[end]!.tenantId === tenantId) end++;
    return outbox.slice(0, end);
  }

  async function run(): Promise<void> {
    let delay = retryInitialMs;
    while (outbox.length > 0 && !closing.signal.aborted) {
      // A retry may take more events than the failed attempt: the receiver deduplicates those it already has.
      const batch = nextBatch();
      let done: boolean;
      let retryAfterMs: number | undefined;
      try {
        done = await attempt(batch, context);
      } catch (error) {
        done = false;
        if (error instanceof DeliveryError) retryAfterMs = error.retryAfterMs;
      }
      if (done) {
        outbox.splice(0, batch.length);
        delay = retryInitialMs;
        continue;
      }
      if (closing.signal.aborted) break;
      stats.retries++;
      await pause(Math.min(retryMaxMs, Math.max(delay, retryAfterMs ?? 0)));
      delay = Math.min(retryMaxMs, delay * 2);
    }
    running = undefined;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  return {
    emit(event) {
      if (closing.signal.aborted) {
        stats.dropped++;
        logger.warn({ eventId: event.eventId }, `event ${event.eventType} ${event.eventId} dropped: emitter closed`);
        return;
      }
      outbox.push(event);
      running ??= run();
    },
    stats: () => ({ pending: outbox.length, ...stats }),
    idle: () => (running ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
    async close() {
      closing.abort();
      await running;
      if (outbox.length > 0) {
        logger.warn({ events: outbox.length }, 'reference services stopped with undelivered events');
        stats.dropped += outbox.length;
        outbox.length = 0;
      }
    },
  };
}

/** Creates the emitter; nothing is sent until an event is emitted. @throws DeliveryError when `apiUrl` breaks the URL policy. */
export function createIngressEmitter(options: IngressEmitterOptions): OutboxEmitter {
  const url = parseDeliveryUrl(`${options.apiUrl.replace(/\/$/, '')}/api/v1/events`);
  const { logger } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;

  /** Logs the events of a delivered request the ingress answered `invalid` (they are not retried either). */
  function logInvalid(body: string | undefined, tenantId: string): void {
    let answer: IngressAnswer;
    try {
      answer = JSON.parse(body ?? '') as IngressAnswer;
    } catch {
      return;
    }
    for (const result of answer.results ?? []) {
      if (result.status === 'invalid') {
        logger.error(
          { tenantId, eventId: result.eventId, errors: result.errors },
          'event refused by the ingress: invalid',
        );
      }
    }
  }

  const attempt: Attempt = async (batch, { signal, count }) => {
    const first = batch[0]!;
    const what =
      batch.length === 1 ? `event ${first.eventType} ${first.eventId}` : `${batch.length} events from ${first.eventId}`;
    try {
      const { body } = await postJson({
        url,
        body: JSON.stringify(batch.length === 1 ? first : { events: batch }),
        headers: { authorization: `Bearer ${await options.tokenFor(first.tenantId)}` },
        timeoutMs,
        logger,
        logFields: { tenantId: first.tenantId, eventId: first.eventId, events: batch.length },
        what,
        successLevel: 'debug',
        readBody: true,
        signal,
      });
      count('delivered', batch.length);
      logInvalid(body, first.tenantId);
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      if (error instanceof DeliveryError && !error.retryable) {
        count('dropped', batch.length);
        logger.error(
          {
            tenantId: first.tenantId,
            eventIds: batch.map((e) => e.eventId),
            status: error.status,
            answer: error.body,
          },
          `${what} dropped: the ingress refused it`,
        );
        return true;
      }
      // Not a DeliveryError: the token could not be minted. Retried like an outage of the ingress.
      if (!(error instanceof DeliveryError))
        logger.warn({ err: error, tenantId: first.tenantId }, `${what}: no token for the ingress`);
      throw error;
    }
  };
  return createOutboxEmitter({ ...options, maxBatch: options.maxBatch ?? 100, attempt });
}

/**
 * Creates an emitter publishing to the aggregate stream, one event at a time in order, each acknowledged by the
 * stream before the next; nothing is sent until an event is emitted.
 */
export function createJetStreamEmitter(options: JetStreamEmitterOptions): OutboxEmitter {
  const { js, logger, subjectPrefix } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempt: Attempt = async ([event], { signal, count }) => {
    const fields = { tenantId: event!.tenantId, eventId: event!.eventId };
    let subject: string;
    try {
      subject = aggregateEventSubject(subjectPrefix, event!);
    } catch (error) {
      count('dropped', 1);
      logger.error({ ...fields, error: (error as Error).message }, `event ${event!.eventType} dropped: no subject`);
      return true;
    }
    try {
      const ack = await js.publish(subject, JSON.stringify(event), { msgID: event!.eventId, timeout: timeoutMs });
      count('delivered', 1);
      logger.debug({ ...fields, subject, streamSequence: ack.seq, duplicate: ack.duplicate }, 'event published');
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      // The message only: a retry every few seconds while NATS or the stream is away needs no stack each time.
      logger.warn(
        { ...fields, subject, error: (error as Error).message },
        `event ${event!.eventType} not published yet; retrying`,
      );
      return false;
    }
  };
  return createOutboxEmitter({ ...options, maxBatch: 1, attempt });
}

/** A sink that delivers nothing: the reference services have no token for the ingress. Logs each event it drops. */
export function createDiscardingSink(logger: Logger, reason: string): EventSink {
  return {
    emit(event) {
      logger.info({ eventId: event.eventId, eventType: event.eventType }, `event not emitted: ${reason}`);
    },
    close: async () => undefined,
  };
}
