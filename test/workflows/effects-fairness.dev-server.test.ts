/**
 * The effects queue on the real dev server: each queue of the worker host hosts only its own activities, and the
 * tenant as fairness key keeps one tenant's burst of effect calls from starving another tenant (the dev server runs
 * with `matching.enableFairness`, as `npm start` does; a control server without it shows the starvation).
 */
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivitiesByQueue } from '../../activities/index.js';
import { createEffectsManifestSource } from '../../activities/sagas/effects-manifest.js';
import { loadWebhookConfig, type TaskQueueName } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { createPool } from '../../db/pool.js';
import type { EffectCommand } from '../../workflows/sagas/definitions.js';
import { createWorkerHost, type WorkerHost } from '../../workers/host.js';
import { parseTestManifest } from '../support/effects-manifest.js';
import { startHttpReceiver, type ReceivedRequest } from '../support/http-sinks.js';
import { createDevServerEnv, uniqueName } from '../support/temporal.js';
import type { callActivitiesWorkflow } from './fixtures/outbound-calls-workflows.js';

/** The slow provider's answer time: the effects worker stays busy while the burst waits on the server. */
const PROVIDER_DELAY_MS = 60;
const BURST = 30;
const FEW = 3;

const logger = createLogger({ level: 'silent' });
// Never connected: the saga bookkeeping activities are registered, not called, here.
const pool = createPool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', applicationName: 'effects-test' });
const received: ReceivedRequest[] = [];
let provider: Awaited<ReturnType<typeof startHttpReceiver>>;
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  provider = await startHttpReceiver(
    () => (res) =>
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
        PROVIDER_DELAY_MS,
      ),
    received,
  );
  bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fixtures/outbound-calls-workflows.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
});
afterAll(async () => {
  await provider?.close();
  await pool.end();
});

/** A worker host of `queues` (as workers/main.ts builds it) and a worker of the fixture workflows. */
async function startWorkers(env: TestWorkflowEnvironment, queues: TaskQueueName[], effectsConcurrency: number) {
  const prefix = `${uniqueName('fx')}-`;
  const manifest = parseTestManifest(
    `providers:\n  - { name: slow-provider, kind: http, url: "${provider.url}/effect/{tenantId}", timeoutMs: 10000 }\n`,
    provider.url,
  );
  const host: WorkerHost = await createWorkerHost({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    queues,
    activitiesByQueue: createActivitiesByQueue({
      pool,
      logger,
      policyEngineUrl: 'http://127.0.0.1:1',
      policyWebhook: loadWebhookConfig({}),
      effects: { manifest: createEffectsManifestSource(manifest), gatewayUrl: provider.url },
    }),
    effectsConcurrency,
    workflowBundle: bundle,
    logger,
    taskQueuePrefix: prefix,
  });
  const fixtures = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: `${prefix}fixtures`,
    workflowBundle: bundle,
  });
  const running = Promise.all([host.run(), fixtures.run()]);
  return {
    prefix,
    call: (input: Parameters<typeof callActivitiesWorkflow>[0]) =>
      env.client.workflow.start<typeof callActivitiesWorkflow>('callActivitiesWorkflow', {
        taskQueue: `${prefix}fixtures`,
        workflowId: uniqueName('calls'),
        args: [input],
      }),
    async stop() {
      host.shutdown();
      fixtures.shutdown();
      await running;
    },
  };
}

const effect = (tenantId: string, i: number): EffectCommand => ({
  tenantId,
  commandId: `${tenantId}:burst:${i}`,
  effectName: 'slow-provider',
  payload: { i },
  metadata: {},
});

/**
 * Tenant A enqueues a burst of effect calls, then, while the effects worker (2 at a time) works through it, tenant B
 * a few. Returns the positions (0-based) of B's calls in the order the provider received them.
 */
async function burstThenFew(env: TestWorkflowEnvironment): Promise<number[]> {
  received.length = 0;
  const workers = await startWorkers(env, ['effects'], 2);
  try {
    const queue = `${workers.prefix}effects`;
    const a = await workers.call({
      taskQueue: queue,
      activity: 'runEffect',
      inputs: Array.from({ length: BURST }, (_, i) => effect('tenant-a', i)),
      fairnessKey: 'tenant-a',
    });
    // The burst is on the server, the worker busy with its first calls: now the other tenant's few arrive.
    await expect.poll(() => received.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    const b = await workers.call({
      taskQueue: queue,
      activity: 'runEffect',
      inputs: Array.from({ length: FEW }, (_, i) => effect('tenant-b', i)),
      fairnessKey: 'tenant-b',
    });
    for (const outcome of [...(await a.result()), ...(await b.result())]) {
      expect(outcome).toMatchObject({ ok: true, value: { resultType: 'succeeded' } });
    }
    expect(received).toHaveLength(BURST + FEW);
    return received.flatMap((request, position) => (request.headers['x-tenant-id'] === 'tenant-b' ? [position] : []));
  } finally {
    await workers.stop();
  }
}

describe('worker host (dev server)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createDevServerEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('hosts on each queue only its own activities, and the self-check on every queue', async () => {
    const workers = await startWorkers(env, ['saga', 'effects', 'policy-simulation'], 5);
    try {
      const outcomes = async (queue: TaskQueueName, activity: string, arg: unknown) => {
        const handle = await workers.call({ taskQueue: `${workers.prefix}${queue}`, activity, inputs: [arg] });
        return (await handle.result())[0]!;
      };
      expect(await outcomes('effects', 'runEffect', effect('tenant-q', 0))).toMatchObject({
        ok: true,
        value: { resultType: 'succeeded', tenantId: 'tenant-q' },
      });
      for (const queue of ['saga', 'effects', 'policy-simulation'] as const) {
        expect(await outcomes(queue, 'echoSelfCheck', { sequence: 1 })).toEqual({
          ok: true,
          value: { sequence: 1, taskQueue: `${workers.prefix}${queue}` },
        });
      }
      for (const [queue, activity] of [
        ['saga', 'runEffect'],
        ['saga', 'submitGatewayCommand'],
        ['saga', 'evaluatePolicySimulation'],
        ['effects', 'claimUnmatchedEvents'],
        ['effects', 'recordSagaProgress'],
        ['policy-simulation', 'runEffect'],
      ] as const) {
        const outcome = await outcomes(queue, activity, {});
        expect(outcome.ok).toBe(false);
        expect(String(outcome.value)).toContain(`Activity function ${activity} is not registered on this Worker`);
      }
    } finally {
      await workers.stop();
    }
  });

  it('serves another tenant’s few effect calls long before one tenant’s burst drains', async () => {
    const positions = await burstThenFew(env);
    // Fair dispatch interleaves B's calls with A's backlog: all of them among the first third, not behind the burst.
    expect(Math.max(...positions)).toBeLessThan((BURST + FEW) / 3);
  });
});

describe('control: a dev server without fairness', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createDevServerEnv({ fairness: false });
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('serves the few calls only after the whole burst', async () => {
    const positions = await burstThenFew(env);
    // First in, first out: behind the burst (the last call of A may overtake the first of B, two run at once).
    expect(Math.min(...positions)).toBeGreaterThanOrEqual(BURST - 1);
  });
});
