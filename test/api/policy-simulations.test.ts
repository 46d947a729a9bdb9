/** Policy simulation routes via app.inject against real Temporal, workers, Policy Engine and Postgres. */
import { readFile } from 'node:fs/promises';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { SimulationMetrics } from '../../api/schemas/policy-simulations.js';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import type { CompletionPayload, PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { upsertPolicyRun } from '../../db/queries/policy-simulations.js';
import { failedStatus, queuedStatus, Revision, runningStatus } from '../../workflows/policy-simulation/state.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';
import { uniqueName } from '../support/temporal.js';

const BASE = '/api/v1/scheduler/policies/simulations';
let h: ApiHarness;
let token: string;
let otherTenant: string;
const body = {
  policyId: 'baseline-security',
  policyVersion: 3,
  inputs: { sbomSet: ['sbom-payments-api', 'sbom-auth-service'] },
};

// TypeBox's Value checker knows no formats by itself; the API validates them with ajv-formats.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

beforeAll(async () => {
  h = await startApiHarness({ sseKeepAliveMs: 100 });
  token = await h.signer.token({ tenant: 'acme', scopes: [Scope.PolicySimulate] });
  otherTenant = await h.signer.token({ tenant: 'globex', scopes: [Scope.PolicySimulate] });
});
afterAll(async () => {
  await h?.close();
});

const auth = (t: string = token) => ({ authorization: `Bearer ${t}` });
const start = (payload: unknown = body, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: BASE, headers: { ...auth(), ...headers }, payload: payload as object });

