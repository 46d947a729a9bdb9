/**
 * What the effect and Gateway-command activities and the saga bookkeeping report on the Runner's metrics registry
 * (results by effect and type, attempt durations, breaker state per upstream, timer lateness), and a manifest
 * reload through the manifest source: the next calls use the new manifest, and a breaker whose settings changed is
 * rebuilt.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEffectActivities } from '../../activities/sagas/effects.js';
import { createEffectsManifestSource, type EffectsManifest } from '../../activities/sagas/effects-manifest.js';
import { createSagaActivities } from '../../activities/sagas/index.js';
import { SagaFailure, type EffectCommand } from '../../workflows/sagas/definitions.js';
import { createRunnerMetrics, type RunnerMetrics } from '../../workers/runner-metrics.js';
import { rejectionOf } from '../support/assertions.js';
import { parseTestManifest } from '../support/effects-manifest.js';
import { eventually, useHttpReceiver } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { sagaProgress } from '../support/sagas.js';
import { runActivity } from '../support/temporal.js';

const receiver = useHttpReceiver((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));

/** The value of one series of `name` (a counter or gauge, or a histogram's `_count`/`_sum`), by its labels. */
async function valueOf(metrics: RunnerMetrics, name: string, labels: Record<string, string>, series = name) {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === series &&
      Object.entries(labels).every(([key, value]) => String(v.labels[key]) === value),
  )?.value;
}

function manifest(extra = '', breaker = '{ threshold: 2, halfOpenAfterMs: 200 }'): EffectsManifest {
  return parseTestManifest(
    `
defaults:
  timeoutMs: 1000
  retry: { initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1000, maximumAttempts: 10 }
  breaker: ${breaker}
providers:
  - { name: impact, kind: http, url: "${receiver.url}/impact" }
${extra}`,
    receiver.url,
  );
}

function setup() {
  const metrics = createRunnerMetrics({ defaults: false });
  const source = createEffectsManifestSource(manifest());
  const activities = createEffectActivities({
    manifest: source,
    logger: memoryLogger().logger,
    gatewayUrl: receiver.url,
    metrics,
  });
  const run = (effectName = 'impact', attempt = 1) => {
    const command: EffectCommand = {
      tenantId: 'acme',
      commandId: `acme:saga:c-1:${randomUUID()}`,
      effectName,
      payload: {},
      metadata: {},
    };
    return runActivity(new MockActivityEnvironment({ attempt, taskQueue: 'effects' }), activities.runEffect, command);
  };
  return { metrics, source, activities, run };
}

const RESULTS = 'stellaops_runner_effect_results_total';
const DURATION = 'stellaops_runner_effect_duration_seconds';
const BREAKER = 'stellaops_runner_breaker_state';

describe('effect metrics', () => {
  it('counts results by effect and type, and observes the duration of each attempt', async () => {
    const { metrics, run } = setup();
    await run();
    await run();
    receiver.answer = (res) => res.writeHead(422).end();
    await run();
    receiver.answer = (res) => res.writeHead(503).end();
    await rejectionOf(run(), ApplicationFailure);

    expect(await valueOf(metrics, RESULTS, { effect: 'impact', result: 'succeeded' })).toBe(2);
    expect(await valueOf(metrics, RESULTS, { effect: 'impact', result: 'rejected' })).toBe(1);
    expect(await valueOf(metrics, RESULTS, { effect: 'impact', result: 'unavailable' })).toBe(1);
    expect(await valueOf(metrics, DURATION, { effect: 'impact' }, `${DURATION}_count`)).toBe(4);
    expect(await valueOf(metrics, DURATION, { effect: 'impact' }, `${DURATION}_sum`)).toBeGreaterThan(0);
  });

  it('counts Gateway commands as the gateway effect, by outcome', async () => {
    const { metrics, activities } = setup();
    const command = {
      tenantId: 'acme',
      commandId: 'acme:saga:c-1:rescan',
      aggregateType: 'Scan',
      aggregateId: 's-1',
      commandType: 'RequestRescan',
      payload: {},
      correlationId: 'c-1',
      causationId: 'e-1',
    };
    const submit = () =>
      runActivity(new MockActivityEnvironment({ taskQueue: 'effects' }), activities.submitGatewayCommand, { command });
    await submit();
    receiver.answer = (res) => res.writeHead(409).end();
    await submit();
    receiver.answer = (res) => res.writeHead(400).end();
    await rejectionOf(submit(), ApplicationFailure);

    expect(await valueOf(metrics, RESULTS, { effect: 'gateway', result: 'accepted' })).toBe(1);
    expect(await valueOf(metrics, RESULTS, { effect: 'gateway', result: 'rejected' })).toBe(1);
    expect(await valueOf(metrics, RESULTS, { effect: 'gateway', result: 'failed' })).toBe(1);
    expect(await valueOf(metrics, DURATION, { effect: 'gateway' }, `${DURATION}_count`)).toBe(3);
  });

  it('shows the breaker of each upstream: closed, open after the threshold, closed again after a probe', async () => {
    const { metrics, run } = setup();
    const upstream = new URL(receiver.url).origin;
    await run();
    expect(await valueOf(metrics, BREAKER, { upstream })).toBe(0);
    receiver.answer = (res) => res.writeHead(503).end();
    await rejectionOf(run(), ApplicationFailure);
    await rejectionOf(run(), ApplicationFailure);
    expect(await valueOf(metrics, BREAKER, { upstream })).toBe(2);
    const sent = receiver.received.length;
    const observed = await valueOf(metrics, DURATION, { effect: 'impact' }, `${DURATION}_count`);
    const failFast = await rejectionOf(run(), ApplicationFailure);
    expect(failFast.message).toMatch(/circuit breaker .* is open/);
    expect(receiver.received).toHaveLength(sent);
    // Counted as unavailable, but no duration: nothing was sent.
    expect(await valueOf(metrics, RESULTS, { effect: 'impact', result: 'unavailable' })).toBe(3);
    expect(await valueOf(metrics, DURATION, { effect: 'impact' }, `${DURATION}_count`)).toBe(observed);

    receiver.answer = (res) => res.writeHead(200).end('{}');
    // Calls fail fast until the breaker lets a probe through; the probe succeeds and closes it.
    await eventually(async () => ((await run().catch(() => undefined)) ? true : undefined), 10_000);
    expect(await valueOf(metrics, BREAKER, { upstream })).toBe(0);
  });
});

