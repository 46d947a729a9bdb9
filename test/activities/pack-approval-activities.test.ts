import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPackApprovalActivities } from '../../activities/pack-approval/index.js';
import { generateSecret } from '../../core/local-secrets.js';
import { upsertRule } from '../../db/queries/notify-config.js';
import type { ApprovalView, NotificationIntent } from '../../workflows/pack-approval/definitions.js';
import { initialView, requestedTransition } from '../../workflows/pack-approval/state.js';
import { rejectionOf } from '../support/assertions.js';
import { packApprovalEvent, RESUME_TOKEN } from '../support/fixtures.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';
import { startSmtp, testPackApprovalDeps } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const LINK_SECRET = generateSecret();

let db: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
const receiver = useHttpReceiver((res) => res.writeHead(202).end());
const { received } = receiver;

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startSmtp();
});
afterEach(() => {
  smtp.mails.length = 0;
});
afterAll(async () => {
  await smtp?.close();
  await db?.drop();
});

function activities() {
  return createPackApprovalActivities({
    ...testPackApprovalDeps({ smtpUrl: smtp.url, linkSecret: LINK_SECRET, defaultRecipients: ['approvers@acme.test'] }),
    pool: db.pool,
    logger: memoryLogger().logger,
  });
}

/** The view of a fresh approval of its own tenant, so tests sharing the database never see each other's rows. */
function freshView(): ApprovalView {
  return initialView(packApprovalEvent({ tenantId: `tenant-${randomUUID().slice(0, 8)}` }), 3600);
}

async function rowsOf<T>(sql: string, view: ApprovalView): Promise<T[]> {
  return (await db.pool.query<T & object>(sql, [view.tenantId])).rows;
}

/** The failure an activity run rejects with. */
const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, ApplicationFailure);

describe('recordApproval', () => {
  it('writes the approval, its transition and the audit record once; a replay appends nothing', async () => {
    const env = new MockActivityEnvironment();
    const { recordApproval } = activities();
    const view = freshView();
    const input = { view, seq: 1, transition: requestedTransition(view), actor: 'task-runner', eventId: 'evt-1' };

    expect(await runActivity(env, recordApproval, input)).toEqual({ appended: true });
    expect(await runActivity(env, recordApproval, input)).toEqual({ appended: false });

    expect(await rowsOf('SELECT state, seq FROM notify.pack_approvals WHERE tenant_id = $1', view)).toEqual([
      { state: 'pending', seq: 1 },
    ]);
    expect(
      await rowsOf(
        'SELECT from_state, to_state, event_id FROM notify.pack_approval_transitions WHERE tenant_id = $1',
        view,
      ),
    ).toEqual([{ from_state: null, to_state: 'pending', event_id: 'evt-1' }]);
    expect(await rowsOf('SELECT event_type FROM audit.events WHERE tenant_id = $1', view)).toEqual([
      { event_type: 'pack.approval.requested' },
    ]);
  });

  it('never lets an older write overwrite a newer state', async () => {
    const env = new MockActivityEnvironment();
    const { recordApproval } = activities();
    const view = freshView();
    await runActivity(env, recordApproval, { view: { ...view, state: 'approved' }, seq: 2, actor: 'alice' });
    await runActivity(env, recordApproval, { view, seq: 1, actor: 'task-runner' });
    expect(await rowsOf('SELECT state, seq FROM notify.pack_approvals WHERE tenant_id = $1', view)).toEqual([
      { state: 'approved', seq: 2 },
    ]);
  });
});

describe('planApprovalNotifications', () => {
  it('falls back to the default recipients and records each planned delivery once', async () => {
    const env = new MockActivityEnvironment();
    const { planApprovalNotifications } = activities();
    const view = freshView();

    const intents = await runActivity(env, planApprovalNotifications, { view, reason: 'requested', round: 0 });
    expect(intents).toEqual([
      {
        channel: 'email',
        recipient: 'approvers@acme.test',
        templateId: expect.any(String) as string,
        locale: 'en-US',
        reason: 'requested',
      },
    ]);
    await runActivity(env, planApprovalNotifications, { view, reason: 'requested', round: 0 });
    expect(await rowsOf('SELECT recipient, status FROM notify.deliveries WHERE tenant_id = $1', view)).toEqual([
      { recipient: 'approvers@acme.test', status: 'queued' },
    ]);
  });

  it("follows the tenant's routing rules instead of the defaults", async () => {
    const view = freshView();
    await upsertRule(
      db.pool,
      {
        ruleId: 'prod',
        tenantId: view.tenantId,
        name: 'prod deploys to the hook',
        predicate: '"deploy:prod" in event.requiredGrants',
        channels: [{ channel: 'webhook', recipients: [`${receiver.url}/hooks/approvals`] }],
        enabled: true,
        priority: 10,
      },
      'admin',
    );
    const intents = await runActivity(new MockActivityEnvironment(), activities().planApprovalNotifications, {
      view,
      reason: 'requested',
      round: 0,
    });
    expect(intents.map((i) => [i.channel, i.recipient])).toEqual([['webhook', `${receiver.url}/hooks/approvals`]]);
  });
});

