import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { loadWebhookConfig, type WebhookConfig } from '../../core/config.js';
import { createWebhookSender } from '../../activities/policy-simulation/webhook.js';
import { DeliveryError } from '../../activities/shared/http.js';
import { buildCompletionPayload } from '../../workflows/policy-simulation/completion.js';
import type { CompletionPayload, PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { rejectionOf } from '../support/assertions.js';
import { policyRunStatus } from '../support/fixtures.js';
import { memoryLogger } from '../support/logger.js';
import { freePort } from '../support/ports.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const API_KEY = 'k-9f8e7d6c5b4a';

// A real HTTP receiver on 127.0.0.1.
const receiver = useHttpReceiver((res) => res.writeHead(204).end());
const { received } = receiver;

/** A validated configuration pointing at the receiver. */
function configFor(env: NodeJS.ProcessEnv = {}): WebhookConfig {
  return loadWebhookConfig({
    POLICY_WEBHOOK_ENABLED: 'true',
    POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
    ...env,
  });
}

/** The completion payload of a run that took 42.2733 s from queue to finish. */
function payload(overrides: Partial<PolicyRunStatus> = {}): CompletionPayload {
  const sim = policyRunStatus({
    runId: 'run:P-7:20251026T140500Z:3f2a9c1b',
    tenantId: 'tenant-alpha',
    queuedAt: '2025-10-26T14:05:00.118204Z',
    startedAt: '2025-10-26T14:05:01.027311Z',
    finishedAt: '2025-10-26T14:05:42.391457Z',
    workflowId: 'policy-simulation/tenant-alpha/run:P-7:20251026T140500Z:3f2a9c1b',
    ...overrides,
  });
  return buildCompletionPayload(sim, '2025-10-26T14:05:42.402Z');
}

/** The DeliveryError a promise rejects with. */
const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, DeliveryError);