describe('manifest reload', () => {
  it('uses the replaced manifest from the next call on, and rebuilds a breaker whose settings changed', async () => {
    const { metrics, source, run } = setup();
    const upstream = new URL(receiver.url).origin;
    const notConfigured = await rejectionOf(run('lookup'), ApplicationFailure);
    expect(notConfigured.type).toBe(SagaFailure.EffectNotConfigured);

    receiver.answer = (res) => res.writeHead(503).end();
    await rejectionOf(run(), ApplicationFailure);
    await rejectionOf(run(), ApplicationFailure);
    expect(await valueOf(metrics, BREAKER, { upstream })).toBe(2);

    source.replace(
      manifest(
        `  - { name: lookup, kind: http, url: "${receiver.url}/lookup" }`,
        '{ threshold: 3, halfOpenAfterMs: 60000 }',
      ),
    );
    receiver.answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"found":true}');
    // The open breaker was replaced by a closed one with the new settings: the call goes out at once.
    expect(await run('lookup')).toMatchObject({ resultType: 'succeeded', payload: { found: true } });
    expect(receiver.received.at(-1)?.url).toBe('/lookup');
    expect(await valueOf(metrics, BREAKER, { upstream })).toBe(0);
  });

  it('refuses a manifest whose Gateway breaker differs from a provider on the same upstream, keeping the current one', () => {
    const first = manifest();
    const source = createEffectsManifestSource(first, { gatewayUrl: receiver.url });
    const conflicting = parseTestManifest(
      `
gateway: { breaker: { threshold: 9 } }
providers:
  - { name: impact, kind: http, url: "${receiver.url}/impact" }
`,
      receiver.url,
      'next.yaml',
    );
    expect(() => source.replace(conflicting)).toThrow(
      `next.yaml: gateway.breaker must equal the breaker of impact: both call ${new URL(receiver.url).origin}`,
    );
    expect(source.current()).toBe(first);
  });
});

describe('saga timer lateness', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('observes each fired timer of a projection write once, by saga', async () => {
    const metrics = createRunnerMetrics({ defaults: false });
    const { recordSagaProgress } = createSagaActivities({ pool: db.pool, logger: memoryLogger().logger, metrics });
    const tenantId = `tenant-${randomUUID().slice(0, 8)}`;
    const progress = sagaProgress(tenantId, {
      appliedEvents: 1,
      timersFired: [
        { saga: 'advisory-impact-rescan', dueAt: 1_000_000, firedAt: 1_002_500 },
        { saga: 'advisory-impact-rescan', dueAt: 2_000_000, firedAt: 2_000_500 },
      ],
    });
    const run = () => runActivity(new MockActivityEnvironment(), recordSagaProgress, progress);
    await run();
    await run(); // a retry of the stored write
    const lateness = 'stellaops_runner_timer_lateness_seconds';
    const saga = { saga: 'advisory-impact-rescan' };
    expect(await valueOf(metrics, lateness, saga, `${lateness}_count`)).toBe(2);
    expect(await valueOf(metrics, lateness, saga, `${lateness}_sum`)).toBeCloseTo(3, 6);
    expect(await valueOf(metrics, lateness, { ...saga, le: '1' }, `${lateness}_bucket`)).toBe(1);
  });
});
