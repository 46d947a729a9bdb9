/** Retention of pack-approval records: a Temporal Schedule runs `retentionPurgeWorkflow` daily. */

/** Workflow type name (the function name; never rename). */
export const RETENTION_WORKFLOW_TYPE = 'retentionPurgeWorkflow';
/** Id of the one system-wide schedule. */
export const RETENTION_SCHEDULE_ID = 'retention-purge/pack-approvals';
/** Daily, outside business hours (UTC). */
export const RETENTION_CRON = '17 3 * * *';

/** Input of the purge. */
export interface RetentionPurgeInput {
  /** Records whose last change is older than this many days are deleted (finished approvals only). */
  retentionDays: number;
}

/** What a purge deleted. */
export interface RetentionPurgeResult {
  cutoff: string;
  deleted: Record<string, number>;
}
