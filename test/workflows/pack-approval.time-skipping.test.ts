/**
 * packApprovalWorkflow timers on the real time-skipping server: reminders before expiry, then expiry, which
 * notifies and reports back to the Task Runner — a day of server time in seconds.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeliveries, listTransitions } from '../../db/queries/pack-approvals.js';
import { packApprovalEventSignal, packApprovalWorkflowId } from '../../workflows/pack-approval/definitions.js';
import type { packApprovalWorkflow } from '../../workflows/pack-approval/workflow.js';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { recordHistory } from '../support/histories.js';
import { startReceiver } from '../support/http-sinks.js';
import { createPackApprovalWorker, sampleEvent, startSmtp } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createTimeSkippingEnv, uniqueName } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let runner: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  [env, db, smtp, runner] = await Promise.all([
    createTimeSkippingEnv(),
    createTestDatabase(),
    startSmtp(),
    startReceiver(() => 200),
  ]);
});
afterAll(async () => {
  await db?.drop();
  await smtp?.close();
  await runner?.close();
  await env?.teardown();
});

describe('packApprovalWorkflow timers (time-skipping server)', () => {
  it('sends reminders before expiry, then expires, notifies and reports the expiry to the Task Runner', async () => {
    const taskQueue = uniqueName('pack');
    const worker = await createPackApprovalWorker(env, { pool: db.pool, smtpUrl: smtp.url, taskQueue });
    // Server time, not wall time: the test server starts its clock at the real time.
    const requestedAt = new Date();
    const event = sampleEvent({
      requestedAt: requestedAt.toISOString(),
      expiresAt: new Date(requestedAt.getTime() + 24 * 3600 * 1000).toISOString(),
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const started = Date.now();
    const view = await worker.runUntil(async () => {
      const handle = await env.client.workflow.signalWithStart<typeof packApprovalWorkflow, [typeof event]>(
        'packApprovalWorkflow',
        {
          workflowId: packApprovalWorkflowId(event.tenantId, event.runId, event.approvalId),
          taskQueue,
          args: [
            {
              tenantId: event.tenantId,
              runId: event.runId,
              approvalId: event.approvalId,
              reminderOffsetsSeconds: [7200, 1800],
            },
          ],
          signal: packApprovalEventSignal,
          signalArgs: [event],
          typedSearchAttributes: [{ key: TENANT_ID, value: event.tenantId }],
        },
      );
      const result = await handle.result();
      await recordHistory(handle, 'pack-approval-expired');
      return result;
    });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(view).toMatchObject({ state: 'expired', resume: { status: 'resumed' } });
    const reasons = (await listDeliveries(db.pool, 'acme', event.runId, 'deploy-prod')).map((d) => d.reason);
    expect(reasons).toEqual(['requested', 'reminder', 'reminder', 'expired']);
    expect(smtp.mails.filter((m) => m.raw.includes(event.runId))).toHaveLength(4);
    expect((await listTransitions(db.pool, 'acme', event.runId, 'deploy-prod')).map((t) => t.to_state)).toEqual([
      'pending',
      'expired',
    ]);
    const callback = runner.received.find((r) => r.body.includes(event.runId));
    expect(JSON.parse(callback!.body)).toMatchObject({
      decision: 'reject',
      comment: 'approval expired',
      decidedBy: 'system',
    });
  });
});
