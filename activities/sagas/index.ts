/**
 * Bookkeeping activities of the saga queue: the instance's claim of the events recorded before it existed, and the
 * projection of its progress (instance, event log, compensations). Both are idempotent, so Temporal's retries and a
 * replayed workflow never double anything.
 */
import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { claimUnmatchedEvents, recordSagaProgress } from '../../db/queries/sagas.js';
import type { AggregateEvent, SagaBookkeepingActivities, SagaProgress } from '../../workflows/sagas/definitions.js';
import { refuseDataErrors } from '../shared/data-errors.js';

/** Dependencies of the saga bookkeeping activities. */
export interface SagaActivityDeps {
  pool: Pool;
  logger: Logger;
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
  const { pool, logger } = deps;
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
     */
    recordSagaProgress: async (progress: SagaProgress): Promise<void> => {
      await recordSagaProgress(pool, progress);
    },
  } satisfies SagaBookkeepingActivities);
}

/** The saga bookkeeping activities, as the workflows proxy them. */
export type SagaActivities = ReturnType<typeof createSagaActivities>;
