/**
 * The one routing code path of aggregate events into sagas, shared by every transport: the HTTP ingress and the
 * JetStream bridge (`workers/saga-bridge.ts`) call it, each naming itself as the events' `via` (nothing here knows
 * HTTP or NATS).
 *
 * Per event: a repeat of (tenant, eventId) answers what the first delivery did; otherwise the event is routed to every
 * saga that triggers on it (`routeEvent`), delivered (start triggers by signalWithStart, others by signal only), and
 * recorded with its outcomes in one transaction — an event for an instance that does not exist yet as `unmatched`
 * (the instance claims it when it starts), one for a finished instance as `late`. Temporal is called before the
 * record is written: when Postgres or Temporal fails in between, the caller answers 503 and a retry delivers again,
 * which the workflow deduplicates by eventId. Nothing is lost, nothing doubled.
 */
import type { Logger } from '../../core/logger.js';
import { withTraceparent } from '../../core/tracing.js';
import { withTransaction, type Pool } from '../../db/pool.js';
import { recordAudit } from '../../db/queries/audit.js';
import {
  findIngestedEvent,
  getUnmatchedEvent,
  markRedelivered,
  recordIngestedEvent,
  updateIngestedOutcomes,
  type Redelivery,
  type SagaRouteOutcome,
  type UnmatchedEvent,
} from '../../db/queries/sagas.js';
import { AggregateEvent, type SagaEventDelivery } from '../../workflows/sagas/definitions.js';
import { sagaByName, SAGAS } from '../../workflows/sagas/registry.js';
import { routeEvent, triggerOf, type SagaRoute } from '../../workflows/sagas/routing.js';
import { conflict, notFound } from '../errors.js';
import { strictValidatorFactory, type InputError } from '../plugins/strict-input.js';
import type { SagaTemporal } from '../temporal/sagas.js';

/** A field error of one event: a JSON pointer into the event. */
export interface EventFieldError {
  pointer: string;
  message: string;
}

/** The answer for one event, before it is placed in a request (`index`) and its paths are formatted. */
export type IngestResult =
  | {
      status: 'accepted' | 'duplicate' | 'unmatched' | 'late';
      eventId: string;
      instances: SagaRouteOutcome[];
      reason?: string;
    }
  | { status: 'invalid'; eventId: string | null; instances: []; errors: EventFieldError[] };

/** Outcome of an event check: the event, or its field errors. */
export type EventCheck = { event: AggregateEvent } | { errors: EventFieldError[] };

// The API's own body validator (no coercion, no NUL, Postgres date-times), compiled once for the event schema.
const validate = strictValidatorFactory()({})({
  schema: AggregateEvent,
  method: 'POST',
  url: '/api/v1/events',
  httpPart: 'body',
} as never) as unknown as ((data: unknown) => boolean) & { errors?: InputError[] | null };

/**
 * Checks one event against the `AggregateEvent` contract with the API's strict input rules (no coercion, no NUL
 * character anywhere, date-times Postgres stores). Unknown fields are allowed and kept.
 */
export function checkAggregateEvent(value: unknown): EventCheck {
  if (validate(value)) return { event: value as AggregateEvent };
  return {
    errors: (validate.errors ?? []).map((e) => {
      const extra = (e.params['missingProperty'] ?? e.params['additionalProperty']) as string | undefined;
      return { pointer: extra ? `${e.instancePath}/${extra}` : e.instancePath, message: e.message };
    }),
  };
}

/** What a message's bytes turned out to be: a checked event, or why not (never quoting the bytes themselves). */
export type DecodedEvent =
  | { event: AggregateEvent }
  | { undecodable: 'is not UTF-8' | 'is not JSON' }
  | { errors: EventFieldError[]; /** The payload's `eventId` when it has a string one. */ eventId: string | null };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as UTF-8 text, or undefined when they are not UTF-8. */
export function utf8TextOf(data: Uint8Array): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

/**
 * Decodes an event from a message's bytes (UTF-8 JSON) and checks it with {@link checkAggregateEvent}: what the
 * JetStream bridge does with each message and an operator's redelivery of a quarantined one does again. The JSON
 * parser's own message is not kept: some quote the text, and a payload never goes into logs or answers.
 */
export function decodeAggregateEvent(data: Uint8Array): DecodedEvent {
  const text = utf8TextOf(data);
  if (text === undefined) return { undecodable: 'is not UTF-8' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { undecodable: 'is not JSON' };
  }
  const check = checkAggregateEvent(value);
  if ('event' in check) return check;
  const eventId = (value as { eventId?: unknown } | null)?.eventId;
  return { errors: check.errors, eventId: typeof eventId === 'string' ? eventId : null };
}

