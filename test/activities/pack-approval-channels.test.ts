import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, createSignedWebhookSender, messageIdFor } from '../../activities/pack-approval/channels.js';
import { DeliveryError } from '../../activities/shared/http.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { rejectionOf } from '../support/assertions.js';
import { memoryLogger } from '../support/logger.js';
import { freePort } from '../support/ports.js';
import { startSmtp } from '../support/pack-approvals.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** The DeliveryError a promise rejects with. */
const deliveryError = (promise: Promise<unknown>) => rejectionOf(promise, DeliveryError);

/** Unfolds the header section of a raw message into `name (lowercase) → value`. */
function headersOf(raw: string): Map<string, string> {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? '';
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

const FROM = 'StellaOps <noreply@stellaops.test>';
const MESSAGE = {
  to: 'approver@example.test',
  subject: 'Approval required: run r-42',
  text: 'Run r-42 waits for your approval.',
  html: '<p>Run <b>r-42</b> waits for your approval.</p>',
  idempotencyKey: 'pack-approval/t1/r-42/a-1/requested/approver@example.test',
  headers: { 'X-StellaOps-Tenant': 't1' },
};

describe('email over SMTP', () => {
  it('delivers the message with a deterministic Message-ID and the idempotency header', async () => {
    const smtp = await startSmtp();
    try {
      const { logger } = memoryLogger();
      const sender = createEmailSender({ smtpUrl: smtp.url, from: FROM, logger });
      expect(sender.mode).toBe('smtp');

      const result = await sender.send(MESSAGE);
      const expectedId = messageIdFor(MESSAGE.idempotencyKey);
      expect(expectedId).toMatch(/^<[0-9a-f]{32}@stellaops-workflows>$/);
      expect(result.messageId).toBe(expectedId);

      expect(smtp.mails).toHaveLength(1);
      const received = smtp.mails[0]!;
      expect(received.from).toBe('noreply@stellaops.test');
      expect(received.to).toEqual(['approver@example.test']);
      const headers = headersOf(received.raw);
      expect(headers.get('from')).toBe('StellaOps <noreply@stellaops.test>');
      expect(headers.get('to')).toBe('approver@example.test');
      expect(headers.get('subject')).toBe(MESSAGE.subject);
      expect(headers.get('message-id')).toBe(expectedId);
      expect(headers.get('x-stellaops-idempotency-key')).toBe(MESSAGE.idempotencyKey);
      expect(headers.get('x-stellaops-tenant')).toBe('t1');
      expect(headers.get('content-type')).toMatch(/^multipart\/alternative/);
      expect(received.raw).toContain('Content-Type: text/plain');
      expect(received.raw).toContain(MESSAGE.text);
      expect(received.raw).toContain('Content-Type: text/html');
      expect(received.raw).toContain(MESSAGE.html);

      // A retried send carries the same Message-ID: the receiver can drop it.
      await sender.send(MESSAGE);
      expect(headersOf(smtp.mails[1]!.raw).get('message-id')).toBe(expectedId);
    } finally {
      await smtp.close();
    }
  });

  it('reports an unreachable server as retryable', async () => {
    const { logger } = memoryLogger();
    const sender = createEmailSender({ smtpUrl: `smtp://127.0.0.1:${await freePort()}`, from: FROM, logger });
    const error = await deliveryError(sender.send(MESSAGE));
    expect(error.retryable).toBe(true);
    expect(error.status).toBeUndefined();
  });

  it('reports a 550 recipient rejection as not retryable and a 451 as retryable', async () => {
    for (const [responseCode, retryable] of [
      [550, false],
      [451, true],
    ] as const) {
      const smtp = await startSmtp({
        server: {
          onRcptTo(_address, _session, callback) {
            callback(Object.assign(new Error(`Mailbox says ${responseCode}`), { responseCode }));
          },
        },
      });
      try {
        const { logger } = memoryLogger();
        const sender = createEmailSender({ smtpUrl: smtp.url, from: FROM, logger });
        const error = await deliveryError(sender.send(MESSAGE));
        expect(error.retryable, `SMTP ${responseCode}`).toBe(retryable);
        expect(error.status).toBe(responseCode);
        expect(smtp.mails).toHaveLength(0);
      } finally {
        await smtp.close();
      }
    }
  });

  it('never logs the SMTP credentials', async () => {
    const { logger, lines } = memoryLogger();
    const port = await freePort();
    const sender = createEmailSender({ smtpUrl: `smtp://mailer:s3cr3t-pw@127.0.0.1:${port}`, from: FROM, logger });
    const error = await deliveryError(sender.send(MESSAGE));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('s3cr3t-pw');
    expect(error.message).not.toContain('s3cr3t-pw');
  });

  it('refuses a URL that is not smtp or smtps', () => {
    const { logger } = memoryLogger();
    expect(() => createEmailSender({ smtpUrl: 'http://user:pw@example.test', from: FROM, logger })).toThrow(
      /smtp:\/\/ or smtps:\/\//,
    );
  });

  it('refuses to override the headers it sets itself', async () => {
    const { logger } = memoryLogger();
    const sender = createEmailSender({ smtpUrl: 'smtp://127.0.0.1:1', from: FROM, logger });
    const error = await deliveryError(sender.send({ ...MESSAGE, headers: { 'Message-ID': '<forged@example.test>' } }));
    expect(error.retryable).toBe(false);
  });
});

describe('email to the local inbox', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pack-approval-inbox-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a readable .eml file and logs its path', async () => {
    const { logger, lines } = memoryLogger();
    const inboxDir = join(dir, 'inbox');
    const sender = createEmailSender({ from: FROM, inboxDir, logger });
    expect(sender.mode).toBe('inbox');

    const result = await sender.send(MESSAGE);
    expect(result.messageId).toBe(messageIdFor(MESSAGE.idempotencyKey));
    expect(result.location).toMatch(/\.eml$/);
    expect(await readdir(inboxDir)).toEqual([result.location!.slice(inboxDir.length + 1)]);

    const raw = await readFile(result.location!, 'utf8');
    const headers = headersOf(raw);
    expect(headers.get('subject')).toBe(MESSAGE.subject);
    expect(headers.get('from')).toBe('StellaOps <noreply@stellaops.test>');
    expect(headers.get('to')).toBe('approver@example.test');
    expect(headers.get('message-id')).toBe(result.messageId);
    expect(headers.get('x-stellaops-idempotency-key')).toBe(MESSAGE.idempotencyKey);
    expect(raw).toContain(MESSAGE.text);
    expect(raw).toContain(MESSAGE.html);

    const info = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.location === result.location);
    expect(info?.level).toBe(30);
    expect(info?.msg).toContain(result.location);

    // A retry rewrites the same file.
    await sender.send(MESSAGE);
    expect(await readdir(inboxDir)).toHaveLength(1);
  });
});

