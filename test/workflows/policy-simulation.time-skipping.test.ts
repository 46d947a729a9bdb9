/**
 * policySimulationWorkflow timers on the real time-skipping test server: the overall evaluation timeout and the
 * webhook retry backoff, both of which take minutes of server time and seconds of wall time here.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWebhookConfig } from '../../core/config.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { getPolicyRun } from '../../db/queries/policy-simulations.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';
import type { policySimulationWorkflow } from '../../workflows/policy-simulation/workflow.js';
import { recordHistory } from '../support/histories.js';
import { startFlakyEngine, startReceiver } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startOn, startSimulationWorker } from '../support/simulations.js';
import { createTimeSkippingEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let temporal: TemporalFacade;
let db: TestDatabase;
let engine: RunningPolicyEngine;
beforeAll(async () => {
  [env, db, engine] = await Promise.all([createTimeSkippingEnv(), createTestDatabase(), startPolicyEngine()]);
  temporal = createTemporalFacade({ address: env.address, namespace: 'default' });
});
afterAll(async () => {
  await temporal?.close();
  await engine?.close();
  await db?.drop();
  await env?.teardown();
});

describe('policySimulationWorkflow timers (time-skipping server)', () => {
  it('ends failed with a clear reason when the engine keeps failing past the overall timeout', async () => {
    // Retries back off 1 s, 2 s, 4 s, 8 s… on server timers (skipped here); the 10 s deadline fires first.
    const failing = await startFlakyEngine({ failures: 1_000, status: 503, upstream: engine.url });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: failing.url });
    try {
      const started = Date.now();
      const { doc } = await startOn(temporal, w, { evaluationTimeoutSeconds: 10 });
      // The environment's client skips time while it waits for a result.
      const handle = env.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId);
      const result = await handle.result();
      await recordHistory(handle, 'policy-simulation-timed-out');
      expect(result.status).toBe('failed');
      expect(result.error).toBe('Policy evaluation timed out after 10 s');
      expect(Date.parse(result.finishedAt!) - Date.parse(result.queuedAt)).toBeGreaterThanOrEqual(10_000);
      expect(failing.requests()).toBe(4);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect((await getPolicyRun(db.pool, 'acme', doc.runId))?.status).toBe('failed');
    } finally {
      await w.stop();
      await failing.close();
    }
  });

  it('retries a failing webhook with backoff until the receiver accepts it', async () => {
    let calls = 0;
    const receiver = await startReceiver(() => (++calls < 4 ? 503 : 204));
    const webhook = loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: receiver.url,
      POLICY_WEBHOOK_MAX_ATTEMPTS: '5',
    });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, webhook });
    try {
      const { doc } = await startOn(temporal, w);
      const result = await env.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId).result();
      expect(result.status).toBe('succeeded');
      // Three 503s, then delivered: one successful delivery, receivers dedupe the earlier ones on the run id.
      expect(receiver.received).toHaveLength(4);
      expect(new Set(receiver.received.map((r) => r.headers['x-stellaops-run-id']))).toEqual(new Set([result.runId]));
    } finally {
      await w.stop();
      await receiver.close();
    }
  });
});
