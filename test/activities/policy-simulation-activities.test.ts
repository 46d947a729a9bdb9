import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPolicySimulationActivities } from '../../activities/policy-simulation/index.js';
import { loadWebhookConfig } from '../../core/config.js';
import type { PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { Revision } from '../../workflows/policy-simulation/state.js';
import { rejectionOf } from '../support/assertions.js';
import { policyRunStatus, SIMULATION_RESULT, SIMULATION_STATS } from '../support/fixtures.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const engineAnswer = JSON.stringify({ stats: SIMULATION_STATS, result: SIMULATION_RESULT });

let db: TestDatabase;
const receiver = useHttpReceiver((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(engineAnswer));
const { received } = receiver;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** The activities against the test database, the receiver as Policy Engine and as completion webhook. */
function activities(webhookEnv: NodeJS.ProcessEnv = {}) {
  return createPolicySimulationActivities({
    pool: db.pool,
    logger: memoryLogger().logger,
    policyEngineUrl: receiver.url,
    webhook: loadWebhookConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
      POLICY_WEBHOOK_MAX_ATTEMPTS: '3',
      ...webhookEnv,
    }),
  });
}

/** The fixture's succeeded run under its own id, so tests sharing the database never see each other's rows. */
function newRun(overrides: Partial<PolicyRunStatus> = {}): PolicyRunStatus {
  const runId = `run-${randomUUID().slice(0, 8)}`;
  return policyRunStatus({ runId, workflowId: `policy-simulation/tenant-a/${runId}`, ...overrides });
}

/** What distinguishes a queued run from a finished one. */
const QUEUED = {
  status: 'queued',
  startedAt: null,
  finishedAt: null,
  attempts: 0,
  stats: null,
  result: null,
} as const satisfies Partial<PolicyRunStatus>;

/** A queued run with its own id. */
const queuedRun = (overrides: Partial<PolicyRunStatus> = {}) => newRun({ ...QUEUED, ...overrides });

async function storedRun(doc: PolicyRunStatus) {
  const { rows } = await db.pool.query<{ status: string; revision: number; document: PolicyRunStatus }>(
    'SELECT status, revision, document FROM scheduler.policy_runs WHERE tenant_id = $1 AND run_id = $2',
    [doc.tenantId, doc.runId],
  );
  return rows;
}

