/** Self-check workflow on the real dev server: search attributes, visibility, queries, idempotent starts. */
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfCheckActivities } from '../../activities/self-check/index.js';
import type { TemporalFacade } from '../../api/temporal/facade.js';
import { startSelfCheck } from '../../api/temporal/self-check.js';
import { getSelfCheckProgressQuery } from '../../workflows/self-check/definitions.js';
import { FailureType } from '../../workflows/shared/failures.js';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { recordHistory } from '../support/histories.js';
import { createDevServerEnv, uniqueName, workflowBundle } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let facade: TemporalFacade;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueName('self-check');

beforeAll(async () => {
  env = await createDevServerEnv();
  facade = {
    client: env.client,
    connection: env.connection,
    namespace: env.namespace ?? 'default',
    address: env.address,
    withDeadline: (fn) => fn(),
    ping: async () => undefined,
    close: async () => undefined,
  };
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createSelfCheckActivities(),
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

describe('selfCheckWorkflow (dev server)', () => {
  it('sets TenantId so runs are found by tenant in visibility (what the Web UI filters on)', async () => {
    const tenant = uniqueName('tenant');
    const { handle } = await startSelfCheck(facade, { tenantId: tenant, taskQueue, activityCount: 2 });
    await handle.result();
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(TENANT_ID)).toBe(tenant);
    expect(await description.staticSummary()).toContain('2 activities');

    // Visibility is eventually consistent on the dev server.
    let ids: string[] = [];
    for (let attempt = 0; attempt < 50 && ids.length === 0; attempt++) {
      ids = [];
      for await (const wf of env.client.workflow.list({ query: `TenantId = "${tenant}"` })) ids.push(wf.workflowId);
      if (ids.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ids).toEqual([handle.workflowId]);
    const other = await env.client.workflow.count(`TenantId = "${uniqueName('other')}"`);
    expect(other.count).toBe(0);
  });

  it('answers the progress query', async () => {
    const { handle } = await startSelfCheck(facade, { tenantId: 't1', taskQueue, activityCount: 3 });
    await handle.result();
    await recordHistory(handle, 'self-check-three-activities');
    expect(await handle.query(getSelfCheckProgressQuery)).toEqual({ completed: 3, total: 3 });
  });

  it('sleeps on a durable timer and fails invalid input without retrying', async () => {
    const timer = await startSelfCheck(facade, { tenantId: 't1', taskQueue, activityCount: 1, sleepSeconds: 1 });
    expect((await timer.handle.result()).activitiesCompleted).toBe(1);
    await recordHistory(timer.handle, 'self-check-with-timer');
    const invalid = await startSelfCheck(facade, { tenantId: 't1', taskQueue, activityCount: -1 });
    const error = await invalid.handle.result().catch((e: unknown) => e);
    await recordHistory(invalid.handle, 'self-check-invalid-input');
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: FailureType.InvalidInput, nonRetryable: true });
    // The first workflow task failed the run: no task retried, no activity scheduled, no further run.
    const events = (await invalid.handle.fetchHistory()).events ?? [];
    expect(events[0]?.workflowExecutionStartedEventAttributes?.attempt).toBe(1);
    expect(events.filter((e) => e.workflowTaskStartedEventAttributes)).toHaveLength(1);
    expect(events.filter((e) => e.workflowTaskFailedEventAttributes)).toHaveLength(0);
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    expect(events.at(-1)?.workflowExecutionFailedEventAttributes?.newExecutionRunId ?? '').toBe('');
  });

  it('refuses a second start with the same check id, even after the first has closed', async () => {
    const checkId = uniqueName('check');
    const first = await startSelfCheck(facade, { tenantId: 't1', checkId, taskQueue, activityCount: 1 });
    await first.handle.result();
    await expect(
      startSelfCheck(facade, { tenantId: 't1', checkId, taskQueue, activityCount: 1 }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    // The same check id under another tenant is another business key.
    const other = await startSelfCheck(facade, { tenantId: 't2', checkId, taskQueue, activityCount: 1 });
    expect(other.handle.workflowId).toBe(`self-check/t2/${checkId}`);
  });
});
