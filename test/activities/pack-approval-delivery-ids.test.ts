/**
 * Delivery identities of pack-approval notifications: a webhook recipient's URL secret (a query-string token) never
 * reaches the idempotency key, the `notify.deliveries` rows, the `webhook-id` / `Idempotency-Key` headers or the
 * email Message-ID; the same (approval, round, reason, channel, recipient) still maps to one key.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignedWebhookSender, messageIdFor } from '../../activities/pack-approval/channels.js';
import { createPackApprovalActivities } from '../../activities/pack-approval/index.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { upsertRule } from '../../db/queries/notify-config.js';
import type { ApprovalView, NotificationIntent } from '../../workflows/pack-approval/definitions.js';
import { initialView } from '../../workflows/pack-approval/state.js';
import { packApprovalEvent } from '../support/fixtures.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { startSmtp, testPackApprovalDeps } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { runActivity } from '../support/temporal.js';

const SECRET = 's3cr3t';
const LINK_SECRET = generateSecret();

let db: TestDatabase;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
const receiver = useHttpReceiver((res) => res.writeHead(202).end());

beforeAll(async () => {
  [db, smtp] = await Promise.all([createTestDatabase(), startSmtp()]);
});
afterAll(async () => {
  await smtp?.close();
  await db?.drop();
});

function activities() {
  return createPackApprovalActivities({
    ...testPackApprovalDeps({ smtpUrl: smtp.url, linkSecret: LINK_SECRET }),
    webhook: createSignedWebhookSender({ signingSecret: generateWebhookSecret(), logger: memoryLogger().logger }),
    pool: db.pool,
    logger: memoryLogger().logger,
  });
}

/** A fresh approval of its own tenant, so the rows of one test are its own. */
function freshView(): ApprovalView {
  return initialView(packApprovalEvent({ tenantId: `tenant-${randomUUID().slice(0, 8)}` }), 3600);
}

const hookUrl = () => `${receiver.url}/hook?token=${SECRET}`;
const webhook = (recipient = hookUrl()): NotificationIntent => ({
  channel: 'webhook',
  recipient,
  templateId: 'pack-approval.requested',
  locale: 'en-US',
  reason: 'requested',
});

/** Every `notify.deliveries` row of the view's tenant, as text. */
async function deliveryRows(view: ApprovalView): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query<Record<string, unknown>>(
    'SELECT idempotency_key, channel, recipient, status, detail FROM notify.deliveries WHERE tenant_id = $1 ORDER BY id',
    [view.tenantId],
  );
  return rows;
}

