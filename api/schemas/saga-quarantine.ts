/**
 * TypeBox schemas of the quarantine of aggregate-event messages (`/api/v1/events/quarantined`: list, read, redeliver,
 * discard) and of the bulk replay of unmatched and quarantined events (`POST /api/v1/events/replay`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { QUARANTINE_ERROR_KINDS, QUARANTINE_STATUSES } from '../../db/queries/saga-quarantine.js';
import { Nullable } from '../../workflows/shared/schemas.js';
import { EVENT_RESULT_STATUSES, InstanceOutcome, SagaName } from './sagas.js';

const DateTime = Type.String({ format: 'date-time' });
const QuarantineId = Type.String({ pattern: '^[1-9][0-9]{0,17}$', description: 'Id of the quarantined message' });
const QuarantineStatus = Type.Union(QUARANTINE_STATUSES.map((s) => Type.Literal(s)));
const ErrorKind = Type.Union(
  QUARANTINE_ERROR_KINDS.map((k) => Type.Literal(k)),
  {
    description:
      'undecodable: not a JSON event; invalid: fails the event contract; tenant_mismatch: the subject’s tenant is ' +
      'not the event’s; max_deliver: still failing after the consumer’s last delivery',
  },
);
/** A reason or note: free text with at least one non-blank character. */
const Reason = Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S' });

export const QuarantineParams = Type.Object({ id: QuarantineId });

export const ListQuarantinedQuery = Type.Object(
  {
    status: Type.Optional(QuarantineStatus),
    errorKind: Type.Optional(ErrorKind),
    sagaName: Type.Optional(SagaName),
    subject: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'First seen at or after' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'First seen before' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 100, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

/** What the ingress answered for a redelivered message's event. */
const RedeliveryOutcome = Type.Object({
  status: Type.Union(EVENT_RESULT_STATUSES.map((s) => Type.Literal(s))),
  eventId: Type.String(),
  // The ingress' per-instance outcome, without the `$id` of the sagas plugin (whose schemas this plugin cannot see).
  instances: Type.Array(Type.Object(InstanceOutcome.properties)),
  reason: Type.Optional(Type.String()),
});

/** Who redelivered or discarded a message, when, why, and what the redelivery did. */
const ResolutionDoc = Type.Object({
  action: Type.Union([Type.Literal('redelivered'), Type.Literal('discarded')]),
  by: Type.String(),
  at: DateTime,
  reason: Nullable(Type.String({ description: 'The discard reason, or the redelivery note' })),
  outcome: Nullable(RedeliveryOutcome),
});

/** A quarantined message: every column, its payload as base64 and, when it is UTF-8 text, as text. */
export const QuarantinedEventDoc = Type.Object(
  {
    id: QuarantineId,
    stream: Type.String(),
    streamSequence: Type.Integer({ minimum: 1 }),
    subject: Type.String(),
    headers: Type.Record(Type.String(), Type.Array(Type.String())),
    payloadBase64: Type.String({ description: 'The message bytes as received' }),
    payloadText: Nullable(Type.String({ description: 'The bytes as text; null when they are not UTF-8' })),
    eventId: Nullable(Type.String()),
    sagaNames: Type.Array(Type.String(), { description: 'The sagas the payload routes to, when it decodes' }),
    errorKind: ErrorKind,
    error: Type.String(),
    deliveryCount: Type.Integer({ minimum: 1 }),
    firstSeenAt: DateTime,
    lastSeenAt: DateTime,
    status: QuarantineStatus,
    resolution: Nullable(ResolutionDoc),
  },
  { $id: 'QuarantinedEvent' },
);

export const QuarantinedList = Type.Object({
  items: Type.Array(Type.Ref('QuarantinedEvent')),
  nextCursor: Type.Optional(Type.String()),
});

export const RedeliverQuarantinedBody = Type.Object({ note: Type.Optional(Reason) }, { additionalProperties: false });
export const DiscardQuarantinedBody = Type.Object({ reason: Reason }, { additionalProperties: false });

/** Answer of a redelivery or discard: the row afterwards; `repeated` when it had been resolved so before. */
export const QuarantineActionResponse = Type.Object({
  event: Type.Ref('QuarantinedEvent'),
  repeated: Type.Boolean(),
});

/** The most events one replay handles. */
export const MAX_REPLAY_LIMIT = 1000;

export const ReplayBody = Type.Object(
  {
    source: Type.Union([Type.Literal('unmatched'), Type.Literal('quarantined')], {
      description:
        'unmatched: pending unmatched and late events (by recording time); quarantined: open ones (by first seen)',
    }),
    sagaName: Type.Optional(SagaName),
    from: Type.String({ format: 'date-time', description: 'At or after' }),
    to: Type.String({ format: 'date-time', description: 'Before' }),
    dryRun: Type.Optional(Type.Boolean({ default: true, description: 'Only count (the default)' })),
    expectedCount: Type.Optional(
      Type.Integer({ minimum: 0, description: 'A real run: the count the dry run answered' }),
    ),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_REPLAY_LIMIT, default: 100, description: 'Events this run handles' }),
    ),
  },
  { additionalProperties: false },
);
export type ReplayBody = Static<typeof ReplayBody>;

/** How one event of a replay ended. */
export const REPLAY_OUTCOMES = ['redelivered', 'repeated', 'refused'] as const;
export type ReplayOutcome = (typeof REPLAY_OUTCOMES)[number];

export const ReplayResponse = Type.Object({
  dryRun: Type.Boolean(),
  source: Type.Union([Type.Literal('unmatched'), Type.Literal('quarantined')]),
  count: Type.Integer({ description: 'Events matching now (all of them, not only the ones this run handles)' }),
  ids: Type.Array(Type.String(), { description: 'The ids this run handles (would handle), oldest first' }),
  outcomes: Type.Optional(
    Type.Object(
      {
        redelivered: Type.Integer({ minimum: 0 }),
        repeated: Type.Integer({ minimum: 0 }),
        refused: Type.Integer({ minimum: 0 }),
      },
      {
        description:
          'Real run: redelivered, repeated (resolved meanwhile: nothing done again), refused (still unroutable, ' +
          'or its instance does not run: left as it was)',
      },
    ),
  ),
  items: Type.Optional(
    Type.Array(
      Type.Object({
        id: Type.String(),
        outcome: Type.Union(REPLAY_OUTCOMES.map((o) => Type.Literal(o))),
        message: Type.Optional(Type.String()),
      }),
    ),
  ),
});
export type ReplayResponse = Static<typeof ReplayResponse>;
