import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { RetentionActivities } from '../../activities/pack-approval/retention.js';
import { HEARTBEAT_TIMEOUT } from '../shared/activity-options.js';
import { FailureType } from '../shared/failures.js';
import type { RetentionPurgeInput, RetentionPurgeResult } from './retention-definitions.js';

const { purgeApprovalRecords } = proxyActivities<RetentionActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '10 seconds', maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/**
 * Deletes finished pack-approval records, their transitions, deliveries and ingestion bookkeeping older than
 * `retentionDays` (the cutoff is taken from workflow time, so a retried purge uses the same one). Started by the
 * `retention-purge/pack-approvals` schedule; fails with `InvalidInput` for a non-positive number of days.
 * Idempotent: deleting again deletes nothing more.
 */
export async function retentionPurgeWorkflow(input: RetentionPurgeInput): Promise<RetentionPurgeResult> {
  if (!Number.isInteger(input.retentionDays) || input.retentionDays < 1) {
    throw ApplicationFailure.nonRetryable('retentionDays must be a positive integer', FailureType.InvalidInput);
  }
  const cutoff = new Date(Date.now() - input.retentionDays * 24 * 3600 * 1000).toISOString();
  return { cutoff, deleted: await purgeApprovalRecords({ cutoff }) };
}
