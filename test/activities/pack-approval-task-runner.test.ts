import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { DeliveryError } from '../../activities/shared/http.js';
import { createTaskRunnerClient, type ResumeRequest } from '../../activities/pack-approval/task-runner.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { rejectionOf } from '../support/assertions.js';
import { memoryLogger } from '../support/logger.js';
import { freePort } from '../support/ports.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TOKEN = 'tr-resume-7c1f0e9b2d4a';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const receiver = useHttpReceiver((res) => res.writeHead(202).end());
const { received } = receiver;

/** The DeliveryError a promise rejects with. */
const deliveryError = (promise: Promise<unknown>) => rejectionOf(promise, DeliveryError);

function request(overrides: Partial<ResumeRequest> = {}): ResumeRequest {
  return {
    url: `${receiver.url}/api/runs/r-42/approvals/a-1/resume?sig=query-secret`,
    token: TOKEN,
    tenantId: 't1',
    runId: 'r-42',
    approvalId: 'a-1',
    decision: 'approve',
    decidedBy: 'alice@example.test',
    decidedAt: '2025-05-01T10:00:00.000Z',
    comment: 'Looks good',
    idempotencyKey: 'pack-approval/t1/r-42/a-1/resume',
    correlationId: 'corr-123',
    traceparent: TRACEPARENT,
    ...overrides,
  };
}

describe('Task Runner resume client', () => {
  it('POSTs the decision with the bearer token, idempotency, tenant, correlation, trace and signature headers', async () => {
    const { logger, lines } = memoryLogger();
    const client = createTaskRunnerClient({ signingSecret: SECRET, logger });
    await expect(client.resume(request())).resolves.toEqual({ status: 202 });

    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/api/runs/r-42/approvals/a-1/resume?sig=query-secret');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(got.headers['idempotency-key']).toBe('pack-approval/t1/r-42/a-1/resume');
    expect(got.headers['x-stellaops-tenant']).toBe('t1');
    expect(got.headers['x-correlation-id']).toBe('corr-123');
    expect(got.headers.traceparent).toBe(TRACEPARENT);
    expect(got.headers['webhook-id']).toBe('pack-approval/t1/r-42/a-1/resume');
    expect(JSON.parse(got.body)).toEqual({
      runId: 'r-42',
      approvalId: 'a-1',
      decision: 'approve',
      decidedBy: 'alice@example.test',
      decidedAt: '2025-05-01T10:00:00.000Z',
      comment: 'Looks good',
    });
    const verified = new Webhook(SECRET).verify(got.body, {
      'webhook-id': got.headers['webhook-id'] as string,
      'webhook-timestamp': got.headers['webhook-timestamp'] as string,
      'webhook-signature': got.headers['webhook-signature'] as string,
    });
    expect(verified).toEqual(JSON.parse(got.body));

    const log = lines.join('\n');
    expect(log).toContain('/api/runs/r-42/approvals/a-1/resume');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('query-secret');
  });

  it('omits comment, traceparent and signature when absent', async () => {
    const { logger } = memoryLogger();
    const client = createTaskRunnerClient({ logger });
    await client.resume(request({ comment: undefined, traceparent: undefined, decision: 'reject' }));
    const got = received[0]!;
    expect(got.headers.traceparent).toBeUndefined();
    expect(got.headers['webhook-signature']).toBeUndefined();
    expect(JSON.parse(got.body)).toEqual({
      runId: 'r-42',
      approvalId: 'a-1',
      decision: 'reject',
      decidedBy: 'alice@example.test',
      decidedAt: '2025-05-01T10:00:00.000Z',
    });
  });

  it('refuses plain http to a non-loopback host without calling it', async () => {
    const { logger, lines } = memoryLogger();
    const client = createTaskRunnerClient({ logger });
    const error = await deliveryError(client.resume(request({ url: 'http://taskrunner.example.test/resume?t=1' })));
    expect(error.retryable).toBe(false);
    const unsupported = await deliveryError(client.resume(request({ url: 'ftp://taskrunner.example.test/resume' })));
    expect(unsupported.retryable).toBe(false);
    expect(received).toHaveLength(0);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('classifies failed answers and never logs the token', async () => {
    const { logger, lines } = memoryLogger();
    const client = createTaskRunnerClient({ signingSecret: SECRET, logger });

    for (const [status, retryable] of [
      [409, false],
      [400, false],
      [401, false],
      [503, true],
      [408, true],
    ] as const) {
      receiver.answer = (res) => res.writeHead(status, { 'Content-Type': 'text/plain' }).end(`echo ${TOKEN}`);
      const error = await deliveryError(client.resume(request()));
      expect([error.status, error.retryable], `HTTP ${status}`).toEqual([status, retryable]);
      expect(error.message).not.toContain(TOKEN);
    }

    receiver.answer = (res) => res.writeHead(503, { 'Retry-After': '7' }).end();
    const later = await deliveryError(client.resume(request()));
    expect([later.retryable, later.retryAfterMs]).toEqual([true, 7000]);

    receiver.answer = (res) => res.writeHead(307, { Location: `${receiver.url}/stolen` }).end();
    const redirect = await deliveryError(client.resume(request()));
    expect([redirect.status, redirect.retryable]).toEqual([307, false]);
    expect(received.map((r) => r.url)).not.toContain('/stolen');

    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('reports an unreachable Task Runner as retryable', async () => {
    const { logger, lines } = memoryLogger();
    const client = createTaskRunnerClient({ logger, timeoutMs: 2000 });
    const port = await freePort();
    const error = await deliveryError(client.resume(request({ url: `http://127.0.0.1:${port}/resume` })));
    expect([error.status, error.retryable]).toEqual([undefined, true]);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  it('refuses a token that cannot be sent as a header without quoting it', async () => {
    const { logger, lines } = memoryLogger();
    const client = createTaskRunnerClient({ logger });
    const error = await deliveryError(client.resume(request({ token: `${TOKEN}\nX-Evil: 1` })));
    expect(error.retryable).toBe(false);
    expect(error.message).not.toContain(TOKEN);
    expect(lines.join('\n')).not.toContain(TOKEN);
    expect(received).toHaveLength(0);
  });
});