/** Answer of a redelivery. */
export interface RedeliveryOutcome {
  event: UnmatchedEvent;
  /** True when the row had been delivered or redelivered before: nothing was done again. */
  repeated: boolean;
}

/**
 * How events reach the ingress — over HTTP, by the JetStream bridge, or redelivered by an operator: the saga sees
 * which for each event (`SagaEventDelivery.via`).
 */
export type IngressTransport = Exclude<SagaEventDelivery['via'], 'unmatched'>;

/** Options of {@link SagaIngress.ingestEvents}. */
export interface IngestOptions {
  /** How the events came: `ingress` (HTTP, the default), `jetstream` (the bridge) or `redelivered`. */
  via?: IngressTransport;
}

/** What the sagas' event ingestion does, whatever the transport. */
export interface SagaIngress {
  /**
   * Ingests checked events, one result per event in their order; the events of one instance in that order, others
   * side by side. Throws (Temporal or Postgres unavailable) only once every other event was handled, so a retry of
   * the whole batch answers the recorded ones `duplicate`.
   */
  ingestEvents(events: readonly AggregateEvent[], options?: IngestOptions): Promise<IngestResult[]>;
  /**
   * {@link ingestEvents} answering each event's own settlement instead of throwing for the batch: a transport that
   * acknowledges event by event (the JetStream bridge) confirms those recorded and retries only those that failed.
   */
  ingestEachEvent(
    events: readonly AggregateEvent[],
    options?: IngestOptions,
  ): Promise<PromiseSettledResult<IngestResult>[]>;
  /**
   * Routes a recorded unmatched or late event again: to its running instance, or — a late start event — to a new
   * instance (next generation). Marks the row `redelivered`, logs and audits it. A second call answers the row.
   * @throws 404 unknown row (or another tenant's), 409 when the event can only go to a running instance and none runs.
   */
  redeliver(tenantId: string, id: string, requestedBy: string): Promise<RedeliveryOutcome>;
}

/** Events of one request ingested at once (each holds a pool connection for a moment and calls Temporal). */
const INGEST_CONCURRENCY = 8;

type Routing = ReturnType<typeof routeEvent>;

/** At most `n` tasks at a time; the others wait in order. */
function createSlots(n: number) {
  let free = n;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (free > 0) free--;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await task();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}

/** The event-level status of an event's instance outcomes. */
function statusOf(outcomes: readonly SagaRouteOutcome[]): {
  status: 'accepted' | 'unmatched' | 'late';
  reason?: string;
} {
  // An event no saga triggers on is accepted with no instances: it is recorded, and a repeat is a duplicate.
  if (outcomes.length === 0 || outcomes.some((o) => o.outcome === 'accepted')) return { status: 'accepted' };
  const first = outcomes.find((o) => o.outcome === 'unmatched') ?? outcomes[0]!;
  return { status: first.outcome as 'unmatched' | 'late', ...(first.reason ? { reason: first.reason } : {}) };
}

