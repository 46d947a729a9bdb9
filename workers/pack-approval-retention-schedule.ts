/** Creates (or updates) the retention schedule idempotently; run by every worker that serves pack approvals. */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import {
  RETENTION_CRON,
  RETENTION_SCHEDULE_ID,
  RETENTION_WORKFLOW_TYPE,
  type RetentionPurgeInput,
} from '../workflows/pack-approval/retention-definitions.js';
import type { retentionPurgeWorkflow } from '../workflows/pack-approval/retention-workflow.js';
import { TENANT_ID } from '../workflows/shared/search-attributes.js';

/**
 * Ensures the daily purge schedule exists with `retentionDays`; a second call (another replica, a restart) only
 * updates the retention if it changed.
 * @returns whether the schedule was created by this call.
 */
export async function ensureRetentionSchedule(
  client: Client,
  options: { retentionDays: number; taskQueue: string },
): Promise<boolean> {
  const args: [RetentionPurgeInput] = [{ retentionDays: options.retentionDays }];
  const action = {
    type: 'startWorkflow' as const,
    workflowType: RETENTION_WORKFLOW_TYPE as unknown as typeof retentionPurgeWorkflow,
    workflowId: 'retention-purge/pack-approvals/run',
    taskQueue: options.taskQueue,
    args,
    staticSummary: `Purge pack-approval records older than ${options.retentionDays} days`,
    // Every workflow carries a tenant; this one works across tenants.
    typedSearchAttributes: [{ key: TENANT_ID, value: 'system' }],
  };
  try {
    await client.schedule.create({
      scheduleId: RETENTION_SCHEDULE_ID,
      spec: { cronExpressions: [RETENTION_CRON] },
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    });
    return true;
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(RETENTION_SCHEDULE_ID).update((previous) => ({ ...previous, action }));
    return false;
  }
}
