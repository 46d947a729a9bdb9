import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createEffectActivities } from '../../activities/sagas/effects.js';
import {
  createEffectsManifestSource,
  parseEffectsManifest,
  type EffectsManifest,
} from '../../activities/sagas/effects-manifest.js';
import { SagaFailure, type EffectCommand } from '../../workflows/sagas/definitions.js';
import { startHttpReceiver, useHttpReceiver, type Answer } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';
import { rejectionOf } from '../support/assertions.js';

const SECRET = 'provider-token-7f3a9c';
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const receiver = useHttpReceiver((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));

/** A manifest whose providers call `base`: `impact` (POST with a secret header), `lookup` (GET), `slow`. */
function manifestFor(base: string, overrides = ''): EffectsManifest {
  return parseEffectsManifest(
    `
defaults:
  timeoutMs: 300
  retry: { initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1000, maximumAttempts: 5 }
  breaker: { threshold: 3, halfOpenAfterMs: 400 }
providers:
  - name: impact
    kind: http
    url: ${base}/impact/{tenantId}/{payload.advisoryId}
    headers:
      authorization: { secretEnv: PROVIDER_TOKEN }
      x-client: stellaops
  - name: lookup
    kind: http
    method: GET
    url: ${base}/lookup?id={payload.id}
${overrides}`,
    {
      source: 'effects.yaml',
      referenceServicesUrl: base,
      readSecretFile: () => '',
      environmentSecret: (name) => (name === 'PROVIDER_TOKEN' ? `Bearer ${SECRET}` : undefined),
    },
  );
}

function command(overrides: Partial<EffectCommand> = {}): EffectCommand {
  return {
    tenantId: 'acme',
    commandId: 'acme:advisory-impact-rescan:adv-1:resolve',
    effectName: 'impact',
    payload: { advisoryId: 'CVE-2026/1', packages: ['pkg:npm/a@1'] },
    metadata: { correlationId: 'adv-1', traceparent: TRACEPARENT },
    ...overrides,
  };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Answer =>
  (res) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

function setup(base = receiver.url) {
  const log = memoryLogger();
  const activities = createEffectActivities({
    manifest: createEffectsManifestSource(manifestFor(base)),
    logger: log.logger,
    gatewayUrl: 'http://127.0.0.1:1',
  });
  const run = (cmd: EffectCommand = command(), attempt = 1) =>
    runActivity(new MockActivityEnvironment({ attempt, taskQueue: 'effects' }), activities.runEffect, cmd);
  return { ...log, activities, run };
}

/** The ApplicationFailure `promise` rejects with (it must). */
const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, ApplicationFailure);