describe('completion webhook sender', () => {
  it('POSTs the payload as JSON with the tenant and run-id headers', async () => {
    const { logger, records: lines } = memoryLogger();
    const body = payload();
    const outcome = await createWebhookSender({ config: configFor(), logger }).send(body, 'job-1');

    expect(outcome).toEqual({ delivered: true, status: 204 });
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/hooks/policy');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['x-stellaops-tenant']).toBe('tenant-alpha');
    expect(request?.headers['x-stellaops-run-id']).toBe('run:P-7:20251026T140500Z:3f2a9c1b');
    expect(request?.headers).not.toHaveProperty('webhook-signature');
    expect(request?.headers).not.toHaveProperty('webhook-id');
    expect(request?.body).toBe(JSON.stringify(body));
    expect(JSON.parse(request?.body ?? '')).toEqual({
      tenantId: 'tenant-alpha',
      simulation: body.simulation,
      result: 'succeeded',
      observedAt: '2025-10-26T14:05:42.391457Z',
      latencySeconds: 42.2733,
    });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 30, msg: 'Policy run job job-1 completion webhook delivered: HTTP 204' }),
    );
  });

  it('sends the configured API-key header and never logs the key', async () => {
    const { logger, lines: raw } = memoryLogger();
    const config = configFor({
      POLICY_WEBHOOK_API_KEY_HEADER: 'X-StellaOps-Webhook-Key',
      POLICY_WEBHOOK_API_KEY: API_KEY,
    });
    await createWebhookSender({ config, logger }).send(payload(), 'job-2');
    expect(received[0]?.headers['x-stellaops-webhook-key']).toBe(API_KEY);

    receiver.answer = (res) => res.writeHead(500).end();
    await failureOf(createWebhookSender({ config, logger }).send(payload(), 'job-2'));
    expect(raw.length).toBeGreaterThan(0);
    expect(raw.join('')).not.toContain(API_KEY);
  });

  it('signs with Standard Webhooks when a secret is configured: verifiable, webhook-id = run id', async () => {
    const { logger, lines: raw } = memoryLogger();
    const sender = createWebhookSender({ config: configFor({ POLICY_WEBHOOK_SIGNING_SECRET: SECRET }), logger });
    const body = payload();
    await sender.send(body, 'job-3');
    await sender.send(body, 'job-3'); // a retry

    expect(received).toHaveLength(2);
    for (const request of received) {
      const headers = request.headers as Record<string, string>;
      expect(headers['webhook-id']).toBe(body.simulation.runId);
      expect(headers['webhook-timestamp']).toMatch(/^\d+$/);
      expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(new Webhook(SECRET).verify(request.body, headers)).toEqual(JSON.parse(request.body));
      // A tampered body or another secret does not verify.
      expect(() => new Webhook(SECRET).verify(request.body.replace('tenant-alpha', 'tenant-beta'), headers)).toThrow();
      expect(() => new Webhook('whsec_YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4').verify(request.body, headers)).toThrow();
    }
    expect(raw.join('')).not.toContain(SECRET.slice('whsec_'.length));
  });

  it('makes no network call when disabled, and logs it at debug', async () => {
    const { logger, records: lines } = memoryLogger();
    const config = loadWebhookConfig({ POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy` });
    expect(config.enabled).toBe(false);
    const outcome = await createWebhookSender({ config, logger }).send(payload(), 'job-4');

    expect(outcome).toEqual({ delivered: false, skipped: 'disabled' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toHaveLength(0);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 20,
        msg: expect.stringMatching(/^Policy run job job-4 /) as unknown,
        runId: 'run:P-7:20251026T140500Z:3f2a9c1b',
      }),
    ]);
  });

  it('reports a 500 answer as a retryable failure with a WARN line naming the job', async () => {
    const { logger, records: lines } = memoryLogger();
    receiver.answer = (res) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end('boom');
    const error = await failureOf(createWebhookSender({ config: configFor(), logger }).send(payload(), 'job-5'));

    expect(error).toMatchObject({ retryable: true, status: 500, kind: 'http' });
    expect(error.retryAfterMs).toBeUndefined();
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      msg: 'Policy run job job-5 completion webhook failed: HTTP 500',
      tenantId: 'tenant-alpha',
      runId: 'run:P-7:20251026T140500Z:3f2a9c1b',
      status: 500,
      retryable: true,
    });
    expect(String(warnings[0]?.msg)).toMatch(/^Policy run job /);
  });

  it('reports a 400 answer as a non-retryable failure', async () => {
    const { logger, records: lines } = memoryLogger();
    receiver.answer = (res) => res.writeHead(400).end('{"error":"bad payload"}');
    const error = await failureOf(createWebhookSender({ config: configFor(), logger }).send(payload(), 'job-6'));
    expect(error).toMatchObject({ retryable: false, status: 400 });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 40, msg: 'Policy run job job-6 completion webhook failed: HTTP 400' }),
    );
  });

  it.each([408, 429, 502, 503])('treats HTTP %i as retryable', async (status) => {
    receiver.answer = (res) => res.writeHead(status).end();
    const error = await failureOf(
      createWebhookSender({ config: configFor(), logger: memoryLogger().logger }).send(payload(), 'job-7'),
    );
    expect(error.retryable).toBe(true);
  });

  it.each([401, 403, 404, 410, 422])('treats HTTP %i as not retryable', async (status) => {
    receiver.answer = (res) => res.writeHead(status).end();
    const error = await failureOf(
      createWebhookSender({ config: configFor(), logger: memoryLogger().logger }).send(payload(), 'job-8'),
    );
    expect(error.retryable).toBe(false);
  });

  it('honours Retry-After on 429', async () => {
    receiver.answer = (res) => res.writeHead(429, { 'Retry-After': '2' }).end();
    const error = await failureOf(
      createWebhookSender({ config: configFor(), logger: memoryLogger().logger }).send(payload(), 'job-9'),
    );
    expect(error).toMatchObject({ retryable: true, status: 429, retryAfterMs: 2000 });
  });

  it('does not follow redirects (they would replay the API key elsewhere)', async () => {
    receiver.answer = (res) => res.writeHead(307, { Location: `${receiver.url}/elsewhere` }).end();
    const error = await failureOf(
      createWebhookSender({ config: configFor(), logger: memoryLogger().logger }).send(payload(), 'job-10'),
    );
    expect(error).toMatchObject({ status: 307, retryable: false });
    expect(received.map((r) => r.url)).toEqual(['/hooks/policy']);
  });

  it('times out a receiver that never answers, as a retryable failure', async () => {
    const { logger, records: lines } = memoryLogger();
    receiver.answer = 'hang';
    const started = Date.now();
    const error = await failureOf(
      createWebhookSender({ config: configFor({ POLICY_WEBHOOK_TIMEOUT_SECONDS: '1' }), logger }).send(
        payload(),
        'job-11',
      ),
    );
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ retryable: true, kind: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5000);
    expect(received).toHaveLength(1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'Policy run job job-11 completion webhook failed: timed out after 1s',
      }),
    );
  });

  it('reports a refused connection as a retryable network failure', async () => {
    const port = await freePort();

    const { logger, records: lines } = memoryLogger();
    const config = loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: `http://127.0.0.1:${port}/`,
    });
    const error = await failureOf(createWebhookSender({ config, logger }).send(payload(), 'job-12'));
    expect(error).toMatchObject({ retryable: true, kind: 'network' });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: expect.stringMatching(/^Policy run job job-12 completion webhook failed: network error/) as unknown,
      }),
    );
  });

  it('delivers failure payloads with their reason', async () => {
    const body = payload({ status: 'failed', result: null, error: 'Policy Engine rejected: 422' });
    await createWebhookSender({ config: configFor(), logger: memoryLogger().logger }).send(body, 'job-13');
    expect(JSON.parse(received[0]?.body ?? '')).toMatchObject({
      reason: 'Policy Engine rejected: 422',
      result: 'failed',
    });
  });
});
