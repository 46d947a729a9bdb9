/**
 * Bookkeeping activities of the saga queue: the instance's claim of the events recorded before it existed, and the
 * projection of its progress (instance, event log, compensations), which also publishes the instance's facts
 * (started, completed, compensated, …) to the workflow stream and observes the lateness of its timers. Both are
 * idempotent, so Temporal's retries and a replayed workflow never double anything.
 */
import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { claimUnmatchedEvents, getSagaInstance, recordSagaProgress } from '../../db/queries/sagas.js';
import type { AggregateEvent, SagaBookkeepingActivities, SagaProgress } from '../../workflows/sagas/definitions.js';
import type { RunnerMetrics } from '../../workers/runner-metrics.js';
import { refuseDataErrors } from '../shared/data-errors.js';
import { sagaFactsOf, type WorkflowEventPublisher } from './egress.js';

/** Dependencies of the saga bookkeeping activities. */
export interface SagaActivityDeps {
  pool: Pool;
  logger: Logger;
  /** Publishes the instances' facts; nothing is published without it. */
  egress?: WorkflowEventPublisher | undefined;
  metrics?: RunnerMetrics | undefined;
}

/** Input of `claimUnmatchedEvents`. */
export interface ClaimUnmatchedEventsInput {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  /** The workflow's first-execution run id: a retry (or a continued run) with the same key gets the same events. */
  claimKey: string;
}

/** Creates the saga bookkeeping activities (`claimUnmatchedEvents`, `recordSagaProgress`). */
export function createSagaActivities(deps: SagaActivityDeps) {
  const { pool, logger, egress, metrics } = deps;
  return refuseDataErrors({
    /**
     * The events recorded `unmatched` for this instance before it started, in sequence order, marked delivered to
     * it. A retried call with the same claim key returns the same events again (and any recorded meanwhile).
     */
    claimUnmatchedEvents: async (input: ClaimUnmatchedEventsInput): Promise<AggregateEvent[]> => {
      const events = await claimUnmatchedEvents(pool, input);
      if (events.length > 0) {
        logger.info(
          { workflowId: input.workflowId, claimKey: input.claimKey, events: events.map((e) => e.eventId) },
          'saga instance claimed unmatched events',
        );
      }
      return events;
    },

    /**
     * Projects a change of an instance: instance row (only when newer), appended event log, compensations, and the
     * unmatched rows of applied events marked delivered. One transaction; a repeat changes nothing.
     *
     * The facts the change stands for are published first, decided from the row stored before the write
     * (`sagaFactsOf`): when this attempt's write fails, the row still holds the old status, so the retry publishes
     * the same facts again under the same fact ids (JetStream drops the copies); once a write has succeeded, the row
     * holds the new revision, so a retry publishes nothing. Publishing after the write instead could lose a fact for
     * good: a write that succeeded followed by a publish that failed leaves a retry that sees nothing left to tell.
     */
    recordSagaProgress: async (progress: SagaProgress): Promise<void> => {
      if (egress) {
        const stored = await getSagaInstance(pool, progress.tenantId, progress.sagaName, progress.correlationId);
        for (const fact of sagaFactsOf(stored, progress)) {
          await egress.publishSagaFact({
            tenantId: progress.tenantId,
            sagaName: progress.sagaName,
            correlationId: progress.correlationId,
            workflowId: progress.workflowId,
            generation: progress.generation ?? 0,
            fact,
            status: progress.status,
            reason: progress.reason,
            startedAt: progress.startedAt,
            finishedAt: progress.finishedAt,
            revision: progress.revision,
            ...(progress.traceparent && { traceparent: progress.traceparent }),
          });
        }
      }
      const { changed } = await recordSagaProgress(pool, progress);
      // Observed by the attempt whose write took effect, so a retried record does not count its timers twice.
      if (changed && metrics) {
        for (const timer of progress.timersFired ?? []) {
          metrics.timerLatenessSeconds.observe({ saga: timer.saga }, Math.max(0, timer.firedAt - timer.dueAt) / 1000);
        }
      }
    },
  } satisfies SagaBookkeepingActivities);
}

/** The saga bookkeeping activities, as the workflows proxy them. */
export type SagaActivities = ReturnType<typeof createSagaActivities>;
