import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createEffectActivities } from '../../activities/sagas/effects.js';
import { createEffectsManifestSource } from '../../activities/sagas/effects-manifest.js';
import { SagaFailure, type EffectCommand, type GatewayCommand } from '../../workflows/sagas/definitions.js';
import { rejectionOf } from '../support/assertions.js';
import { parseTestManifest } from '../support/effects-manifest.js';
import { useHttpReceiver, type Answer } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const gateway = useHttpReceiver((res) =>
  res.writeHead(202, { 'content-type': 'application/json' }).end('{"aggregateSequence":1}'),
);

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Answer =>
  (res) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

const COMMAND: GatewayCommand = {
  tenantId: 'acme',
  commandId: 'acme:advisory-impact-rescan:adv-1:rescan:img-1',
  aggregateType: 'Scan',
  aggregateId: 'img-1',
  commandType: 'RequestRescan',
  payload: { imageId: 'img-1', advisoryId: 'adv-1' },
  correlationId: 'adv-1',
  causationId: 'evt-1',
};

/** Effect and Gateway activities; a provider `p` on the Gateway's own origin; the Gateway's attempts per `gatewayRetry`. */
function setup(gatewayRetry = 'maximumAttempts: 4') {
  const log = memoryLogger();
  const manifest = parseTestManifest(
    `
defaults:
  timeoutMs: 300
  retry: { initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 5000, maximumAttempts: 3 }
  breaker: { threshold: 2, halfOpenAfterMs: 300 }
gateway:
  retry: { ${gatewayRetry} }
providers:
  - { name: p, kind: http, url: "${gateway.url}/provider" }
`,
    gateway.url,
  );
  const activities = createEffectActivities({
    manifest: createEffectsManifestSource(manifest),
    logger: log.logger,
    gatewayUrl: `${gateway.url}/`,
  });
  const env = (attempt: number) => new MockActivityEnvironment({ attempt, taskQueue: 'effects' });
  return {
    ...log,
    submit: (attempt = 1, traceparent: string | null = TRACEPARENT) =>
      runActivity(env(attempt), activities.submitGatewayCommand, {
        command: COMMAND,
        ...(traceparent && { traceparent }),
      }),
    effect: () =>
      runActivity(env(1), activities.runEffect, {
        tenantId: 'acme',
        commandId: 'c-1',
        effectName: 'p',
        payload: {},
        metadata: {},
      } satisfies EffectCommand),
  };
}

/** The ApplicationFailure `promise` rejects with (it must). */
const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, ApplicationFailure);

