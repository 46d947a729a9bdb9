/**
 * Pack approvals end to end inside the API process: signed ingestion → workflow → mail over real SMTP → ack →
 * Task Runner resume callback, against real Temporal, workers and Postgres.
 */
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignedWebhookSender } from '../../activities/pack-approval/channels.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import { upsertRule } from '../../db/queries/notify-config.js';
import { getApprovalView, listDeliveries, listTransitions } from '../../db/queries/pack-approvals.js';
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { sampleEvent, signedHeaders, startSmtp, testPackApprovalDeps } from '../support/pack-approvals.js';

const secrets = { eventSecrets: [generateWebhookSecret(), generateWebhookSecret()], linkSecret: generateSecret() };
/** What outbound approval webhooks are signed with. */
const webhookSecret = generateWebhookSecret();
let h: ApiHarness;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let runner: Awaited<ReturnType<typeof startReceiver>>;
let writer: string;
let approver: string;

beforeAll(async () => {
  [smtp, runner] = await Promise.all([startSmtp(), startReceiver(() => 200)]);
  h = await startApiHarness({
    packApprovals: {
      ...testPackApprovalDeps({ smtpUrl: smtp.url, linkSecret: secrets.linkSecret }),
      webhook: createSignedWebhookSender({ signingSecret: webhookSecret, logger: createLogger({ level: 'silent' }) }),
    },
    packApprovalSecrets: secrets,
    env: { PACK_EVENTS_RATE_LIMIT_PER_MINUTE: '1000' },
  });
  writer = await h.signer.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite], subject: 'task-runner' });
  approver = await h.signer.token({ tenant: 'acme', scopes: [Scope.PacksApprove, 'deploy:prod'], subject: 'alice' });
});
afterAll(async () => {
  await h?.close();
  await smtp?.close();
  await runner?.close();
});

function post(
  event: unknown,
  options: { token?: string; secret?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const body = options.body ?? JSON.stringify(event);
  return h.app.inject({
    method: 'POST',
    url: '/notifications/pack-approvals',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${options.token ?? writer}`,
      ...signedHeaders(options.secret ?? secrets.eventSecrets[0]!, options.body ?? body),
      ...options.headers,
    },
    payload: body,
  });
}

const withRunner = (overrides: Partial<PackApprovalEvent> = {}) =>
  sampleEvent({ resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' }, ...overrides });

describe('POST /notifications/pack-approvals', () => {
  it('accepts a signed event (202), persists the request, mails approvers, and answers a repeat with 200 duplicate', async () => {
    const event = withRunner();
    const res = await post(event);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({
      status: 'accepted',
      eventId: event.eventId,
      workflowId: `pack-approval/acme/${event.runId}/deploy-prod`,
    });
    const again = await post(event); // a retry is signed anew (new webhook-id)
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ status: 'duplicate' });

    const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes(event.runId)));
    expect(mail.to).toEqual(['approvers@acme.test']);
    expect(mail.raw).toContain(event.planHash);
    expect(mail.raw).not.toContain('tr-resume-secret-0123456789');
    expect(mail.raw.replace(/=\r?\n/g, '')).toMatch(/approvals\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);

    const view = await eventually(() => getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod'));
    expect(view).toMatchObject({ state: 'pending', planHash: event.planHash, requiredGrants: ['deploy:prod'] });
    expect(JSON.stringify(view)).not.toContain('tr-resume-secret');
    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'pack.' });
    expect(
      audit.some((a) => a.eventType === 'pack.approval.requested' && a.correlationId === event.correlationId),
    ).toBe(true);
    await eventually(async () =>
      (await listDeliveries(h.db.pool, 'acme', event.runId, 'deploy-prod')).length === 1 ? true : undefined,
    );
  });

  it('accepts any of the rotation secrets and refuses bad signatures with 401', async () => {
    expect((await post(withRunner(), { secret: secrets.eventSecrets[1] })).statusCode).toBe(202);
    expect((await post(withRunner(), { secret: generateWebhookSecret() })).statusCode).toBe(401);
    const stale = JSON.stringify(withRunner());
    expect(
      (
        await post(undefined, {
          body: stale,
          headers: signedHeaders(secrets.eventSecrets[0]!, stale, { at: new Date(Date.now() - 10 * 60_000) }),
        })
      ).statusCode,
    ).toBe(401);
    const replayed = JSON.stringify(withRunner());
    const headers = signedHeaders(secrets.eventSecrets[0]!, replayed);
    expect((await post(undefined, { body: replayed, headers })).statusCode).toBe(202);
    const replay = await post(undefined, { body: replayed, headers });
    expect(replay.statusCode).toBe(401);
    expect(replay.json<{ message: string }>().message).toMatch(/replay/);
    const original = JSON.stringify(withRunner());
    const tampered = original.replace('"deploy:prod"', '"deploy:dev"');
    expect(
      (await post(undefined, { body: tampered, headers: signedHeaders(secrets.eventSecrets[0]!, original) }))
        .statusCode,
    ).toBe(401);
    const unsigned = await h.app.inject({
      method: 'POST',
      url: '/notifications/pack-approvals',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}` },
      payload: original,
    });
    expect(unsigned.statusCode).toBe(401);
  });

  it('answers 400 with field errors, 401 without a token, 403 for a wrong scope or tenant', async () => {
    const bad = await post({ ...withRunner(), planHash: 'x', requestedAt: 'yesterday', extra: true });
    expect(bad.statusCode).toBe(400);
    const paths = bad.json<{ error: string; errors: { path: string }[] }>().errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['body.planHash', 'body.requestedAt', 'body.extra']));
    expect(bad.json()).toMatchObject({ error: 'ValidationFailed' });
    expect((await post(withRunner(), { token: 'not-a-token' })).statusCode).toBe(401);
    const reader = await h.signer.token({ tenant: 'acme', scopes: [Scope.PolicySimulate] });
    expect((await post(withRunner(), { token: reader })).statusCode).toBe(403);
    expect((await post(withRunner({ tenantId: 'globex' }))).statusCode).toBe(403);
  });
});

