/**
 * Effect retries under Temporal, on the time-skipping test server: the delay a provider asks for (Retry-After) and
 * the manifest's backoff are Temporal's retry delays, so hours of waiting pass in seconds; an open circuit breaker
 * fails the attempts fast without calling the provider until it half-opens, and its probe completes the effect.
 */
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEffectActivities } from '../../activities/sagas/effects.js';
import { createEffectsManifestSource } from '../../activities/sagas/effects-manifest.js';
import { createLogger } from '../../core/logger.js';
import type { EffectCommand, EffectResult } from '../../workflows/sagas/definitions.js';
import { parseTestManifest } from '../support/effects-manifest.js';
import { startHttpReceiver, type Answer, type ReceivedRequest } from '../support/http-sinks.js';
import { createTimeSkippingEnv, uniqueName } from '../support/temporal.js';
import type { callActivitiesWorkflow } from './fixtures/outbound-calls-workflows.js';

const HOUR_S = 3600;

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundleWithSourceMap;
const received: ReceivedRequest[] = [];
/** Answers of the provider, one per request in order; the last one repeats. */
let answers: Answer[] = [];
let provider: Awaited<ReturnType<typeof startHttpReceiver>>;

beforeAll(async () => {
  [env, bundle, provider] = await Promise.all([
    createTimeSkippingEnv(),
    bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./fixtures/outbound-calls-workflows.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    }),
    startHttpReceiver(() => answers[Math.min(received.length - 1, answers.length - 1)]!, received),
  ]);
});
afterAll(async () => {
  await provider?.close();
  await env?.teardown();
});

const status =
  (code: number, headers: Record<string, string> = {}): Answer =>
  (res) =>
    res.writeHead(code, { 'content-type': 'application/json', ...headers }).end('{"message":"answer"}');

/** Runs one effect through a workflow with unlimited attempts, as the saga toolkit does; returns its result. */
async function runEffectInWorkflow(manifestDefaults: string) {
  received.length = 0;
  const manifest = parseTestManifest(
    `defaults: ${manifestDefaults}\nproviders:\n  - { name: flaky, kind: http, url: "${provider.url}/flaky" }\n`,
    provider.url,
  );
  const taskQueue = uniqueName('effects-ts');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: createEffectActivities({
      manifest: createEffectsManifestSource(manifest),
      logger: createLogger({ level: 'silent' }),
      gatewayUrl: provider.url,
    }),
  });
  const command: EffectCommand = {
    tenantId: 'acme',
    commandId: 'acme:mirror-bundle-export:b-1:reserve',
    effectName: 'flaky',
    payload: {},
    metadata: {},
  };
  const startedAt = await env.currentTimeMs();
  const wallStart = Date.now();
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof callActivitiesWorkflow>('callActivitiesWorkflow', {
      taskQueue,
      workflowId: uniqueName('effect-retries'),
      args: [{ taskQueue, activity: 'runEffect', inputs: [command], maximumAttempts: 0 }],
    });
    const [outcome] = await handle.result();
    let attempts = 0;
    for (const event of (await handle.fetchHistory()).events ?? []) {
      attempts = Math.max(attempts, event.activityTaskStartedEventAttributes?.attempt ?? 0);
    }
    return {
      outcome: outcome as { ok: boolean; value: EffectResult },
      attempts,
      serverElapsedMs: (await env.currentTimeMs()) - startedAt,
      wallElapsedMs: Date.now() - wallStart,
    };
  });
}

describe('runEffect under Temporal retries (time-skipping)', () => {
  it('waits as long as the provider asks with Retry-After, in server time, with one Idempotency-Key', async () => {
    answers = [
      status(503, { 'retry-after': String(HOUR_S) }),
      status(429, { 'retry-after': String(HOUR_S) }),
      status(200),
    ];
    const run = await runEffectInWorkflow(
      '{ retry: { initialIntervalMs: 100, maximumIntervalMs: 1000, maximumAttempts: 10 }, breaker: { threshold: 10 } }',
    );
    expect(run.outcome).toMatchObject({ ok: true, value: { resultType: 'succeeded' } });
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.headers['idempotency-key']))).toEqual(
      new Set(['acme:mirror-bundle-export:b-1:reserve']),
    );
    expect(run.serverElapsedMs).toBeGreaterThanOrEqual(2 * HOUR_S * 1000);
    expect(run.wallElapsedMs).toBeLessThan(30_000);
  });

  it('backs off by the manifest without Retry-After, and answers failed after its last attempt', async () => {
    answers = [status(500)];
    const run = await runEffectInWorkflow(
      '{ retry: { initialIntervalMs: 600000, backoffCoefficient: 2, maximumIntervalMs: 3600000, maximumAttempts: 4 }, breaker: { threshold: 10 } }',
    );
    expect(run.outcome).toMatchObject({ ok: true, value: { resultType: 'failed', payload: { attempts: 4 } } });
    expect(received).toHaveLength(4);
    expect(run.attempts).toBe(4);
    // 10 + 20 + 40 minutes between the four attempts.
    expect(run.serverElapsedMs).toBeGreaterThanOrEqual(70 * 60_000);
    expect(run.wallElapsedMs).toBeLessThan(30_000);
  });

  it('keeps the provider uncalled while the breaker is open, then completes with the half-open probe', async () => {
    answers = [status(503), status(503), status(200)];
    const run = await runEffectInWorkflow(
      '{ retry: { initialIntervalMs: 100, maximumIntervalMs: 1000, maximumAttempts: 0 }, breaker: { threshold: 2, halfOpenAfterMs: 1500 } }',
    );
    expect(run.outcome).toMatchObject({ ok: true, value: { resultType: 'succeeded' } });
    // Two failures open the breaker; the attempts while it is open are not sent; the probe is the third call.
    expect(received).toHaveLength(3);
    expect(run.attempts).toBeGreaterThan(3);
    expect(received[2]!.receivedAt - received[1]!.receivedAt).toBeGreaterThanOrEqual(1400);
  });
});
