/**
 * Runs whose data Postgres refuses, started directly in Temporal (bypassing the API's validation): they end
 * `failed` at once with the refusal as their reason, their terminal document is stored without what was refused,
 * and their completion webhook goes out. Before, the projection write was retried for ever and the run stayed
 * `queued` with no webhook.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadWebhookConfig } from '../../core/config.js';
import { getPolicyRun } from '../../db/queries/policy-simulations.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';
import type { CompletionPayload } from '../../workflows/policy-simulation/definitions.js';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { simulationBody, startOn, startSimulationWorker, type SimulationWorker } from '../support/simulations.js';
import { createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let temporal: TemporalFacade;
let db: TestDatabase;
let engine: RunningPolicyEngine;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let worker: SimulationWorker;

beforeAll(async () => {
  [env, db, engine, receiver] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    startPolicyEngine(),
    startReceiver(),
  ]);
  temporal = createTemporalFacade({ address: env.address, namespace: 'default' });
  const webhook = loadWebhookConfig({
    POLICY_WEBHOOK_ENABLED: 'true',
    POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
  });
  worker = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, webhook });
});
afterAll(async () => {
  await worker?.stop();
  await temporal?.close();
  await receiver?.close();
  await engine?.close();
  await db?.drop();
  await env?.teardown();
});

/** The completion payloads the receiver got for `runId`. */
const payloadsOf = (runId: string) =>
  receiver.received
    .map((request) => JSON.parse(request.body) as CompletionPayload)
    .filter((payload) => payload.simulation.runId === runId);

describe('policySimulationWorkflow with data Postgres refuses', () => {
  it.each([
    ['a NUL character in metadata', simulationBody({ metadata: { note: 'before\u0000after' } })],
    ['a policy version beyond the integer column', simulationBody({ policyVersion: 2_147_483_648 })],
  ])('ends failed with %s, stored and announced', async (_case, body) => {
    const startedAt = Date.now();
    const { handle, doc } = await startOn(temporal, worker, { body });
    const result = await handle.result();

    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/^Postgres refused the data \(SQLSTATE 22[0-9A-Z]{3}\)/);
    expect(result.attempts).toBe(0); // the evaluation never started
    expect(Date.now() - startedAt).toBeLessThan(30_000);

    const stored = await getPolicyRun(db.pool, doc.tenantId, doc.runId);
    expect(stored).toMatchObject({ status: 'failed', error: result.error });
    expect(JSON.stringify(stored)).not.toContain('\\u0000');

    const [payload, ...more] = await eventually(() => {
      const payloads = payloadsOf(doc.runId);
      return payloads.length > 0 ? payloads : undefined;
    });
    expect(more).toEqual([]);
    expect(payload?.simulation).toMatchObject({ runId: doc.runId, status: 'failed', error: result.error });
  });
});