describe('POST /notifications/pack-approvals/{runId}/{approvalId}/ack', () => {
  it('approves once, repeats the original answer, refuses a different decision, and resumes the Task Runner', async () => {
    const event = withRunner();
    expect((await post(event)).statusCode).toBe(202);
    await eventually(() => getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod'));
    const url = `/notifications/pack-approvals/${event.runId}/deploy-prod/ack`;
    const ack = (decision: string, token = approver) =>
      h.app.inject({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${token}` },
        payload: { decision, comment: 'ship it' },
      });

    const read = (token: string) =>
      h.app.inject({
        method: 'GET',
        url: `/notifications/pack-approvals/${event.runId}/deploy-prod`,
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await read(approver)).statusCode).toBe(200);
    const noGrant = await h.signer.token({ tenant: 'acme', scopes: [Scope.PacksApprove] });
    expect((await ack('approve', noGrant)).statusCode).toBe(403);
    const otherTenant = await h.signer.token({ tenant: 'globex', scopes: [Scope.PacksApprove, 'deploy:prod'] });
    expect((await ack('approve', otherTenant)).statusCode).toBe(404);
    expect((await read(otherTenant)).statusCode).toBe(404);

    const first = await ack('approve');
    expect(first.statusCode).toBe(200);
    const body = first.json<{
      decision: string;
      decidedBy: string;
      decidedAt: string;
      resumeStatus: string;
      resumeToken: string;
    }>();
    expect(body).toMatchObject({ decision: 'approve', decidedBy: 'alice', resumeStatus: 'pending' });
    expect(body.resumeToken).not.toContain('tr-resume-secret');
    const repeat = await ack('approve');
    expect(repeat.statusCode).toBe(200);
    expect(repeat.json<{ decidedAt: string }>().decidedAt).toBe(body.decidedAt);
    expect((await ack('reject')).statusCode).toBe(409);

    const callback = await eventually(() => runner.received.find((r) => r.body.includes(event.runId)));
    expect(callback.headers.authorization).toBe('Bearer tr-resume-secret-0123456789');
    expect(callback.headers['idempotency-key']).toBe(`pack-approval/acme/${event.runId}/deploy-prod/resume/approve`);
    expect(JSON.parse(callback.body)).toMatchObject({
      runId: event.runId,
      approvalId: 'deploy-prod',
      decision: 'approve',
      decidedBy: 'alice',
    });
    const final = await eventually(async () => {
      const v = await getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod');
      return v?.resume.status === 'resumed' ? v : undefined;
    });
    expect(final.state).toBe('approved');
    expect((await listTransitions(h.db.pool, 'acme', event.runId, 'deploy-prod')).map((t) => t.to_state)).toEqual([
      'pending',
      'approved',
    ]);
    // The same decision after the workflow finished still answers the original result.
    const afterFinish = await ack('approve');
    expect(afterFinish.statusCode).toBe(200);
    expect(afterFinish.json<{ decidedAt: string }>().decidedAt).toBe(body.decidedAt);
  });

  it('accepts the signed link from the mail instead of a bearer token', async () => {
    const event = withRunner();
    expect((await post(event)).statusCode).toBe(202);
    const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes(event.runId)));
    const token = /approvals\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_=-]+)/.exec(
      mail.raw.replace(/=\r?\n/g, ''),
    )![1]!;
    const res = await h.app.inject({
      method: 'POST',
      url: `/notifications/pack-approvals/${event.runId}/deploy-prod/ack`,
      payload: { decision: 'reject', token },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ decision: 'reject', decidedBy: 'approvers@acme.test' });
    const stored = await eventually(async () => {
      const read = await h.app.inject({
        method: 'GET',
        url: `/notifications/pack-approvals/${event.runId}/deploy-prod`,
        headers: { authorization: `Bearer ${approver}` },
      });
      expect(read.statusCode).toBe(200);
      const view = read.json<{ state: string; decision?: { decision: string; decidedBy: string } }>();
      return view.state === 'rejected' ? view : undefined;
    });
    expect(stored.decision).toMatchObject({ decision: 'reject', decidedBy: 'approvers@acme.test' });
    expect((await listTransitions(h.db.pool, 'acme', event.runId, 'deploy-prod')).map((t) => t.to_state)).toEqual([
      'pending',
      'rejected',
    ]);
    const wrong = await h.app.inject({
      method: 'POST',
      url: `/notifications/pack-approvals/${event.runId}/other-approval/ack`,
      payload: { decision: 'reject', token },
    });
    expect(wrong.statusCode).toBe(403);
  });

  it('answers 404 for an unknown approval', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/notifications/pack-approvals/run-unknown/deploy-prod/ack',
      headers: { authorization: `Bearer ${approver}` },
      payload: { decision: 'approve' },
    });
    expect(res.statusCode).toBe(404);
  });
});

describe('routing rules', () => {
  it('routes by a CEL rule to a signed webhook and an email recipient, rendering the tenant’s locale', async () => {
    const hooks = await startReceiver(() => 204);
    try {
      await upsertRule(
        h.db.pool,
        {
          ruleId: 'prod-deploys',
          tenantId: 'hooks',
          name: 'Production deploys',
          predicate: 'event.kind == "pack.approval" && "deploy:prod" in event.requiredGrants',
          channels: [
            { channel: 'webhook', recipients: [`${hooks.url}/approvals`] },
            { channel: 'email', recipients: ['release-managers@hooks.test'] },
          ],
          enabled: true,
          priority: 10,
        },
        'test',
      );
      const token = await h.signer.token({ tenant: 'hooks', scopes: [Scope.NotifierEventsWrite] });
      const event = withRunner({ tenantId: 'hooks', locale: 'de-DE' });
      expect((await post(event, { token })).statusCode).toBe(202);
      const delivery = await eventually(() => hooks.received.find((r) => r.body.includes(event.runId)));
      expect(delivery.headers['x-stellaops-tenant']).toBe('hooks');
      expect(delivery.headers['idempotency-key']).toContain(event.runId);
      // Signed as Standard Webhooks over the exact body, the signature id being the idempotency key.
      const signature = {
        'webhook-id': String(delivery.headers['webhook-id']),
        'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
        'webhook-signature': String(delivery.headers['webhook-signature']),
      };
      expect(signature['webhook-id']).toBe(delivery.headers['idempotency-key']);
      expect(signature['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Math.abs(Number(signature['webhook-timestamp']) - delivery.receivedAt / 1000)).toBeLessThan(60);
      expect(new Webhook(webhookSecret).verify(delivery.body, signature)).toMatchObject({ runId: event.runId });
      expect(() => new Webhook(generateWebhookSecret()).verify(delivery.body, signature)).toThrow(/signature/);
      expect(() => new Webhook(webhookSecret).verify(`${delivery.body} `, signature)).toThrow(/signature/);
      expect(delivery.body).not.toContain('tr-resume-secret');
      const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes(event.runId)));
      expect(mail.to).toEqual(['release-managers@hooks.test']);
      const deliveries = await eventually(async () => {
        const rows = await listDeliveries(h.db.pool, 'hooks', event.runId, 'deploy-prod');
        return rows.length === 2 && rows.every((r) => r.status === 'sent') ? rows : undefined;
      });
      expect(deliveries.map((d) => d.locale)).toEqual(['de-DE', 'de-DE']);
    } finally {
      await hooks.close();
    }
  });
});

describe('pack approval metrics', () => {
  const scrape = async () => {
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    const value = (pattern: RegExp) => Number(pattern.exec(res.body)?.[1] ?? Number.NaN);
    return {
      outstanding: value(/^stellaops_pack_approvals_outstanding (\d+)$/m),
      emailsSent: value(/^stellaops_pack_approval_notifications\{channel="email",status="sent"\} (\d+)$/m),
      acks: value(/^stellaops_pack_approval_ack_latency_seconds_count (\d+)$/m),
    };
  };

  it('exposes outstanding approvals, notifications by channel and status, and ack latency', async () => {
    const event = withRunner();
    expect((await post(event)).statusCode).toBe(202);
    await eventually(async () => {
      const rows = await listDeliveries(h.db.pool, 'acme', event.runId, 'deploy-prod');
      return rows.some((r) => r.channel === 'email' && r.status === 'sent') ? true : undefined;
    });
    await eventually(() => getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod'));
    const pending = await scrape();
    expect(Number.isInteger(pending.acks)).toBe(true);
    // This test's approval is pending and its mail was sent.
    expect(pending.outstanding).toBeGreaterThanOrEqual(1);
    expect(pending.emailsSent).toBeGreaterThanOrEqual(1);

    const ack = () =>
      h.app.inject({
        method: 'POST',
        url: `/notifications/pack-approvals/${event.runId}/deploy-prod/ack`,
        headers: { authorization: `Bearer ${approver}` },
        payload: { decision: 'approve' },
      });
    expect((await ack()).statusCode).toBe(200);
    expect((await scrape()).acks).toBe(pending.acks + 1);
    // A repeat answers the recorded decision and is not measured again.
    expect((await ack()).statusCode).toBe(200);
    expect((await scrape()).acks).toBe(pending.acks + 1);
  });
});
