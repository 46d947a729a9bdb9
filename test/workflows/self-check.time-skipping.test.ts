/** Self-check workflow on the real time-skipping test server. */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfCheckActivities } from '../../activities/self-check/index.js';
import { FailureType } from '../../workflows/shared/failures.js';
import type { selfCheckWorkflow } from '../../workflows/self-check/workflow.js';
import { createTimeSkippingEnv, uniqueName, workflowBundle } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createTimeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

async function withWorker<T>(taskQueue: string, fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createSelfCheckActivities(),
  });
  return worker.runUntil(fn);
}

describe('selfCheckWorkflow (time-skipping server)', () => {
  it('runs the requested number of activities and reports the queue that answered', async () => {
    expect(env.supportsTimeSkipping).toBe(true);
    const taskQueue = uniqueName('self-check');
    const result = await withWorker(taskQueue, () =>
      env.client.workflow.execute<typeof selfCheckWorkflow>('selfCheckWorkflow', {
        taskQueue,
        workflowId: uniqueName('self-check/t1'),
        args: [{ tenantId: 't1', activityCount: 5 }],
      }),
    );
    expect(result).toEqual({ tenantId: 't1', activitiesCompleted: 5, activityTaskQueues: [taskQueue] });
  });

  it('fails with InvalidInput, without retrying, for an out-of-range activity count', async () => {
    const taskQueue = uniqueName('self-check');
    const workflowId = uniqueName('self-check/t1');
    const error = await withWorker(taskQueue, () =>
      env.client.workflow.execute<typeof selfCheckWorkflow>('selfCheckWorkflow', {
        taskQueue,
        workflowId,
        args: [{ tenantId: 't1', activityCount: 5000 }],
        // Under this policy a retryable failure would run the workflow again.
        retry: { maximumAttempts: 3, initialInterval: '1 second' },
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const failed = error as WorkflowFailedError;
    expect(failed.cause).toBeInstanceOf(ApplicationFailure);
    expect(failed.cause).toMatchObject({ type: FailureType.InvalidInput, nonRetryable: true });
    // The latest run of the id is the first attempt, its only workflow task failed it, and no activity was scheduled.
    const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    expect(events[0]?.workflowExecutionStartedEventAttributes?.attempt).toBe(1);
    expect(events.filter((e) => e.workflowTaskStartedEventAttributes)).toHaveLength(1);
    expect(events.filter((e) => e.workflowTaskFailedEventAttributes)).toHaveLength(0);
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    expect(events.at(-1)?.workflowExecutionFailedEventAttributes?.newExecutionRunId ?? '').toBe('');
  });

  it('fires its durable timer: a one-day sleep completes in seconds of wall time', async () => {
    const taskQueue = uniqueName('self-check');
    const started = Date.now();
    const handle = await withWorker(taskQueue, async () => {
      const h = await env.client.workflow.start<typeof selfCheckWorkflow>('selfCheckWorkflow', {
        taskQueue,
        workflowId: uniqueName('self-check/t1'),
        args: [{ tenantId: 't1', activityCount: 1, sleepSeconds: 86_400 }],
      });
      await h.result();
      return h;
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    const description = await handle.describe();
    // Server time moved a day forward between start and close.
    expect(description.closeTime!.getTime() - description.startTime.getTime()).toBeGreaterThanOrEqual(86_400_000);
  });
});