describe('deliverApprovalNotification', () => {
  const email = (): NotificationIntent => ({
    channel: 'email',
    recipient: 'approvers@acme.test',
    templateId: 'pack-approval.requested',
    locale: 'en-US',
    reason: 'requested',
  });
  const webhook = (): NotificationIntent => ({ ...email(), channel: 'webhook', recipient: `${receiver.url}/hook` });

  it('sends the email once per idempotency key, without the resume secret, and records it as sent', async () => {
    const env = new MockActivityEnvironment();
    const { deliverApprovalNotification } = activities();
    const view = freshView();

    expect(await runActivity(env, deliverApprovalNotification, { view, intent: email(), round: 0 })).toEqual({
      status: 'sent',
    });
    expect(await runActivity(env, deliverApprovalNotification, { view, intent: email(), round: 0 })).toEqual({
      status: 'already-sent',
    });

    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]?.to).toEqual(['approvers@acme.test']);
    expect(smtp.mails[0]?.raw).toContain(view.runId);
    expect(smtp.mails[0]?.raw).not.toContain(RESUME_TOKEN);
    expect(await rowsOf('SELECT channel, status FROM notify.deliveries WHERE tenant_id = $1', view)).toEqual([
      { channel: 'email', status: 'sent' },
    ]);
  });

  it('fails for good when the receiver refuses the webhook, and retryably when it is unavailable', async () => {
    const { deliverApprovalNotification } = activities();
    const view = freshView();

    receiver.answer = (res) => res.writeHead(503).end();
    const unavailable = await failureOf(
      runActivity(new MockActivityEnvironment(), deliverApprovalNotification, { view, intent: webhook(), round: 0 }),
    );
    expect(unavailable).toMatchObject({ type: 'DeliveryUnavailable', nonRetryable: false });

    receiver.answer = (res) => res.writeHead(400).end();
    const refused = await failureOf(
      runActivity(new MockActivityEnvironment(), deliverApprovalNotification, { view, intent: webhook(), round: 0 }),
    );
    expect(refused).toMatchObject({ type: 'DeliveryRejected', nonRetryable: true });
    expect(await rowsOf('SELECT channel, status FROM notify.deliveries WHERE tenant_id = $1', view)).toEqual([
      { channel: 'webhook', status: 'failed' },
    ]);
    expect(received).toHaveLength(2);
  });
});

describe('resumeTaskRunner', () => {
  const resume = (view: ApprovalView) => ({
    view,
    callback: { url: `${receiver.url}/resume`, token: RESUME_TOKEN },
    decision: 'approve' as const,
    decidedBy: 'alice',
    decidedAt: '2025-01-01T01:00:00.000Z',
  });

  it('calls the resume callback with the decision and the token, keyed by approval and decision', async () => {
    const view = freshView();
    expect(await runActivity(new MockActivityEnvironment(), activities().resumeTaskRunner, resume(view))).toEqual({
      status: 'resumed',
      httpStatus: 202,
    });
    expect(received).toHaveLength(1);
    expect(received[0]?.headers.authorization).toBe(`Bearer ${RESUME_TOKEN}`);
    expect(received[0]?.headers['idempotency-key']).toBe(`pack-approval/${view.tenantId}/run-1/appr-1/resume/approve`);
    expect(JSON.parse(received[0]?.body ?? '')).toMatchObject({
      runId: 'run-1',
      approvalId: 'appr-1',
      decision: 'approve',
    });
  });

  it('fails for good when the Task Runner refuses, and retryably when it is unavailable', async () => {
    const { resumeTaskRunner } = activities();
    const view = freshView();

    receiver.answer = (res) => res.writeHead(409).end();
    expect(await failureOf(runActivity(new MockActivityEnvironment(), resumeTaskRunner, resume(view)))).toMatchObject({
      type: 'ResumeRejected',
      nonRetryable: true,
    });
    receiver.answer = (res) => res.writeHead(503).end();
    expect(await failureOf(runActivity(new MockActivityEnvironment(), resumeTaskRunner, resume(view)))).toMatchObject({
      type: 'DeliveryUnavailable',
      nonRetryable: false,
    });
  });
});
