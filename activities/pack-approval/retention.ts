import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { purgeApprovalsBefore } from '../../db/queries/pack-approvals.js';

/** Creates the retention activities. */
export function createRetentionActivities(deps: { pool: Pool; logger: Logger }) {
  return {
    /** Deletes pack-approval records older than `cutoff` in one transaction; safe to repeat. */
    purgeApprovalRecords: async (input: { cutoff: string }): Promise<Record<string, number>> => {
      const deleted = await purgeApprovalsBefore(deps.pool, new Date(input.cutoff));
      deps.logger.info({ cutoff: input.cutoff, deleted }, 'pack-approval retention purge');
      return deleted;
    },
  };
}

/** The retention activities. */
export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