describe('webhook delivery identities', () => {
  it('keeps the URL token out of the planned and sent rows, the webhook-id and the Idempotency-Key', async () => {
    const view = freshView();
    await upsertRule(
      db.pool,
      {
        ruleId: 'hook',
        tenantId: view.tenantId,
        name: 'every approval to the hook',
        predicate: 'true',
        channels: [{ channel: 'webhook', recipients: [hookUrl()] }],
        enabled: true,
        priority: 10,
      },
      'admin',
    );
    const { planApprovalNotifications, deliverApprovalNotification } = activities();
    const [intent] = await runActivity(new MockActivityEnvironment(), planApprovalNotifications, {
      view,
      reason: 'requested',
      round: 0,
    });
    expect(intent?.recipient).toBe(hookUrl());
    const planned = await deliveryRows(view);

    expect(
      await runActivity(new MockActivityEnvironment(), deliverApprovalNotification, {
        view,
        intent: intent!,
        round: 0,
      }),
    ).toEqual({ status: 'sent' });

    // The receiver got the token in its URL, as configured: it is the one party that may see it.
    expect(receiver.received).toHaveLength(1);
    const request = receiver.received[0]!;
    expect(request.url).toBe(`/hook?token=${SECRET}`);
    const webhookId = String(request.headers['webhook-id']);
    expect(webhookId).toContain(view.runId);
    expect(webhookId).not.toContain(SECRET);
    expect(webhookId).not.toContain('/hook');
    expect(request.headers['idempotency-key']).toBe(webhookId);

    const rows = await deliveryRows(view);
    expect(planned).toEqual([{ ...rows[0], status: 'queued' }]);
    expect(rows).toEqual([
      { idempotency_key: webhookId, channel: 'webhook', recipient: receiver.url, status: 'sent', detail: null },
    ]);
    expect(JSON.stringify([planned, rows])).not.toContain(SECRET);

    // The approval link in the payload names the webhook by origin and id: its claims are readable by any holder,
    // and its recipient becomes `decidedBy` when someone decides through it.
    const link = String((JSON.parse(request.body) as { approvalLink: string }).approvalLink);
    // (The fixture's approval expired long ago, so the link is read, not verified.)
    const claims = decodeJwt(link.slice(link.lastIndexOf('/') + 1));
    expect(claims.recipient).toMatch(new RegExp(`^webhook ${receiver.url.replace(/[.]/g, '\\.')} #[0-9a-f]{12}$`));
    expect(Buffer.from(link.split('.')[1] ?? '', 'base64url').toString()).not.toContain(SECRET);
  });

  it('maps the same approval, round, reason, channel and recipient to one key, and any difference to another', async () => {
    const view = freshView();
    const { deliverApprovalNotification } = activities();
    const deliver = (intent: NotificationIntent, round = 0) =>
      runActivity(new MockActivityEnvironment(), deliverApprovalNotification, { view, intent, round });

    expect(await deliver(webhook())).toEqual({ status: 'sent' });
    expect(await deliver(webhook())).toEqual({ status: 'already-sent' });
    // Another token is another recipient, though the URLs differ only in their secret part.
    expect(await deliver(webhook(`${receiver.url}/hook?token=other`))).toEqual({ status: 'sent' });
    expect(await deliver(webhook(), 1)).toEqual({ status: 'sent' });
    expect(await deliver({ ...webhook(), reason: 'reminder' })).toEqual({ status: 'sent' });

    const ids = receiver.received.map((r) => String(r.headers['webhook-id']));
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    const rows = await deliveryRows(view);
    expect(rows.map((r) => r.idempotency_key)).toEqual(ids);
    expect(JSON.stringify(rows)).not.toContain('token=');
  });

  it('records a failed delivery without the token, in its row or its detail', async () => {
    const view = freshView();
    receiver.answer = (res) => res.writeHead(400).end();
    await expect(
      runActivity(new MockActivityEnvironment(), activities().deliverApprovalNotification, {
        view,
        intent: webhook(),
        round: 0,
      }),
    ).rejects.toMatchObject({ type: 'DeliveryRejected' });
    const rows = await deliveryRows(view);
    expect(rows).toMatchObject([{ channel: 'webhook', recipient: receiver.url, status: 'failed' }]);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
  });
});

describe('email delivery identities', () => {
  it('derives the Message-ID from the key, which names the recipient by id only', async () => {
    const view = freshView();
    const intent: NotificationIntent = { ...webhook(), channel: 'email', recipient: 'approvers@acme.test' };
    expect(
      await runActivity(new MockActivityEnvironment(), activities().deliverApprovalNotification, {
        view,
        intent,
        round: 0,
      }),
    ).toEqual({ status: 'sent' });
    const [row] = await deliveryRows(view);
    expect(row).toMatchObject({ channel: 'email', recipient: 'approvers@acme.test', status: 'sent' });
    const key = String(row!.idempotency_key);
    expect(key).toContain(view.runId);
    expect(key).not.toContain('approvers@acme.test');
    const mail = smtp.mails.find((m) => m.raw.includes(view.runId));
    const head = (mail?.raw.split(/\r?\n\r?\n/)[0] ?? '').replace(/\r?\n[ \t]+/g, ' ');
    expect(head).toMatch(new RegExp(`^Message-ID: ${messageIdFor(key)}$`, 'im'));
    expect(head).toMatch(new RegExp(`^X-StellaOps-Idempotency-Key: ${key}$`, 'im'));
  });
});
