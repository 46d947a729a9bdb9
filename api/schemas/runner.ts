/**
 * Schemas of the Runner routes: the workers view (`GET /api/v1/runner/workers`), Temporal's pollers of every product
 * task queue with their liveness.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TASK_QUEUES } from '../../core/config.js';

/**
 * Default of the liveness window: twice the Temporal server's long-poll expiry (`matching.longPollExpirationInterval`,
 * 1 minute). The server records a poller's access when each poll starts and when it ends, and a worker with a free slot
 * polls again at once, so an idle worker's last access is never more than about a minute old; the server itself keeps
 * a poller listed for `matching.PollerHistoryTTL` (5 minutes) after its last access, which a stopped worker would
 * otherwise look alive for.
 */
export const DEFAULT_LIVE_WITHIN_SECONDS = 120;
/** The widest liveness window a request may ask for (beyond the server's 5-minute poller history it changes nothing). */
export const MAX_LIVE_WITHIN_SECONDS = 3600;

/** The kinds of task a product queue is polled for. */
export const TASK_KINDS = ['workflow', 'activity'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const WorkersQuery = Type.Object(
  {
    liveWithinSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_LIVE_WITHIN_SECONDS,
        default: DEFAULT_LIVE_WITHIN_SECONDS,
        description:
          'A poller is live when Temporal saw it poll within this many seconds (an idle worker polls at least ' +
          'once a minute)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** One poller (a worker process, by its identity) of one kind of task on one queue. */
export const QueuePoller = Type.Object({
  identity: Type.String({ description: 'The worker’s identity (`pid@host` unless the worker sets one)' }),
  lastAccessTime: Type.String({ format: 'date-time', description: 'When Temporal last saw it poll (server clock)' }),
  secondsSinceLastAccess: Type.Number({ description: 'Age of lastAccessTime when the view was taken' }),
  ratePerSecond: Type.Optional(
    Type.Number({ description: 'The task-queue rate limit the worker polls with, when it set one' }),
  ),
  live: Type.Boolean({ description: 'Seen within liveWithinSeconds' }),
});
export type QueuePoller = Static<typeof QueuePoller>;

/** The pollers of one kind of task on one queue. */
export const QueueKindPollers = Type.Object({
  kind: Type.Union(TASK_KINDS.map((k) => Type.Literal(k))),
  live: Type.Boolean({ description: 'At least one poller is live' }),
  pollers: Type.Array(QueuePoller, { description: 'Most recently seen first' }),
});
export type QueueKindPollers = Static<typeof QueueKindPollers>;

/** One product task queue with its pollers. */
export const QueueWorkers = Type.Object({
  name: Type.Union(
    TASK_QUEUES.map((q) => Type.Literal(q)),
    { description: 'Product task queue' },
  ),
  taskQueue: Type.String({ description: 'The Temporal task queue served (with the deployment’s prefix)' }),
  live: Type.Boolean({ description: 'Every kind of task the queue carries has a live poller' }),
  kinds: Type.Array(QueueKindPollers, {
    description: 'The kinds of task the queue carries: workflow and activity, or activity only (effects)',
  }),
});
export type QueueWorkers = Static<typeof QueueWorkers>;

export const WorkersView = Type.Object({
  observedAt: Type.String({ format: 'date-time' }),
  liveWithinSeconds: Type.Integer(),
  queues: Type.Array(QueueWorkers),
  queuesWithoutLivePoller: Type.Array(Type.String(), {
    description: 'Names of the queues with a kind of task no live poller takes: work there waits',
  }),
});
export type WorkersView = Static<typeof WorkersView>;
