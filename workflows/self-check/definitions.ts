/**
 * Self-check: a workflow with a configurable number of no-op activities. It proves the round trip
 * API → Temporal → worker → activity for `GET /ready?deep=true`, and is the Temporal floor baseline of the benchmarks.
 */
import { defineQuery } from '@temporalio/workflow';

/** Workflow type name (the function name; never rename). */
export const SELF_CHECK_WORKFLOW_TYPE = 'selfCheckWorkflow';
/** Upper bound of `activityCount`, to keep a self-check cheap. */
export const SELF_CHECK_MAX_ACTIVITIES = 1000;
/** Upper bound of `sleepSeconds` (one day). */
export const SELF_CHECK_MAX_SLEEP_SECONDS = 86_400;

/** Input of {@link SELF_CHECK_WORKFLOW_TYPE}. */
export interface SelfCheckInput {
  tenantId: string;
  /** Number of sequential no-op activities (0–1000). */
  activityCount: number;
  /** Task queue of the activities; defaults to the workflow's own queue. */
  activityTaskQueue?: string;
  /** Durable timer after the activities (0–86400 s), to prove timers fire; default none. */
  sleepSeconds?: number;
}

/** Result of a self-check. */
export interface SelfCheckResult {
  tenantId: string;
  activitiesCompleted: number;
  /** Task queues whose workers answered the activities. */
  activityTaskQueues: string[];
}

/** Progress of a running self-check. */
export interface SelfCheckProgress {
  completed: number;
  total: number;
}

/** Builds the business-key workflow id `self-check/{tenant}/{checkId}`. */
export function selfCheckWorkflowId(tenantId: string, checkId: string): string {
  return `self-check/${tenantId}/${checkId}`;
}

/** Query: how many activities have completed. */
export const getSelfCheckProgressQuery = defineQuery<SelfCheckProgress>('getSelfCheckProgress');
