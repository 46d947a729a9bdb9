/**
 * TypeBox schemas of the saga routes: the event ingress (`POST /api/v1/events`), the saga instances read from the
 * projection, cancel, and the unmatched and late events with their redelivery. The event contract itself
 * (`AggregateEvent`) lives with the saga definitions, which derive its type from it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AggregateEvent, SAGA_STATUSES } from '../../workflows/sagas/definitions.js';
import { SAGA_RESET_POINTS } from '../temporal/sagas.js';
import { Id, Nullable } from '../../workflows/shared/schemas.js';
import { FieldErrorDoc } from '../errors.js';

export { AggregateEvent };

/** The most events one request may carry. */
export const MAX_EVENTS_PER_REQUEST = 500;

const DateTime = Type.String({ format: 'date-time' });
/** A saga's name, as routes and filters take it. */
export const SagaName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$', description: 'Saga name' });
const SagaStatus = Type.Union(SAGA_STATUSES.map((s) => Type.Literal(s)));

/**
 * Body of the ingress, for the OpenAPI document: one event, or a batch. The route validates each event on its own
 * (so one invalid event of a batch does not refuse the others), not with this schema.
 */
export const EventsBody = Type.Union(
  [
    Type.Ref('AggregateEvent'),
    Type.Object(
      {
        events: Type.Array(Type.Ref('AggregateEvent'), {
          minItems: 1,
          maxItems: MAX_EVENTS_PER_REQUEST,
          description: 'Processed in order; each event is answered on its own',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  { description: `One AggregateEvent, or { events: [AggregateEvent, …] } with 1–${MAX_EVENTS_PER_REQUEST} events` },
);

/** What the ingress did with an event for one saga instance. */
export const InstanceOutcome = Type.Object(
  {
    sagaName: Type.String(),
    correlationId: Type.String(),
    workflowId: Type.String(),
    outcome: Type.Union([Type.Literal('accepted'), Type.Literal('unmatched'), Type.Literal('late')]),
    reason: Nullable(Type.String()),
  },
  { $id: 'SagaInstanceOutcome' },
);

/** Answer statuses of one event. */
export const EVENT_RESULT_STATUSES = ['accepted', 'duplicate', 'unmatched', 'late', 'invalid'] as const;

/** The answer for one event of a request. */
export const EventResult = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: 'Position of the event in the request' }),
    eventId: Nullable(Type.String({ description: 'null when the event has no valid eventId' })),
    status: Type.Union(
      EVENT_RESULT_STATUSES.map((s) => Type.Literal(s)),
      {
        description:
          'accepted: delivered to every instance in `instances` (none when no saga triggers on the event); ' +
          'unmatched: recorded, delivered when its instance starts; late: its instance has finished (see reason; ' +
          'redeliver explicitly); duplicate: recorded before (the recorded instances); invalid: see errors',
      },
    ),
    instances: Type.Array(Type.Ref('SagaInstanceOutcome')),
    reason: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(FieldErrorDoc)),
  },
  { $id: 'SagaEventResult' },
);
export type EventResult = Static<typeof EventResult>;

/** Answer of the ingress: one result per event, in request order. */
export const EventsResponse = Type.Object(
  { results: Type.Array(Type.Ref('SagaEventResult')) },
  { $id: 'SagaEventsResponse' },
);

/** The last event an instance received. */
const LastEvent = Type.Object({
  eventId: Type.String(),
  eventType: Type.String(),
  aggregateId: Type.String(),
  sequence: Type.Integer(),
  receivedAt: DateTime,
});

const Compensation = Type.Object({
  step: Type.String(),
  status: Type.Union([Type.Literal('compensated'), Type.Literal('failed')]),
  error: Type.Optional(Type.String()),
  at: DateTime,
});

/** A saga instance as the projection holds it. */
export const SagaInstanceDoc = Type.Object(
  {
    tenantId: Type.String(),
    sagaName: Type.String(),
    correlationId: Type.String(),
    workflowId: Type.String(),
    status: SagaStatus,
    state: Type.Unknown({ description: 'The saga’s own state summary' }),
    reason: Nullable(Type.String()),
    lastEvent: Nullable(LastEvent),
    appliedEvents: Type.Integer(),
    startedAt: DateTime,
    updatedAt: DateTime,
    finishedAt: Nullable(DateTime),
  },
  { $id: 'SagaInstance' },
);

export const SagaParams = Type.Object({ saga: SagaName, correlationId: Id('Correlation id') });

