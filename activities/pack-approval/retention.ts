import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { purgeApprovalsBefore } from '../../db/queries/pack-approvals.js';
import { refuseDataErrors } from '../shared/data-errors.js';
import { whileHeartbeating } from '../shared/heartbeat.js';

/** Creates the retention activities. */
export function createRetentionActivities(deps: { pool: Pool; logger: Logger }) {
  return refuseDataErrors({
    /** Deletes pack-approval records older than `cutoff` in one transaction; safe to repeat. */
    purgeApprovalRecords: async (input: { cutoff: string }): Promise<Record<string, number>> => {
      const deleted = await whileHeartbeating(() => purgeApprovalsBefore(deps.pool, new Date(input.cutoff)));
      deps.logger.info({ cutoff: input.cutoff, deleted }, 'pack-approval retention purge');
      return deleted;
    },
  });
}

/** The retention activities. */
export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
