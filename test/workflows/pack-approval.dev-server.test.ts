/** packApprovalWorkflow on the real dev server: the ack Update, event dedupe, and policy-gate hold/release. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDeliveries } from '../../db/queries/pack-approvals.js';
import {
  ackApprovalUpdate,
  getApprovalQuery,
  packApprovalEventSignal,
  packApprovalWorkflowId,
  type PackApprovalEvent,
} from '../../workflows/pack-approval/definitions.js';
import type { packApprovalWorkflow } from '../../workflows/pack-approval/workflow.js';
import { recordHistory } from '../support/histories.js';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { createPackApprovalWorker, sampleEvent, startSmtp } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createDevServerEnv, uniqueName } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let runner: Awaited<ReturnType<typeof startReceiver>>;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueName('pack');

beforeAll(async () => {
  [env, db, smtp, runner] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    startSmtp(),
    startReceiver(() => 200),
  ]);
  worker = await createPackApprovalWorker(env, { pool: db.pool, smtpUrl: smtp.url, taskQueue });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await db?.drop();
  await smtp?.close();
  await runner?.close();
  await env?.teardown();
});

const start = (event: PackApprovalEvent) =>
  env.client.workflow.signalWithStart<typeof packApprovalWorkflow, [PackApprovalEvent]>('packApprovalWorkflow', {
    workflowId: packApprovalWorkflowId(event.tenantId, event.runId, event.approvalId),
    taskQueue,
    args: [{ tenantId: event.tenantId, runId: event.runId, approvalId: event.approvalId }],
    signal: packApprovalEventSignal,
    signalArgs: [event],
  });

describe('packApprovalWorkflow (dev server)', () => {
  it('takes the decision through the Update, ignores a repeated event, and resumes the Task Runner', async () => {
    const event = sampleEvent({
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const handle = await start(event);
    await start(event); // same eventId again: deduplicated inside the workflow
    await eventually(async () =>
      (await handle.query(getApprovalQuery).catch(() => undefined))?.state === 'pending' ? true : undefined,
    );
    const result = await handle.executeUpdate(ackApprovalUpdate, {
      args: [{ decision: 'approve', decidedBy: 'alice', grants: ['deploy:prod'], comment: 'go' }],
    });
    expect(result).toMatchObject({ decision: 'approve', decidedBy: 'alice', resumeStatus: 'pending' });
    const view = await handle.result();
    await recordHistory(handle, 'pack-approval-approved');
    expect(view).toMatchObject({ state: 'approved', resume: { status: 'resumed' }, eventIds: [event.eventId] });
    expect((await listDeliveries(db.pool, 'acme', event.runId, 'deploy-prod')).map((d) => d.reason)).toEqual([
      'requested',
      'decided',
    ]);
  });

  it('resumes the Task Runner before it sends the approvers the "decided" notice', async () => {
    const event = sampleEvent({
      approvalId: 'resume-first',
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const handle = await start(event);
    await eventually(async () =>
      (await handle.query(getApprovalQuery).catch(() => undefined))?.state === 'pending' ? true : undefined,
    );
    await handle.executeUpdate(ackApprovalUpdate, {
      args: [{ decision: 'reject', decidedBy: 'bob', grants: ['deploy:prod'], comment: 'not now' }],
    });
    expect(await handle.result()).toMatchObject({ state: 'rejected', resume: { status: 'resumed' } });
    await recordHistory(handle, 'pack-approval-rejected-resume-first');

    // The order in which the workflow scheduled its activities after the decision.
    const { events } = await handle.fetchHistory();
    const scheduled = (events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter((name): name is string => typeof name === 'string');
    // The "decided" round is the last one planned; the resume call must come before it.
    expect(scheduled.filter((name) => name === 'resumeTaskRunner')).toHaveLength(1);
    expect(scheduled.indexOf('resumeTaskRunner')).toBeLessThan(scheduled.lastIndexOf('planApprovalNotifications'));
    expect((await listDeliveries(db.pool, 'acme', event.runId, 'resume-first')).map((d) => d.reason)).toEqual([
      'requested',
      'decided',
    ]);
  });

  it('keeps an update that arrives before its request and applies it afterwards', async () => {
    const request = sampleEvent({ approvalId: 'early-update' });
    const cancel = {
      ...request,
      eventId: `${request.eventId}-cancel`,
      type: 'PackApprovalUpdated' as const,
      status: 'cancelled' as const,
    };
    const handle = await start(cancel);
    await handle.signal(packApprovalEventSignal, request);
    const view = await handle.result();
    expect(view).toMatchObject({ state: 'cancelled', eventIds: [request.eventId, cancel.eventId] });
  });

  it('holds on a policy gate and notifies the release', async () => {
    const hold = sampleEvent({
      kind: 'pack.policy.gate',
      approvalId: 'gate-sec',
      policyGate: { gateId: 'sec-critical', parameters: { found: '2' }, messages: ['2 critical findings'] },
    });
    const handle = await start(hold);
    await eventually(async () =>
      (await handle.query(getApprovalQuery).catch(() => undefined))?.state === 'held' ? true : undefined,
    );
    await handle.signal(packApprovalEventSignal, {
      ...hold,
      eventId: `${hold.eventId}-2`,
      type: 'PackApprovalUpdated',
      status: 'released',
      reason: 'VEX published',
    });
    const view = await handle.result();
    await recordHistory(handle, 'pack-policy-released');
    expect(view).toMatchObject({ state: 'released', lastReason: 'VEX published', resume: { status: 'pending' } });
    expect((await listDeliveries(db.pool, 'acme', hold.runId, 'gate-sec')).map((d) => d.reason)).toEqual([
      'hold',
      'released',
    ]);
    const holdMail = smtp.mails.find((m) => m.raw.includes(hold.runId));
    expect(holdMail?.raw).toContain('sec-critical');
  });
});
