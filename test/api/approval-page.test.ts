/**
 * The approval page behind mailed links, on the real stack: signed event → workflow → mail over real SMTP → the
 * link's page (HTML, escaped, security headers) → the form's decision through the workflow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { signApprovalLink, signResumeToken, type ApprovalLinkClaims } from '../../notify/approval-links.js';
import { Scope } from '../../core/scopes.js';
import { getApprovalView } from '../../db/queries/pack-approvals.js';
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { sampleEvent, signedHeaders, startSmtp, testPackApprovalDeps } from '../support/pack-approvals.js';

const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
let h: ApiHarness;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let runner: Awaited<ReturnType<typeof startReceiver>>;
let writer: string;

beforeAll(async () => {
  [smtp, runner] = await Promise.all([startSmtp(), startReceiver(() => 200)]);
  h = await startApiHarness({
    packApprovals: testPackApprovalDeps({ smtpUrl: smtp.url, linkSecret: secrets.linkSecret }),
    packApprovalSecrets: secrets,
  });
  writer = await h.signer.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite], subject: 'task-runner' });
});
afterAll(async () => {
  await h?.close();
  await smtp?.close();
  await runner?.close();
});

/** Posts a signed event and answers the link token from the mail it produces. */
async function requestApproval(event: PackApprovalEvent): Promise<string> {
  const body = JSON.stringify(event);
  const res = await h.app.inject({
    method: 'POST',
    url: '/notifications/pack-approvals',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${writer}`,
      ...signedHeaders(secrets.eventSecrets[0]!, body),
    },
    payload: body,
  });
  expect(res.statusCode).toBe(202);
  const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes(event.runId)));
  const token = /approvals\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(
    mail.raw.replace(/=\r?\n/g, ''),
  )?.[1];
  expect(token).toBeDefined();
  await eventually(() => getApprovalView(h.db.pool, 'acme', event.runId, event.approvalId));
  return token!;
}

const page = (token: string) => h.app.inject({ method: 'GET', url: `/approvals/${token}` });
const submit = (token: string, form: Record<string, string>) =>
  h.app.inject({
    method: 'POST',
    url: `/approvals/${token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
  });

function expectSecurityHeaders(res: Awaited<ReturnType<typeof page>>) {
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['content-security-policy']).toContain("default-src 'none'");
  expect(res.headers['content-security-policy']).toContain("form-action 'self'");
}

describe('GET /approvals/{token}', () => {
  it('shows the plan metadata, escaped, with both buttons and strict security headers', async () => {
    const event = sampleEvent({
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
      message: {
        templateId: 'pack-approval.requested',
        parameters: { pack: '<script>alert("x")</script>', version: '4.2.1', environment: 'production' },
      },
      policyGate: { gateId: 'gate-cve', parameters: { maxSeverity: 'high & <critical>' }, messages: ['CVE "x" ok'] },
    });
    const token = await requestApproval(event);
    const res = await page(token);
    expect(res.statusCode).toBe(200);
    expectSecurityHeaders(res);
    expect(res.body).toMatch(/^<!doctype html>\s*<html lang="en">/);
    for (const text of [
      'acme',
      event.runId,
      'deploy-prod',
      event.planHash,
      'deploy:prod',
      'build',
      'sign',
      'release-bot',
      'pending',
      'gate-cve',
      'high &amp; &lt;critical&gt;',
      'CVE &quot;x&quot; ok',
      'approvers@acme.test',
    ]) {
      expect(res.body, text).toContain(text);
    }
    expect(res.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(res.body).not.toContain('<script');
    expect(res.body).not.toContain('tr-resume-secret');
    expect(res.body).toMatch(/<form method="post" action="\.\/[^"]+">/);
    expect(res.body).toContain('<textarea id="comment" name="comment"');
    expect(res.body).toContain('<button type="submit" name="decision" value="approve">Approve</button>');
    expect(res.body).toContain('<button type="submit" name="decision" value="reject">Reject</button>');
  });

  it('answers an invalid or tampered link with a 401 page', async () => {
    for (const url of ['/approvals/not-a-token', '/approvals/a.b.c', '/approvals/x/y']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
      expectSecurityHeaders(res);
      expect(res.body).toContain('Link invalid or expired');
    }
    const posted = await submit('not-a-token', { decision: 'approve' });
    expect(posted.statusCode).toBe(401);
    expect(posted.body).toContain('<!doctype html>');
  });

  it('answers 401 to well-formed tokens for a real approval that are not a valid link, and records nothing', async () => {
    const event = sampleEvent({
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const mailed = await requestApproval(event);
    const claims: ApprovalLinkClaims = {
      tenantId: 'acme',
      runId: event.runId,
      approvalId: event.approvalId,
      recipient: 'approvers@acme.test',
      grants: ['deploy:prod'],
    };
    const inAnHour = new Date(Date.now() + 3_600_000);
    // A resume token carries the same claims and more; it is still not a link.
    const resumeClaims = { ...claims, decision: 'approve', decidedBy: 'approvers@acme.test' };
    const forged = {
      'signed with another secret': await signApprovalLink(generateSecret(), claims, inAnHour),
      expired: await signApprovalLink(secrets.linkSecret, claims, new Date(Date.now() - 60_000)),
      'a resume token': await signResumeToken(secrets.linkSecret, resumeClaims),
    };
    // The control: the same claims, signed as a link with the right secret, open the page.
    const control = await signApprovalLink(secrets.linkSecret, claims, inAnHour);
    expect((await page(control)).statusCode).toBe(200);
    expect((await page(mailed)).statusCode).toBe(200);

    for (const [label, token] of Object.entries(forged)) {
      const shown = await page(token);
      expect(shown.statusCode, label).toBe(401);
      expectSecurityHeaders(shown);
      expect(shown.body, label).toContain('Link invalid or expired');
      expect(shown.body, label).not.toContain(event.planHash);
      const decided = await submit(token, { decision: 'approve' });
      expect(decided.statusCode, label).toBe(401);
      expect(decided.body, label).toContain('Link invalid or expired');
    }
    const view = await getApprovalView(h.db.pool, 'acme', event.runId, event.approvalId);
    expect(view?.state).toBe('pending');
    expect(view?.decision ?? null).toBeNull();
  });
});

describe('POST /approvals/{token}', () => {
  it('approves from the form, refuses a different decision with 409, and then shows the decision without a form', async () => {
    const event = sampleEvent({
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const token = await requestApproval(event);

    const invalid = await submit(token, { decision: 'maybe' });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(invalid.body).toContain('Choose Approve or Reject.');
    expect(invalid.body).toContain('value="approve">Approve</button>');

    const approved = await submit(token, { comment: 'Ship it <now>', decision: 'approve' });
    expect(approved.statusCode).toBe(200);
    expectSecurityHeaders(approved);
    expect(approved.body).toContain('Approved');
    expect(approved.body).toContain('approvers@acme.test');
    expect(approved.body).toContain('Ship it &lt;now&gt;');

    const view = await eventually(async () => {
      const v = await getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod');
      return v?.state === 'approved' ? v : undefined;
    });
    expect(view.decision).toMatchObject({
      decision: 'approve',
      decidedBy: 'approvers@acme.test',
      comment: 'Ship it <now>',
    });
    const callback = await eventually(() => runner.received.find((r) => r.body.includes(event.runId)));
    expect(callback.method).toBe('POST');
    expect(callback.url).toBe('/resume');
    expect(callback.headers.authorization).toBe('Bearer tr-resume-secret-0123456789');
    expect(callback.headers['idempotency-key']).toBe(`pack-approval/acme/${event.runId}/deploy-prod/resume/approve`);
    expect(callback.headers['x-stellaops-tenant']).toBe('acme');
    expect(callback.headers['x-correlation-id']).toBe(event.correlationId);
    expect(JSON.parse(callback.body)).toEqual({
      runId: event.runId,
      approvalId: 'deploy-prod',
      decision: 'approve',
      decidedBy: 'approvers@acme.test',
      decidedAt: view.decision!.decidedAt,
      comment: 'Ship it <now>',
    });

    const repeat = await submit(token, { decision: 'approve' });
    expect(repeat.statusCode).toBe(200);
    expect(repeat.body).toContain(view.decision!.decidedAt);

    const rejected = await submit(token, { decision: 'reject' });
    expect(rejected.statusCode).toBe(409);
    expectSecurityHeaders(rejected);
    expect(rejected.body).toContain('Already decided');

    const after = await page(token);
    expect(after.statusCode).toBe(200);
    expect(after.body).toContain('<span class="state">approved</span>');
    expect(after.body).toContain('<strong>Approved</strong>');
    expect(after.body).toContain('Ship it &lt;now&gt;');
    expect(after.body).not.toContain('<form');
    expect(after.body).not.toContain('name="decision"');
  });
});

describe('approval page metrics', () => {
  const ackCount = async () => {
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    const match = /^stellaops_pack_approval_ack_latency_seconds_count (\d+)$/m.exec(res.body);
    expect(match, 'ack latency histogram exposed').not.toBeNull();
    return Number(match![1]);
  };

  it('observes a decision taken on the page in the ack-latency histogram, once', async () => {
    const token = await requestApproval(sampleEvent());
    const before = await ackCount();
    expect((await submit(token, { decision: 'reject' })).statusCode).toBe(200);
    expect(await ackCount()).toBe(before + 1);
    // A repeat answers the recorded decision without measuring it again.
    expect((await submit(token, { decision: 'reject' })).statusCode).toBe(200);
    expect(await ackCount()).toBe(before + 1);
  });
});