/** Creates the ingress over the pool and the saga Temporal binding. */
export function createSagaIngress(deps: { pool: Pool; logger: Logger; temporal: SagaTemporal }): SagaIngress {
  const { pool, logger, temporal } = deps;

  const ingestOne = async (
    event: AggregateEvent,
    { routes, problems }: Routing,
    via: IngressTransport,
  ): Promise<IngestResult> => {
    const earlier = await findIngestedEvent(pool, event.tenantId, event.eventId);
    if (earlier) return { status: 'duplicate', eventId: event.eventId, instances: earlier.outcomes };
    if (problems.length > 0) {
      return {
        status: 'invalid',
        eventId: event.eventId,
        instances: [],
        errors: problems.map((p) => ({ pointer: `/${p.path}`, message: p.message })),
      };
    }
    const outcomes: SagaRouteOutcome[] = [];
    for (const route of routes) {
      // The event's trace context, when its aggregate sent one, is the parent of the delivery (and the workflow's).
      const delivery = await withTraceparent(event.metadata?.traceparent, `ingest ${event.eventType}`, () =>
        temporal.deliver(route, event, via),
      );
      outcomes.push({
        sagaName: route.sagaName,
        correlationId: route.correlationId,
        workflowId: route.workflowId,
        outcome: delivery.outcome,
        reason: 'reason' in delivery ? delivery.reason : null,
      });
    }
    const recorded = await recordIngestedEvent(pool, event, outcomes, via);
    if (!recorded.recorded) return { status: 'duplicate', eventId: event.eventId, instances: recorded.outcomes };

    // An instance that started between the delivery and the record has already claimed its unmatched events and
    // missed this one: look again and hand it over (the workflow deduplicates by eventId).
    let handedOver = false;
    for (const [i, route] of routes.entries()) {
      if (outcomes[i]!.outcome !== 'unmatched') continue;
      if (await temporal.signalIfRunning(route, event, 'unmatched')) {
        outcomes[i] = { ...outcomes[i]!, outcome: 'accepted', reason: null };
        handedOver = true;
      }
    }
    if (handedOver) await updateIngestedOutcomes(pool, event.tenantId, event.eventId, outcomes);
    const result = statusOf(outcomes);
    logger.info(
      {
        tenantId: event.tenantId,
        eventId: event.eventId,
        eventType: event.eventType,
        status: result.status,
        via,
        instances: outcomes.map((o) => `${o.workflowId}:${o.outcome}`),
      },
      'aggregate event ingested',
    );
    return { ...result, eventId: event.eventId, instances: outcomes };
  };

  const ingestEachEvent: SagaIngress['ingestEachEvent'] = async (events, options = {}) => {
    const via = options.via ?? 'ingress';
    // Events of one instance (and repeats of one event id) are ingested in request order, so a start event and
    // the events after it in one batch reach the instance in that order; the others run side by side.
    const tails = new Map<string, Promise<unknown>>();
    const slots = createSlots(INGEST_CONCURRENCY);
    const runs = events.map((event) => {
      const routing = routeEvent(event, SAGAS);
      const keys = [`event:${event.eventId}`, ...routing.routes.map((route) => route.workflowId)];
      const before = keys.flatMap((key) => tails.get(key) ?? []);
      const run = Promise.allSettled(before).then(() => slots.run(() => ingestOne(event, routing, via)));
      for (const key of keys) tails.set(key, run);
      return run;
    });
    return Promise.allSettled(runs);
  };

  return {
    ingestEachEvent,

    async ingestEvents(events, options) {
      // Every event is settled before the answer: a failure answers 503 only once the others are recorded.
      const settled = await ingestEachEvent(events, options);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((s) => (s as PromiseFulfilledResult<IngestResult>).value);
    },

    async redeliver(tenantId, id, requestedBy) {
      // The row stays locked while its event is routed, so concurrent redeliveries deliver it once.
      return withTransaction(pool, async (client) => {
        const row = await getUnmatchedEvent(client, tenantId, id, { forUpdate: true });
        if (!row) throw notFound(`Unmatched event ${id} not found`);
        if (row.status !== 'pending') return { event: row, repeated: true };
        const definition = sagaByName(row.sagaName);
        if (!definition) throw conflict(`Saga ${row.sagaName} is no longer part of this deployment`);
        const route: SagaRoute = {
          sagaName: row.sagaName,
          workflowType: definition.workflowType,
          correlationId: row.correlationId,
          workflowId: row.workflowId,
          starts: triggerOf(definition, row.event)?.starts ?? false,
        };
        let done: Pick<Redelivery, 'delivery' | 'generation'>;
        if (await temporal.signalIfRunning(route, row.event, 'redelivered')) {
          done = { delivery: 'signalled', generation: null };
        } else if (row.kind === 'late' && route.starts) {
          done = await temporal.startAgain(route, row.event);
        } else if (row.kind === 'late') {
          throw conflict(
            `${row.event.eventType} can only go to a running instance, and ${row.workflowId} has finished; ` +
              'only a start event starts it again',
          );
        } else {
          throw conflict(
            `No instance of ${row.sagaName} for correlation id ${row.correlationId} runs yet; ` +
              'the event is delivered when it starts',
          );
        }
        const redelivery: Redelivery = {
          sagaName: row.sagaName,
          correlationId: row.correlationId,
          workflowId: row.workflowId,
          ...done,
          requestedBy,
          at: new Date().toISOString(),
        };
        await markRedelivered(client, row, redelivery);
        await recordAudit(client, {
          tenantId,
          eventType: 'saga.event.redelivered',
          actor: requestedBy,
          subject: `${row.sagaName}/${row.correlationId}`,
          correlationId: row.correlationId,
          details: { id, eventId: row.eventId, kind: row.kind, delivery: done.delivery, generation: done.generation },
        });
        logger.info(
          { tenantId, id, eventId: row.eventId, workflowId: row.workflowId, ...done },
          'unmatched event redelivered',
        );
        const after = await getUnmatchedEvent(client, tenantId, id);
        return { event: after!, repeated: false };
      });
    },
  };
}