export const ListSagasQuery = Type.Object(
  {
    saga: Type.Optional(SagaName),
    status: Type.Optional(SagaStatus),
    correlationId: Type.Optional(Id('Correlation id')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 500, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const SagaList = Type.Object({
  items: Type.Array(Type.Ref('SagaInstance')),
  nextCursor: Type.Optional(Type.String()),
});

/** One entry of an instance's timeline (the append-only saga event log). */
const TimelineEntry = Type.Object({
  eventId: Type.String(),
  eventType: Type.String(),
  aggregateId: Type.String(),
  sequence: Type.Integer(),
  outcome: Type.Union(
    ['applied', 'duplicate', 'unmatched', 'late', 'redelivered'].map((o) => Type.Literal(o)),
    { description: 'What the event did to the instance' },
  ),
  via: Type.Union(['ingress', 'jetstream', 'unmatched', 'redelivered'].map((v) => Type.Literal(v))),
  reason: Nullable(Type.String()),
  recordedAt: DateTime,
});

export const SagaDetail = Type.Object({
  instance: Type.Ref('SagaInstance'),
  timeline: Type.Array(TimelineEntry, { description: 'Oldest first' }),
  compensations: Type.Array(Compensation),
});

export const CancelSagaBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1000 }) },
  { additionalProperties: false },
);

/** Body of a reset: explicit intent, by the instance's workflow id. */
export const ResetSagaBody = Type.Object(
  {
    confirm: Type.String({ minLength: 1, maxLength: 400, description: 'The instance’s workflowId, as confirmation' }),
    reason: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S' }),
    to: Type.Union(
      SAGA_RESET_POINTS.map((p) => Type.Literal(p)),
      { description: 'Back to the first or the last completed workflow task of the current run' },
    ),
  },
  { additionalProperties: false },
);

/** Answer of a reset. */
export const ResetSagaResponse = Type.Object({
  workflowId: Type.String(),
  runId: Type.String({ description: 'The new run (the current run of the instance)' }),
  baseRunId: Type.String({ description: 'The run it was reset from' }),
  eventId: Type.Integer({ description: 'The WorkflowTaskCompleted event of the base run it continues after' }),
  to: Type.Union(SAGA_RESET_POINTS.map((p) => Type.Literal(p))),
  repeated: Type.Boolean({ description: 'The same reset was done before: nothing was done again' }),
});

/** The instance's own view (the cancel Update's answer). */
export const SagaViewDoc = Type.Object({
  tenantId: Type.String(),
  sagaName: Type.String(),
  correlationId: Type.String(),
  workflowId: Type.String(),
  status: SagaStatus,
  state: Type.Unknown(),
  waitingFor: Nullable(Type.String()),
  lastEvent: Nullable(LastEvent),
  compensations: Type.Array(Compensation),
  startedAt: DateTime,
  finishedAt: Nullable(DateTime),
  reason: Nullable(Type.String()),
  appliedEvents: Type.Integer(),
});

const UnmatchedKind = Type.Union([Type.Literal('unmatched'), Type.Literal('late')]);
const UnmatchedStatus = Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('redelivered')]);
const UnmatchedId = Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: 'Id of the recorded event' });

export const ListUnmatchedQuery = Type.Object(
  {
    kind: Type.Optional(UnmatchedKind),
    status: Type.Optional(UnmatchedStatus),
    saga: Type.Optional(SagaName),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 100, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

/** What an explicit redelivery did. */
const RedeliveryDoc = Type.Object({
  delivery: Type.Union([Type.Literal('signalled'), Type.Literal('started')], {
    description: 'signalled: to the running instance; started: a new instance (generation) for a late start event',
  }),
  generation: Nullable(Type.Integer()),
  requestedBy: Type.String(),
  at: DateTime,
});

/** An unmatched or late event. */
export const UnmatchedEventDoc = Type.Object(
  {
    id: UnmatchedId,
    sagaName: Type.String(),
    correlationId: Type.String(),
    workflowId: Type.String(),
    eventId: Type.String(),
    sequence: Type.Integer(),
    kind: UnmatchedKind,
    reason: Type.String(),
    status: UnmatchedStatus,
    claimedBy: Nullable(Type.String({ description: 'First-execution run id of the instance that claimed it' })),
    redelivery: Nullable(RedeliveryDoc),
    recordedAt: DateTime,
    deliveredAt: Nullable(DateTime),
    event: Type.Ref('AggregateEvent'),
  },
  { $id: 'UnmatchedEvent' },
);

export const UnmatchedList = Type.Object({
  items: Type.Array(Type.Ref('UnmatchedEvent')),
  nextCursor: Type.Optional(Type.String()),
});

export const UnmatchedParams = Type.Object({ id: UnmatchedId });

/** Answer of a redelivery: the row afterwards; `repeated` when it had been delivered or redelivered before. */
export const RedeliverResponse = Type.Object({
  event: Type.Ref('UnmatchedEvent'),
  repeated: Type.Boolean(),
});