async function waitFor(runId: string, status: string, t: string = token): Promise<PolicyRunStatus> {
  for (let i = 0; i < 200; i++) {
    const res = await h.app.inject({ method: 'GET', url: `${BASE}/${runId}`, headers: auth(t) });
    if (res.statusCode === 200 && res.json<PolicyRunStatus>().status === status) return res.json<PolicyRunStatus>();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${runId} never reached ${status}`);
}

function parseSse(text: string): { id?: string; event?: string; data?: unknown }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('event:'))
    .map((block) => {
      const fields = Object.fromEntries(
        block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      const data: unknown = fields.data ? JSON.parse(fields.data) : undefined;
      return { id: fields.id, event: fields.event, data };
    });
}

describe('POST /simulations', () => {
  it('starts a run (201, queued document, Location) that completes with a verdict diff', async () => {
    const res = await start();
    expect(res.statusCode).toBe(201);
    const doc = res.json<PolicyRunStatus>();
    expect(doc).toMatchObject({
      tenantId: 'acme',
      status: 'queued',
      mode: 'simulate',
      priority: 'normal',
      attempts: 0,
    });
    expect(doc.workflowId).toBe(`policy-simulation/acme/${doc.runId}`);
    expect(res.headers.location).toBe(`${BASE}/${doc.runId}`);
    const done = await waitFor(doc.runId, 'succeeded');
    expect(done.queuedAt).toBe(doc.queuedAt); // the answer and the projection agree
    expect(done.result?.candidatePolicyVersion).toBe(3);
    expect(done.stats?.sboms).toBe(2);
  });

  it('returns the same run for a retried Idempotency-Key (200) and 409 when the key is reused for another request', async () => {
    const key = uniqueName('idem');
    const first = await start(body, { 'idempotency-key': key });
    const second = await start(body, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(200);
    expect(second.json<PolicyRunStatus>().runId).toBe(first.json<PolicyRunStatus>().runId);
    const other = await start({ ...body, policyVersion: 4 }, { 'idempotency-key': key });
    expect(other.statusCode).toBe(409);
  });

  it('answers 400 with field errors and starts nothing', async () => {
    const res = await start({ policyId: '', policyVersion: 0, inputs: { sbomSet: [] }, priority: 'urgent', extra: 1 });
    expect(res.statusCode).toBe(400);
    const paths = res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'body.policyId',
        'body.policyVersion',
        'body.inputs.sbomSet',
        'body.priority',
        'body.extra',
      ]),
    );
    const list = await h.app.inject({
      method: 'GET',
      url: `${BASE}?policyId=${encodeURIComponent('')}`,
      headers: auth(),
    });
    expect(list.statusCode).toBe(400);
  });

  it('requires the policy:simulate scope (403) and the token’s tenant (403), and a token (401)', async () => {
    const noScope = await h.signer.token({ tenant: 'acme', scopes: [Scope.SelfCheck] });
    expect((await start(body, auth(noScope))).statusCode).toBe(403);
    expect((await start(body, { 'x-stellaops-tenant': 'globex' })).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'POST', url: BASE, payload: body })).statusCode).toBe(401);
  });
});

describe('GET /simulations and /simulations/{id}', () => {
  it('lists newest first with filters and cursor pagination, per tenant', async () => {
    const policyId = uniqueName('pol');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Unknown policy: the engine answers 404, so these runs end failed — still listed.
      ids.push((await start({ ...body, policyId })).json<PolicyRunStatus>().runId);
    }
    for (const id of ids) await waitFor(id, 'failed');
    const page1 = await h.app.inject({ method: 'GET', url: `${BASE}?policyId=${policyId}&limit=2`, headers: auth() });
    const p1 = page1.json<{ items: PolicyRunStatus[]; nextCursor?: string }>();
    expect(p1.items.map((i) => i.runId)).toEqual([ids[2], ids[1]]);
    expect(p1.nextCursor).toBeDefined();
    const page2 = await h.app.inject({
      method: 'GET',
      url: `${BASE}?policyId=${policyId}&limit=2&cursor=${p1.nextCursor}`,
      headers: auth(),
    });
    const p2 = page2.json<{ items: PolicyRunStatus[]; nextCursor?: string }>();
    expect(p2.items.map((i) => i.runId)).toEqual([ids[0]]);
    expect(p2.nextCursor).toBeUndefined();

    const failed = await h.app.inject({
      method: 'GET',
      url: `${BASE}?policyId=${policyId}&status=succeeded`,
      headers: auth(),
    });
    expect(failed.json<{ items: unknown[] }>().items).toHaveLength(0);
    const future = await h.app.inject({
      method: 'GET',
      url: `${BASE}?policyId=${policyId}&since=2999-01-01T00:00:00Z`,
      headers: auth(),
    });
    expect(future.json<{ items: unknown[] }>().items).toHaveLength(0);
    const asOther = await h.app.inject({
      method: 'GET',
      url: `${BASE}?policyId=${policyId}`,
      headers: auth(otherTenant),
    });
    expect(asOther.json<{ items: unknown[] }>().items).toHaveLength(0);
    const badCursor = await h.app.inject({ method: 'GET', url: `${BASE}?cursor=nonsense`, headers: auth() });
    expect(badCursor.statusCode).toBe(400);
  });

  it('answers 404 for an unknown run and for another tenant’s run', async () => {
    expect((await h.app.inject({ method: 'GET', url: `${BASE}/sim-unknown`, headers: auth() })).statusCode).toBe(404);
    const { runId } = (await start()).json<PolicyRunStatus>();
    await waitFor(runId, 'succeeded');
    expect(
      (await h.app.inject({ method: 'GET', url: `${BASE}/${runId}`, headers: auth(otherTenant) })).statusCode,
    ).toBe(404);
  });
});

describe('POST /simulations/{id}/cancel', () => {
  it('answers 409 for a finished run, 404 for an unknown one, 400 without a reason', async () => {
    const { runId } = (await start()).json<PolicyRunStatus>();
    await waitFor(runId, 'succeeded');
    const cancel = (id: string, payload: object) =>
      h.app.inject({ method: 'POST', url: `${BASE}/${id}/cancel`, headers: auth(), payload });
    expect((await cancel(runId, { reason: 'late' })).statusCode).toBe(409);
    expect((await cancel('sim-unknown', { reason: 'x' })).statusCode).toBe(404);
    const noReason = await cancel(runId, {});
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json<{ errors: { path: string }[] }>().errors[0]?.path).toBe('body.reason');
  });
});

describe('GET /simulations/{id}/stream', () => {
  it('streams a status event per change and exactly one completed event with the webhook payload', async () => {
    const { runId } = (await start()).json<PolicyRunStatus>();
    const res = await h.app.inject({ method: 'GET', url: `${BASE}/${runId}/stream`, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    const events = parseSse(res.body);
    expect(events.map((e) => `${e.event}:${(e.data as PolicyRunStatus).status ?? 'payload'}`)).toEqual([
      'status:queued',
      'status:running',
      'status:succeeded',
      'completed:payload',
    ]);
    const completed = events.at(-1)!.data as CompletionPayload;
    expect(completed.simulation.status).toBe('succeeded');
    expect(completed.tenantId).toBe('acme');
    expect(completed.result).toBe('succeeded');
    // The same document as the run's completion webhook: observed at the run's end, not at the time of this read.
    expect(completed.observedAt).toBe(completed.simulation.finishedAt);
    expect(completed).not.toHaveProperty('reason');

    // Resuming after the second event replays only what followed; after the last one there is nothing left.
    const resumed = await h.app.inject({
      method: 'GET',
      url: `${BASE}/${runId}/stream`,
      headers: { ...auth(), 'last-event-id': events[1]!.id! },
    });
    expect(parseSse(resumed.body).map((e) => e.event)).toEqual(['status', 'completed']);
    const finished = await h.app.inject({
      method: 'GET',
      url: `${BASE}/${runId}/stream`,
      headers: { ...auth(), 'last-event-id': events[3]!.id! },
    });
    expect(finished.statusCode).toBe(204);
  });

  it('delivers live changes to a stream served by another API replica (LISTEN/NOTIFY), with keep-alives', async () => {
    const replica = await buildApp({
      config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
      logger: createLogger({ level: 'silent' }),
      pool: h.db.pool,
      temporal: h.temporal,
      verifyToken: h.signer.verifier,
      taskQueuePrefix: h.taskQueuePrefix,
      sseKeepAliveMs: 100,
    });
    const address = await replica.listen({ host: '127.0.0.1', port: 0 });
    try {
      // A run whose changes are written while the stream is open, as a worker in another process would.
      const runId = uniqueName('sim-live');
      const queued = queuedStatus(
        { tenantId: 'acme', runId, policyId: 'p', policyVersion: 1, inputs: { sbomSet: ['s'] } },
        { runId, workflowId: `policy-simulation/acme/${runId}` },
        new Date().toISOString(),
      );
      await upsertPolicyRun(h.db.pool, queued, Revision.queued);
      const response = await fetch(`${address}${BASE}/${runId}/stream`, { headers: auth() });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      let text = '';
      const readUntil = async (marker: string) => {
        while (!text.includes(marker)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      };
      await readUntil('"status":"queued"');
      await readUntil(': keep-alive');

      const changedAt = Date.now();
      await upsertPolicyRun(h.db.pool, runningStatus(queued, new Date().toISOString(), 1), Revision.running);
      await upsertPolicyRun(
        h.db.pool,
        failedStatus(queued, 'engine down', new Date().toISOString(), 1),
        Revision.terminal,
      );
      await readUntil('event: completed');
      // Well under the 5 s safety poll: the notification carried it.
      expect(Date.now() - changedAt).toBeLessThan(2_000);
      const events = parseSse(text);
      expect(events.map((e) => e.event)).toEqual(['status', 'status', 'status', 'completed']);
      const completed = events.at(-1)!.data as CompletionPayload;
      expect(completed.simulation.status).toBe('failed');
      expect(completed.result).toBe('failed');
      expect(completed.reason).toBe('engine down');
    } finally {
      await replica.close();
    }
  });
});

describe('GET /simulations/metrics', () => {
  it('matches the committed sample’s schema and counts this tenant’s recent terminal runs', async () => {
    const sample: unknown = JSON.parse(
      await readFile(new URL('../../samples/api/scheduler/policy-simulation-metrics.json', import.meta.url), 'utf8'),
    );
    expect([...Value.Errors(SimulationMetrics, sample)]).toEqual([]);

    const res = await h.app.inject({ method: 'GET', url: `${BASE}/metrics`, headers: auth() });
    expect(res.statusCode).toBe(200);
    const metrics = res.json<{
      tenantId: string;
      latency: { samples: number; p50Seconds: number | null; p99Seconds: number | null };
      recentOutcomes: Record<string, number>;
    }>();
    expect([...Value.Errors(SimulationMetrics, metrics)]).toEqual([]);
    expect(metrics.tenantId).toBe('acme');
    expect(metrics.latency.samples).toBeGreaterThan(0);
    expect(metrics.latency.p99Seconds!).toBeGreaterThanOrEqual(metrics.latency.p50Seconds!);
    const other = await h.app.inject({
      method: 'GET',
      url: `${BASE}/metrics`,
      headers: auth(await h.signer.token({ tenant: 'empty', scopes: [Scope.PolicySimulate] })),
    });
    expect(other.json()).toMatchObject({ queueDepth: { total: 0 }, latency: { samples: 0, p50Seconds: null } });
  });
});