async function countRows(table: string, doc: PolicyRunStatus): Promise<number> {
  const column = table === 'audit.events' ? 'subject' : 'run_id';
  const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = $1`, [
    doc.runId,
  ]);
  return rows[0]!.n;
}

/** The failure an activity run rejects with. */
const failureOf = (promise: Promise<unknown>) => rejectionOf(promise, ApplicationFailure);

describe('recordPolicyRunStatus', () => {
  it('writes the document, an event and the audit record once; a repeat changes nothing', async () => {
    const env = new MockActivityEnvironment();
    const { recordPolicyRunStatus } = activities();
    const doc = queuedRun();

    expect(
      await runActivity(env, recordPolicyRunStatus, { doc, revision: Revision.queued, actor: 'alice' }),
    ).toMatchObject({
      changed: true,
    });
    expect(await runActivity(env, recordPolicyRunStatus, { doc, revision: Revision.queued, actor: 'alice' })).toEqual({
      changed: false,
    });

    expect(await storedRun(doc)).toEqual([{ status: 'queued', revision: Revision.queued, document: doc }]);
    expect(await countRows('scheduler.policy_run_events', doc)).toBe(1);
    expect(await countRows('audit.events', doc)).toBe(1);
  });

  it('never lets an older revision overwrite a newer one', async () => {
    const env = new MockActivityEnvironment();
    const { recordPolicyRunStatus } = activities();
    const succeeded = newRun();
    await runActivity(env, recordPolicyRunStatus, { doc: succeeded, revision: Revision.terminal });
    const late = { ...succeeded, ...QUEUED, status: 'running' as const, startedAt: '2025-10-26T14:00:00.500Z' };
    expect(await runActivity(env, recordPolicyRunStatus, { doc: late, revision: Revision.running })).toEqual({
      changed: false,
    });
    expect((await storedRun(succeeded))[0]?.status).toBe('succeeded');
  });
});

describe('markPolicyRunRunning', () => {
  it('marks the run running and keeps the first start time when retried', async () => {
    const env = new MockActivityEnvironment();
    const { recordPolicyRunStatus, markPolicyRunRunning } = activities();
    const doc = queuedRun();
    await runActivity(env, recordPolicyRunStatus, { doc, revision: Revision.queued });

    const first = await runActivity(env, markPolicyRunRunning, { doc });
    expect(Date.parse(first.startedAt)).not.toBeNaN();
    const [stored] = await storedRun(doc);
    expect(stored).toMatchObject({ status: 'running', document: { startedAt: first.startedAt, attempts: 1 } });

    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await runActivity(env, markPolicyRunRunning, { doc })).toEqual(first);
  });
});

describe('evaluatePolicySimulation', () => {
  it('posts the run to the Policy Engine with an idempotency key and returns its verdict diff', async () => {
    const env = new MockActivityEnvironment();
    const { evaluatePolicySimulation } = activities();
    const doc = queuedRun({ inputs: { sbomSet: ['sbom:S-1', 'sbom:S-2'], captureExplain: true } });

    expect(await runActivity(env, evaluatePolicySimulation, { doc })).toEqual({
      stats: SIMULATION_STATS,
      result: SIMULATION_RESULT,
      attempts: 1,
    });
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.url).toBe('/api/v1/simulations/evaluate');
    expect(request?.headers['idempotency-key']).toBe(`${doc.workflowId}/evaluate`);
    expect(request?.headers['x-stellaops-tenant']).toBe('tenant-a');
    expect(JSON.parse(request?.body ?? '')).toEqual({
      tenantId: 'tenant-a',
      runId: doc.runId,
      policyId: 'P-1',
      policyVersion: 2,
      sbomSet: ['sbom:S-1', 'sbom:S-2'],
      captureExplain: true,
    });
  });

  it('records the attempt of a retried evaluation on the run document', async () => {
    const { recordPolicyRunStatus, evaluatePolicySimulation } = activities();
    const doc = queuedRun({ status: 'running', startedAt: '2025-10-26T14:00:00.500Z', attempts: 1 });
    await runActivity(new MockActivityEnvironment(), recordPolicyRunStatus, { doc, revision: Revision.running });

    const outcome = await runActivity(new MockActivityEnvironment({ attempt: 3 }), evaluatePolicySimulation, { doc });
    expect(outcome.attempts).toBe(3);
    expect((await storedRun(doc))[0]?.document).toMatchObject({ status: 'running', attempts: 3 });
  });

  it('fails for good when the engine refuses the request, and retryably when it is unavailable', async () => {
    const { evaluatePolicySimulation } = activities();
    const doc = queuedRun();

    receiver.answer = (res) =>
      res
        .writeHead(422, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'UnknownPolicy', message: 'policy P-1 has no version 2' }));
    const refused = await failureOf(runActivity(new MockActivityEnvironment(), evaluatePolicySimulation, { doc }));
    expect(refused).toMatchObject({ type: 'PolicyEngineRejected', nonRetryable: true });
    expect(refused.message).toContain('policy P-1 has no version 2');

    receiver.answer = (res) => res.writeHead(503).end();
    const unavailable = await failureOf(runActivity(new MockActivityEnvironment(), evaluatePolicySimulation, { doc }));
    expect(unavailable).toMatchObject({ type: 'PolicyEngineUnavailable', nonRetryable: false });
  });
});

describe('notifySimulationCompleted', () => {
  const finished = () => newRun();

  it('posts the completion payload of a terminal run, and nothing when the webhook is disabled', async () => {
    const doc = finished();
    receiver.answer = (res) => res.writeHead(204).end();
    const delivered = await runActivity(new MockActivityEnvironment(), activities().notifySimulationCompleted, { doc });
    expect(delivered).toEqual({ delivered: true, status: 204 });
    expect(received).toHaveLength(1);
    expect(received[0]?.url).toBe('/hooks/policy');
    expect(JSON.parse(received[0]?.body ?? '')).toMatchObject({ tenantId: 'tenant-a', simulation: doc });

    const disabled = activities({ POLICY_WEBHOOK_ENABLED: 'false' }).notifySimulationCompleted;
    expect(await runActivity(new MockActivityEnvironment(), disabled, { doc })).toEqual({
      delivered: false,
      skipped: 'disabled',
    });
    expect(received).toHaveLength(1);
  });

  it('retries an unavailable receiver until the configured attempts are used up; a refusal is final', async () => {
    const { notifySimulationCompleted } = activities();
    const doc = finished();

    receiver.answer = (res) => res.writeHead(503).end();
    const early = await failureOf(
      runActivity(new MockActivityEnvironment({ attempt: 1 }), notifySimulationCompleted, { doc }),
    );
    expect(early).toMatchObject({ type: 'WebhookDeliveryRetry', nonRetryable: false });
    const last = await failureOf(
      runActivity(new MockActivityEnvironment({ attempt: 3 }), notifySimulationCompleted, { doc }),
    );
    expect(last).toMatchObject({ type: 'WebhookDeliveryFailed', nonRetryable: true });
    expect(last.message).toContain('attempt 3');

    receiver.answer = (res) => res.writeHead(400).end();
    const refused = await failureOf(
      runActivity(new MockActivityEnvironment({ attempt: 1 }), notifySimulationCompleted, { doc }),
    );
    expect(refused).toMatchObject({ type: 'WebhookDeliveryFailed', nonRetryable: true });
  });
});