describe('runEffect', () => {
  it('calls the provider with the payload, its headers and the command’s identity, and returns its answer', async () => {
    receiver.answer = json(200, { advisoryId: 'CVE-2026/1', images: [{ imageId: 'img-1' }] });
    const { run } = setup();
    const result = await run();
    expect(result).toMatchObject({
      tenantId: 'acme',
      commandId: 'acme:advisory-impact-rescan:adv-1:resolve',
      effectName: 'impact',
      resultType: 'succeeded',
      payload: { advisoryId: 'CVE-2026/1', images: [{ imageId: 'img-1' }] },
    });
    expect(Date.parse(result.timestamp)).not.toBeNaN();
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request).toMatchObject({ method: 'POST', url: '/impact/acme/CVE-2026%2F1' });
    expect(JSON.parse(request!.body)).toEqual(command().payload);
    expect(request!.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'acme:advisory-impact-rescan:adv-1:resolve',
      'x-tenant-id': 'acme',
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
      authorization: `Bearer ${SECRET}`,
      'x-client': 'stellaops',
    });
  });

  it('sends the same Idempotency-Key on every attempt of one command, and leaves out absent metadata', async () => {
    const { run } = setup();
    receiver.answer = json(503, { message: 'busy' });
    await failureOf(run(command({ metadata: {} }), 1));
    receiver.answer = json(200, { ok: true });
    await run(command({ metadata: {} }), 2);
    const keys = receiver.received.map((r) => r.headers['idempotency-key']);
    expect(keys).toEqual(['acme:advisory-impact-rescan:adv-1:resolve', 'acme:advisory-impact-rescan:adv-1:resolve']);
    for (const request of receiver.received) {
      expect(request.headers['x-correlation-id']).toBeUndefined();
      expect(request.headers.traceparent).toBeUndefined();
    }
  });

  it('answers a non-object or empty body as a payload too; GET sends no body', async () => {
    const { run } = setup();
    receiver.answer = json(200, [1, 2]);
    expect((await run()).payload).toEqual({ value: [1, 2] });
    receiver.answer = (res) => res.writeHead(204).end();
    expect((await run()).payload).toEqual({});
    receiver.answer = (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
    const lookup = await run(command({ effectName: 'lookup', payload: { id: 'a b' } }));
    expect(lookup).toMatchObject({ resultType: 'succeeded', payload: { value: 'done' } });
    const get = receiver.received[2]!;
    expect(get).toMatchObject({ method: 'GET', url: '/lookup?id=a%20b', body: '' });
    expect(get.headers['content-type']).toBeUndefined();
  });

  it('returns a refusal (4xx other than 408/429) as a rejected result with the provider’s message', async () => {
    const { run } = setup();
    receiver.answer = json(422, { error: 'QuotaExceeded', message: 'more than 10 GiB reserved' });
    expect(await run()).toMatchObject({
      resultType: 'rejected',
      payload: { status: 422, message: 'more than 10 GiB reserved' },
    });
    receiver.answer = json(404, { error: 'NotFound' });
    expect((await run()).payload).toEqual({ status: 404, message: 'NotFound' });
    receiver.answer = (res) => res.writeHead(400, { 'content-type': 'text/plain' }).end('bad input');
    expect((await run()).payload).toEqual({ status: 400, message: 'bad input' });
    receiver.answer = (res) => res.writeHead(401).end();
    expect((await run()).payload).toEqual({ status: 401, message: 'HTTP 401' });
    receiver.answer = (res) => res.writeHead(302, { location: 'https://elsewhere.example.com/' }).end();
    expect((await run()).payload).toEqual({ status: 302, message: 'HTTP 302' });
  });

  it('refuses a command whose payload lacks a field of the URL, without calling the provider', async () => {
    const { run, records } = setup();
    const result = await run(command({ payload: { packages: [] } }));
    expect(result).toMatchObject({ resultType: 'rejected', payload: { status: null } });
    expect(result.payload.message).toContain('the payload needs advisoryId');
    expect(receiver.received).toHaveLength(0);
    expect(records.some((r) => r.level === 40 && String(r.msg).includes('not sent'))).toBe(true);
  });

  it('fails retryably on 5xx, 408 and 429, after Retry-After when given, else the manifest’s backoff', async () => {
    const { run } = setup();
    receiver.answer = json(503, { message: 'down' }, { 'retry-after': '7' });
    const withRetryAfter = await failureOf(run(command(), 1));
    expect(withRetryAfter).toMatchObject({ type: SagaFailure.EffectUnavailable, nonRetryable: false });
    expect(withRetryAfter.nextRetryDelay).toBe(7000);

    receiver.answer = json(500, {});
    expect((await failureOf(run(command(), 1))).nextRetryDelay).toBe(100);
    // A fresh worker's breaker: three failures in a row would open this one.
    const fresh = setup();
    receiver.answer = json(408, {});
    expect((await failureOf(fresh.run(command(), 3))).nextRetryDelay).toBe(400);
    receiver.answer = json(429, {});
    const limited = await failureOf(fresh.run(command(), 4));
    expect(limited).toMatchObject({ type: SagaFailure.EffectUnavailable, nonRetryable: false });
    expect(limited.nextRetryDelay).toBe(800);
  });

  it('fails retryably on a timeout and on a network error', async () => {
    const { run } = setup();
    receiver.answer = 'hang';
    const timedOut = await failureOf(run());
    expect(timedOut).toMatchObject({ type: SagaFailure.EffectUnavailable, nonRetryable: false });
    expect(timedOut.message).toContain('timed out after 300 ms');

    const closed = await startHttpReceiver(() => json(200, {}));
    const url = closed.url;
    await closed.close();
    const refused = await failureOf(setup(url).run());
    expect(refused).toMatchObject({ type: SagaFailure.EffectUnavailable, nonRetryable: false });
    expect(refused.message).toContain('network error');
  });

  it('returns a failed result once the manifest’s attempts are spent', async () => {
    const { run } = setup();
    receiver.answer = json(503, { message: 'down' }, { 'retry-after': '1' });
    expect(await run(command(), 5)).toMatchObject({
      resultType: 'failed',
      payload: { status: 503, attempts: 5 },
    });
  });

  it('refuses an effect the manifest does not declare, for good', async () => {
    const failure = await failureOf(setup().run(command({ effectName: 'unknown-effect' })));
    expect(failure).toMatchObject({ type: SagaFailure.EffectNotConfigured, nonRetryable: true });
    expect(failure.message).toContain('effects.yaml');
    expect(receiver.received).toHaveLength(0);
  });

  it('opens the breaker after the threshold, fails fast without calling, and half-opens after the delay', async () => {
    const { run, records } = setup();
    receiver.answer = json(503, {});
    for (let i = 0; i < 3; i++) await failureOf(run());
    expect(receiver.received).toHaveLength(3);

    // Open: nothing reaches the provider; the failure says when the probe may go out.
    const fast = await failureOf(run());
    expect(fast).toMatchObject({ type: SagaFailure.EffectUnavailable, nonRetryable: false });
    expect(fast.message).toContain('circuit breaker');
    expect(Number(fast.nextRetryDelay)).toBeGreaterThan(0);
    expect(Number(fast.nextRetryDelay)).toBeLessThanOrEqual(400);
    expect(receiver.received).toHaveLength(3);
    // …also on the last attempt, which then answers failed.
    expect(await run(command(), 5)).toMatchObject({ resultType: 'failed', payload: { attempts: 5 } });
    expect(receiver.received).toHaveLength(3);

    // Half-open after the delay: one probe goes out; a failed probe opens it again at once.
    await new Promise((r) => setTimeout(r, 450));
    await failureOf(run());
    expect(receiver.received).toHaveLength(4);
    await failureOf(run());
    expect(receiver.received).toHaveLength(4);

    // A successful probe closes it: calls go through again.
    await new Promise((r) => setTimeout(r, 450));
    receiver.answer = json(200, { ok: true });
    expect((await run()).resultType).toBe('succeeded');
    expect((await run()).resultType).toBe('succeeded');
    expect(receiver.received).toHaveLength(6);
    const messages = records.map((r) => String(r.msg));
    expect(messages.filter((m) => m.includes('opened'))).toHaveLength(2);
    expect(messages.some((m) => m.includes('closed'))).toBe(true);
  });

  it('does not count refusals towards the breaker', async () => {
    const { run } = setup();
    receiver.answer = json(422, {});
    for (let i = 0; i < 5; i++) expect((await run()).resultType).toBe('rejected');
    expect(receiver.received).toHaveLength(5);
  });

  it('stops waiting when the activity is cancelled', async () => {
    const log = memoryLogger();
    const activities = createEffectActivities({
      manifest: createEffectsManifestSource(manifestFor(receiver.url, '    timeoutMs: 60000\n')),
      logger: log.logger,
      gatewayUrl: 'http://127.0.0.1:1',
    });
    receiver.answer = 'hang';
    const env = new MockActivityEnvironment({ taskQueue: 'effects' });
    const running = runActivity(env, activities.runEffect, command({ effectName: 'lookup', payload: { id: 'x' } }));
    await expect.poll(() => receiver.received.length).toBe(1);
    const started = Date.now();
    env.cancel();
    await expect(running).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('logs the command’s identity and the URL without query, never a header value', async () => {
    const { run, lines, records } = setup();
    receiver.answer = json(200, {});
    await run();
    receiver.answer = json(503, {});
    await failureOf(run());
    await run(command({ effectName: 'lookup', payload: { id: 'secret-query' } }), 5);
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(lines.join('\n')).not.toContain('secret-query');
    const delivered = records.find((r) => String(r.msg).includes('delivered'));
    expect(delivered).toMatchObject({
      tenantId: 'acme',
      commandId: 'acme:advisory-impact-rescan:adv-1:resolve',
      effectName: 'impact',
      correlationId: 'adv-1',
      url: `${receiver.url}/impact/acme/CVE-2026%2F1`,
    });
  });
});