describe('signed webhook', () => {
  const receiver = useHttpReceiver((res) => res.writeHead(204).end());
  const { received } = receiver;

  const delivery = (path = '/hooks/approvals') => ({
    url: `${receiver.url}${path}`,
    tenantId: 't1',
    idempotencyKey: 'pack-approval/t1/r-42/a-1/requested/webhook',
    payload: { type: 'pack.approval.requested', runId: 'r-42', approvalId: 'a-1' },
  });

  it('POSTs the JSON payload with the idempotency, tenant and verifiable signature headers', async () => {
    const { logger } = memoryLogger();
    const sender = createSignedWebhookSender({ signingSecret: SECRET, logger });
    await expect(sender.send(delivery())).resolves.toEqual({ status: 204 });

    expect(received).toHaveLength(1);
    const request = received[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/hooks/approvals');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['idempotency-key']).toBe(delivery().idempotencyKey);
    expect(request.headers['x-stellaops-tenant']).toBe('t1');
    expect(request.headers['webhook-id']).toBe(delivery().idempotencyKey);
    expect(request.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(request.headers['webhook-signature']).toMatch(/^v1,/);
    expect(JSON.parse(request.body)).toEqual(delivery().payload);
    const verified = new Webhook(SECRET).verify(request.body, {
      'webhook-id': request.headers['webhook-id'] as string,
      'webhook-timestamp': request.headers['webhook-timestamp'] as string,
      'webhook-signature': request.headers['webhook-signature'] as string,
    });
    expect(verified).toEqual(delivery().payload);
  });

  it('sends no signature headers without a secret', async () => {
    const { logger } = memoryLogger();
    await createSignedWebhookSender({ logger }).send(delivery());
    expect(received[0]!.headers['webhook-signature']).toBeUndefined();
    expect(received[0]!.headers['idempotency-key']).toBe(delivery().idempotencyKey);
  });

  it('classifies failed answers', async () => {
    const { logger } = memoryLogger();
    const sender = createSignedWebhookSender({ signingSecret: SECRET, logger });

    receiver.answer = (res) => res.writeHead(500).end();
    let error = await deliveryError(sender.send(delivery()));
    expect([error.status, error.retryable]).toEqual([500, true]);

    receiver.answer = (res) => res.writeHead(400).end();
    error = await deliveryError(sender.send(delivery()));
    expect([error.status, error.retryable]).toEqual([400, false]);

    receiver.answer = (res) => res.writeHead(429, { 'Retry-After': '3' }).end();
    error = await deliveryError(sender.send(delivery()));
    expect([error.status, error.retryable, error.retryAfterMs]).toEqual([429, true, 3000]);

    receiver.answer = (res) => res.writeHead(302, { Location: `${receiver.url}/elsewhere` }).end();
    error = await deliveryError(sender.send(delivery()));
    expect([error.status, error.retryable]).toEqual([302, false]);
    // The redirect was not followed.
    expect(received.map((r) => r.url)).not.toContain('/elsewhere');
  });

  it('reports an unreachable receiver as retryable and a timeout as retryable', async () => {
    const { logger } = memoryLogger();
    const sender = createSignedWebhookSender({ logger, timeoutMs: 200 });
    const down = await deliveryError(sender.send({ ...delivery(), url: `http://127.0.0.1:${await freePort()}/hooks` }));
    expect(down.retryable).toBe(true);

    receiver.answer = () => undefined; // never answers
    const slow = await deliveryError(sender.send(delivery()));
    expect(slow.retryable).toBe(true);
    expect(slow.code).toBe('ETIMEDOUT');
  });

  it('refuses plain http to a non-loopback host', async () => {
    const { logger } = memoryLogger();
    const sender = createSignedWebhookSender({ logger });
    const error = await deliveryError(sender.send({ ...delivery(), url: 'http://hooks.example.test/x' }));
    expect(error.retryable).toBe(false);
  });
});
