/**
 * policySimulationWorkflow on the real dev server with the reference Policy Engine, real Postgres projections
 * and real HTTP peers: success, engine failures, cancellation while queued and while running, webhooks,
 * idempotent starts. Histories are recorded for the replay tests (`npm run histories:record`).
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWebhookConfig } from '../../core/config.js';
import { HttpError } from '../../api/errors.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { cancelSimulation } from '../../api/temporal/policy-simulations.js';
import { getPolicyRun, policyRunEventsAfter } from '../../db/queries/policy-simulations.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';
import type { PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { POLICY_ID, POLICY_RUN_ID, TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { recordHistory } from '../support/histories.js';
import { eventually, startFlakyEngine, startHangingEngine, startReceiver } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { simulationBody, startOn, startSimulationWorker, type SimulationWorker } from '../support/simulations.js';
import { createDevServerEnv, uniqueName } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let temporal: TemporalFacade;
let db: TestDatabase;
let engine: RunningPolicyEngine;
let worker: SimulationWorker;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [env, db, engine] = await Promise.all([createDevServerEnv(), createTestDatabase(), startPolicyEngine()]);
  temporal = createTemporalFacade({ address: env.address, namespace: 'default' });
  worker = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url });
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await worker?.stop();
  await temporal?.close();
  await engine?.close();
  await db?.drop();
  await env?.teardown();
});

async function statuses(doc: PolicyRunStatus): Promise<string[]> {
  return (await policyRunEventsAfter(db.pool, doc.tenantId, doc.runId, '0')).map((e) => e.status);
}

describe('policySimulationWorkflow (dev server)', () => {
  it('succeeds with the engine’s verdict diff, projecting queued → running → succeeded', async () => {
    const { handle, doc, created } = await startOn(temporal, worker);
    expect(created).toBe(true);
    expect(doc.status).toBe('queued');
    const result = await handle.result();
    await recordHistory(handle, 'policy-simulation-succeeded');

    expect(result.status).toBe('succeeded');
    expect(result.attempts).toBe(1);
    expect(result.result?.candidatePolicyVersion).toBe(3);
    expect(result.result?.activePolicyVersion).toBe(2);
    expect(result.result?.changed).toBeGreaterThan(0);
    expect(result.stats?.sboms).toBe(2);
    expect(Date.parse(result.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(result.startedAt!));
    expect(Date.parse(result.startedAt!)).toBeGreaterThanOrEqual(Date.parse(result.queuedAt));

    expect(await getPolicyRun(db.pool, 'acme', doc.runId)).toEqual(result);
    expect(await statuses(doc)).toEqual(['queued', 'running', 'succeeded']);
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(TENANT_ID)).toBe('acme');
    expect(description.typedSearchAttributes.get(POLICY_ID)).toBe('baseline-security');
    expect(description.typedSearchAttributes.get(POLICY_RUN_ID)).toBe(doc.runId);
    expect(await description.staticSummary()).toBe('Simulate baseline-security v3 over 2 SBOM(s)');
  });

  it('fails at once, without retrying, when the engine rejects the request (unknown SBOM)', async () => {
    const { handle } = await startOn(temporal, worker, {
      body: simulationBody({ inputs: { sbomSet: ['sbom-does-not-exist'] } }),
    });
    const result = await handle.result();
    await recordHistory(handle, 'policy-simulation-engine-rejected');
    expect(result.status).toBe('failed');
    expect(result.attempts).toBe(1);
    expect(result.error).toMatch(/HTTP 404.*sbom-does-not-exist/);
  });

  it('retries engine 5xx answers and then succeeds', async () => {
    const flaky = await startFlakyEngine({ failures: 2, status: 503, upstream: engine.url });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: flaky.url });
    cleanups.push(
      () => w.stop(),
      () => flaky.close(),
    );
    const { handle } = await startOn(temporal, w);
    const result = await handle.result();
    expect(result.status).toBe('succeeded');
    expect(result.attempts).toBe(3);
    expect(flaky.requests()).toBe(3);
  });

  it('cancels a queued run: it never starts and ends cancelled with the reason', async () => {
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, activities: false });
    cleanups.push(() => w.stop());
    const { handle, doc } = await startOn(temporal, w);
    // The projection activity cannot run without an activity worker, so the run stays queued in Temporal.
    const cancelled = await cancelSimulation(temporal, {
      tenantId: 'acme',
      runId: doc.runId,
      reason: 'not needed',
      requestedBy: 't',
    });
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      cancellationRequested: true,
      cancellationReason: 'not needed',
      startedAt: null,
    });
    expect(cancelled.finishedAt).not.toBeNull();
    await recordHistory(handle, 'policy-simulation-cancelled-queued');
  });

  it('cancels a running evaluation and rejects a second cancel with 409', async () => {
    const hanging = await startHangingEngine();
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: hanging.url });
    cleanups.push(
      () => w.stop(),
      () => hanging.close(),
    );
    const { handle, doc } = await startOn(temporal, w);
    await eventually(async () =>
      (await getPolicyRun(db.pool, 'acme', doc.runId))?.status === 'running' ? true : undefined,
    );

    const cancelled = await cancelSimulation(temporal, {
      tenantId: 'acme',
      runId: doc.runId,
      reason: 'wrong version',
      requestedBy: 't',
    });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.cancellationReason).toBe('wrong version');
    expect(cancelled.startedAt).not.toBeNull();
    expect((await handle.result()).status).toBe('cancelled');
    await recordHistory(handle, 'policy-simulation-cancelled-running');
    expect(await statuses(doc)).toEqual(['queued', 'running', 'cancelled']);

    const again = await cancelSimulation(temporal, {
      tenantId: 'acme',
      runId: doc.runId,
      reason: 'again',
      requestedBy: 't',
    }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(HttpError);
    expect((again as HttpError).statusCode).toBe(409);
  });

  it('delivers exactly one signed completion webhook with the contract headers and payload', async () => {
    const receiver = await startReceiver();
    const secret = `whsec_${Buffer.from('a-very-secret-signing-key-of-32b').toString('base64')}`;
    const webhook = loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
      POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key',
      POLICY_WEBHOOK_API_KEY: 'k-123',
      POLICY_WEBHOOK_SIGNING_SECRET: secret,
    });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, webhook });
    cleanups.push(
      () => w.stop(),
      () => receiver.close(),
    );
    const { handle, doc } = await startOn(temporal, w, { tenantId: 'globex' });
    const result = await handle.result();
    await recordHistory(handle, 'policy-simulation-webhook-delivered');

    expect(receiver.received).toHaveLength(1);
    const [delivery] = receiver.received;
    expect(delivery!.url).toBe('/hooks/policy');
    expect(delivery!.headers['x-stellaops-tenant']).toBe('globex');
    expect(delivery!.headers['x-stellaops-run-id']).toBe(doc.runId);
    expect(delivery!.headers['x-api-key']).toBe('k-123');
    const payload = new Webhook(secret).verify(delivery!.body, delivery!.headers as Record<string, string>) as Record<
      string,
      unknown
    >;
    expect(payload).toMatchObject({
      tenantId: 'globex',
      simulation: result,
      result: 'succeeded',
      observedAt: result.finishedAt,
    });
    expect(payload).not.toHaveProperty('reason');
    expect(String(payload.latencySeconds)).toMatch(/^\d+(\.\d{1,4})?$/);
  });

  it('never fails the run when the webhook receiver keeps failing; logs WARN `Policy run job …`', async () => {
    const receiver = await startReceiver(() => 500);
    const webhook = loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: receiver.url,
      POLICY_WEBHOOK_MAX_ATTEMPTS: '2',
    });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, webhook });
    cleanups.push(
      () => w.stop(),
      () => receiver.close(),
    );
    const { handle, doc } = await startOn(temporal, w, {
      body: simulationBody({ inputs: { sbomSet: ['sbom-missing'] } }),
    });
    const result = await handle.result();
    await recordHistory(handle, 'policy-simulation-webhook-failing');
    expect(result.status).toBe('failed');
    expect(receiver.received).toHaveLength(2);
    expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ reason: result.error });
    const warnings = w.logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings.filter((m) => m.startsWith(`Policy run job ${doc.runId}`))).toHaveLength(2);
  });

  it('sends no webhook while disabled', async () => {
    const receiver = await startReceiver();
    // Everything a delivery needs is configured except the switch, so only `enabled` stands between the run and
    // the receiver.
    const webhook = loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'false',
      POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
    });
    expect(webhook).toMatchObject({ enabled: false, endpoint: new URL(`${receiver.url}/hooks/policy`) });
    const w = await startSimulationWorker(env, { pool: db.pool, policyEngineUrl: engine.url, webhook });
    cleanups.push(
      () => w.stop(),
      () => receiver.close(),
    );
    const { handle, doc } = await startOn(temporal, w);
    expect((await handle.result()).status).toBe('succeeded');
    expect(receiver.received).toHaveLength(0);
    expect(w.logs.map((l) => l.msg)).toContain(
      `Policy run job ${doc.runId} completion webhook skipped: webhook disabled`,
    );
  });

  it('returns the existing run for a repeated Idempotency-Key and refuses the key for another request', async () => {
    const key = uniqueName('key');
    const first = await startOn(temporal, worker, { idempotencyKey: key });
    await first.handle.result();
    await recordHistory(first.handle, 'policy-simulation-idempotent-start');
    const second = await startOn(temporal, worker, { idempotencyKey: key });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.doc.runId).toBe(first.doc.runId);
    const other = await startOn(temporal, worker, {
      idempotencyKey: key,
      body: simulationBody({ policyVersion: 4 }),
    }).catch((e: unknown) => e);
    expect((other as HttpError).statusCode).toBe(409);
    // Same key after completion: still the same run, never a second execution.
    await expect(
      temporal.client.workflow.start('policySimulationWorkflow', {
        taskQueue: 'unused',
        workflowId: first.doc.workflowId,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        args: [],
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  });
});
