/**
 * An approver in a real browser: the API listens on loopback, a signed event produces a mail over real SMTP, and
 * Debian Chromium (driven by playwright-core) opens the mailed link, types a comment and clicks "Approve". The
 * page has no script and a strict CSP, so this also proves the plain form works under that policy. Chromium is
 * required: without it the test fails (CI installs the `chromium` package).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { Scope } from '../../core/scopes.js';
import { getApprovalView } from '../../db/queries/pack-approvals.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { postSignedEvent, sampleEvent, startSmtp, testPackApprovalDeps } from '../support/pack-approvals.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
let h: ApiHarness;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let runner: Awaited<ReturnType<typeof startReceiver>>;
let browser: Browser | undefined;
let baseUrl: string;

beforeAll(async () => {
  [smtp, runner] = await Promise.all([startSmtp(), startReceiver(() => 200)]);
  h = await startApiHarness({
    packApprovals: testPackApprovalDeps({ smtpUrl: smtp.url, linkSecret: secrets.linkSecret }),
    packApprovalSecrets: secrets,
  });
  baseUrl = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
  await smtp?.close();
  await runner?.close();
});

describe('approval page in Chromium', () => {
  it('opens the mailed link, approves with a comment, and the Task Runner is resumed', async () => {
    // Fails (never skips) without Chromium.
    expect(
      existsSync(CHROMIUM),
      `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    ).toBe(true);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const event = sampleEvent({
      resumeCallback: { url: `${runner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const writer = await h.signer.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite] });
    const posted = await postSignedEvent(baseUrl, event, { token: writer, secret: secrets.eventSecrets[0]! });
    expect(posted.status).toBe(202);

    const mail = await eventually(() => smtp.mails.find((m) => m.raw.includes(event.runId)));
    const mailed = /https?:\/\/[^\s"'<>]+\/approvals\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(
      mail.raw.replace(/=\r?\n/g, ''),
    )?.[0];
    expect(mailed, 'approval link in the mail').toBeDefined();
    // The mail points at the configured public base URL; the browser goes to where this API listens.
    const link = new URL(new URL(mailed!).pathname, baseUrl).toString();
    await eventually(() => getApprovalView(h.db.pool, 'acme', event.runId, event.approvalId));

    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    try {
      const response = await page.goto(link);
      expect(response?.status()).toBe(200);
      const text = await page.locator('main').innerText();
      expect(text).toContain(`Approval ${event.approvalId}`);
      expect(text).toContain(event.runId);
      expect(text).toContain(event.planHash);
      expect(text).toContain('deploy:prod');
      expect(text).toContain('payments-api');
      expect(text).toContain('pending');

      await page.getByLabel('Comment (optional)').fill('Looks good — ship it');
      const [result] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === link),
        page.getByRole('button', { name: 'Approve' }).click(),
      ]);
      expect(result.status()).toBe(200);
      await page.waitForLoadState();
      expect(await page.title()).toContain('Approved');
      const outcome = await page.locator('main').innerText();
      expect(outcome).toMatch(/was approved/);
      expect(outcome).toContain('approvers@acme.test');
      expect(outcome).toContain('Looks good — ship it');
      expect(problems, 'console errors (CSP violations)').toEqual([]);
    } finally {
      await context.close();
    }

    // Generous waits: on two cores the suite's process drills may run beside this test and slow its worker down.
    const callback = await eventually(() => runner.received.find((r) => r.body.includes(event.runId)), 60_000);
    expect(callback.headers.authorization).toBe('Bearer tr-resume-secret-0123456789');
    expect(JSON.parse(callback.body)).toMatchObject({
      runId: event.runId,
      approvalId: 'deploy-prod',
      decision: 'approve',
      decidedBy: 'approvers@acme.test',
    });
    const view = await eventually(async () => {
      const v = await getApprovalView(h.db.pool, 'acme', event.runId, 'deploy-prod');
      return v?.resume.status === 'resumed' ? v : undefined;
    }, 60_000);
    expect(view.state).toBe('approved');
    expect(view.decision).toMatchObject({ comment: 'Looks good — ship it' });
  });
});