describe('submitGatewayCommand', () => {
  it('posts the command with its identity headers and returns accepted with the Gateway’s answer', async () => {
    const { submit } = setup();
    expect(await submit()).toEqual({
      commandId: COMMAND.commandId,
      outcome: 'accepted',
      httpStatus: 202,
      body: { aggregateSequence: 1 },
    });
    const [request] = gateway.received;
    expect(request).toMatchObject({ method: 'POST', url: '/api/v1/commands' });
    expect(JSON.parse(request!.body)).toEqual(COMMAND);
    expect(request!.headers).toMatchObject({
      'idempotency-key': COMMAND.commandId,
      'x-tenant-id': 'acme',
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
    });
  });

  it('sends the same Idempotency-Key on a retry, and no traceparent when there is none', async () => {
    const { submit } = setup();
    gateway.answer = json(503, {});
    await failureOf(submit(1, null));
    gateway.answer = json(200, { duplicate: true });
    expect((await submit(2, null)).outcome).toBe('accepted');
    expect(gateway.received.map((r) => r.headers['idempotency-key'])).toEqual([COMMAND.commandId, COMMAND.commandId]);
    expect(gateway.received.every((r) => r.headers.traceparent === undefined)).toBe(true);
  });

  it('returns the aggregate’s refusals (409, 422) as rejected results with the Gateway’s message', async () => {
    const { submit } = setup();
    gateway.answer = json(409, { error: 'SequenceMismatch', message: 'expected sequence 3, aggregate is at 4' });
    expect(await submit()).toEqual({
      commandId: COMMAND.commandId,
      outcome: 'rejected',
      httpStatus: 409,
      body: { error: 'SequenceMismatch', message: 'expected sequence 3, aggregate is at 4' },
    });
    gateway.answer = json(422, { error: 'UnknownCommand' });
    expect(await submit()).toMatchObject({
      outcome: 'rejected',
      httpStatus: 422,
      body: { error: 'UnknownCommand', message: 'UnknownCommand' },
    });
  });

  it('fails for good on any other refusal', async () => {
    const { submit } = setup();
    gateway.answer = json(400, { message: 'x-tenant-id must equal tenantId' });
    const failure = await failureOf(submit());
    expect(failure).toMatchObject({ type: SagaFailure.CommandRejected, nonRetryable: true });
    expect(failure.message).toContain('x-tenant-id must equal tenantId');
  });

  it('fails retryably while the Gateway is unavailable, honouring Retry-After, else the manifest’s backoff', async () => {
    const { submit } = setup();
    gateway.answer = json(503, {}, { 'retry-after': '3' });
    const asked = await failureOf(submit(1));
    expect(asked).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: false });
    expect(asked.nextRetryDelay).toBe(3000);
    gateway.answer = 'hang';
    const timedOut = await failureOf(submit(2));
    expect(timedOut).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: false });
    expect(timedOut.nextRetryDelay).toBe(400);
  });

  it('gives up after the manifest’s Gateway attempts, and never with no limit', async () => {
    gateway.answer = json(502, {});
    const last = await failureOf(setup().submit(4));
    expect(last).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: true });
    expect(last.message).toContain('giving up after 4 attempts');
    const unlimited = await failureOf(setup('maximumAttempts: 0').submit(1000));
    expect(unlimited).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: false });
    expect(unlimited.nextRetryDelay).toBe(5000);
  });

  it('shares the breaker of its origin with the providers there: open, fail fast, half-open', async () => {
    const { submit, effect } = setup();
    gateway.answer = json(503, {});
    await failureOf(submit());
    expect((await failureOf(effect())).type).toBe(SagaFailure.EffectUnavailable);
    expect(gateway.received).toHaveLength(2);

    const fast = await failureOf(submit());
    expect(fast).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: false });
    expect(fast.message).toContain('circuit breaker');
    expect(Number(fast.nextRetryDelay)).toBeLessThanOrEqual(300);
    const lastFast = await failureOf(submit(4));
    expect(lastFast).toMatchObject({ type: SagaFailure.GatewayUnavailable, nonRetryable: true });
    expect(gateway.received).toHaveLength(2);

    await new Promise((r) => setTimeout(r, 350));
    gateway.answer = json(202, {});
    expect((await submit()).outcome).toBe('accepted');
    expect((await effect()).resultType).toBe('succeeded');
    expect(gateway.received).toHaveLength(4);
  });

  it('refuses a Gateway that shares a provider’s upstream with other breaker settings', () => {
    const manifest = parseTestManifest(
      `gateway: { breaker: { threshold: 7 } }\nproviders:\n  - { name: p, kind: http, url: "${gateway.url}/p" }\n`,
      gateway.url,
      'e.yaml',
    );
    expect(() =>
      createEffectActivities({
        manifest: createEffectsManifestSource(manifest),
        logger: memoryLogger().logger,
        gatewayUrl: gateway.url,
      }),
    ).toThrow(
      `e.yaml: gateway.breaker must equal the breaker of p: both call ${gateway.url}, and one breaker guards one upstream`,
    );
    expect(() =>
      createEffectActivities({
        manifest: createEffectsManifestSource(manifest),
        logger: memoryLogger().logger,
        gatewayUrl: 'https://gateway.example.com',
      }),
    ).not.toThrow();
  });

  it('refuses a Gateway URL that breaks the outbound policy at creation', () => {
    const manifest = parseTestManifest('providers: []', 'http://127.0.0.1:1', 'e.yaml');
    expect(() =>
      createEffectActivities({
        manifest: createEffectsManifestSource(manifest),
        logger: memoryLogger().logger,
        gatewayUrl: 'http://gateway.example.com',
      }),
    ).toThrow(/must use https/);
  });
});
