import { ApplicationFailure, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { SelfCheckActivities } from '../../activities/self-check/index.js';
import { FailureType } from '../shared/failures.js';
import {
  getSelfCheckProgressQuery,
  SELF_CHECK_MAX_ACTIVITIES,
  SELF_CHECK_MAX_SLEEP_SECONDS,
  type SelfCheckInput,
  type SelfCheckResult,
} from './definitions.js';

/**
 * Runs `activityCount` no-op activities one after another, then optionally sleeps on a durable timer, and
 * reports which task queues answered.
 *
 * - Input: {@link SelfCheckInput}; an invalid count fails the run with `InvalidInput` (non-retryable).
 * - Query: `getSelfCheckProgress`.
 * - Timers: one of `sleepSeconds` when set; each activity has a 10 s start-to-close timeout and up to 3 attempts.
 * - Fails with `SelfCheckMismatch` if an activity echoes another sequence number than it was given.
 * - Idempotency: the id `self-check/{tenant}/{checkId}` is the business key; activities have no side effects.
 */
export async function selfCheckWorkflow(input: SelfCheckInput): Promise<SelfCheckResult> {
  const { activityCount } = input;
  if (!Number.isInteger(activityCount) || activityCount < 0 || activityCount > SELF_CHECK_MAX_ACTIVITIES) {
    throw ApplicationFailure.nonRetryable(
      `activityCount must be an integer between 0 and ${SELF_CHECK_MAX_ACTIVITIES}`,
      FailureType.InvalidInput,
    );
  }
  const sleepSeconds = input.sleepSeconds ?? 0;
  if (!Number.isInteger(sleepSeconds) || sleepSeconds < 0 || sleepSeconds > SELF_CHECK_MAX_SLEEP_SECONDS) {
    throw ApplicationFailure.nonRetryable(
      `sleepSeconds must be an integer between 0 and ${SELF_CHECK_MAX_SLEEP_SECONDS}`,
      FailureType.InvalidInput,
    );
  }
  const { echoSelfCheck } = proxyActivities<SelfCheckActivities>({
    taskQueue: input.activityTaskQueue ?? workflowInfo().taskQueue,
    startToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 3 },
  });

  let completed = 0;
  setHandler(getSelfCheckProgressQuery, () => ({ completed, total: activityCount }));

  const queues = new Set<string>();
  for (let sequence = 0; sequence < activityCount; sequence++) {
    const echo = await echoSelfCheck({ sequence });
    if (echo.sequence !== sequence) {
      throw ApplicationFailure.nonRetryable(
        `activity echoed ${echo.sequence} for ${sequence}`,
        FailureType.SelfCheckMismatch,
      );
    }
    queues.add(echo.taskQueue);
    completed++;
  }
  if (sleepSeconds > 0) await sleep(sleepSeconds * 1000);
  return { tenantId: input.tenantId, activitiesCompleted: completed, activityTaskQueues: [...queues].sort() };
}
