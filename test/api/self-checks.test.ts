/** Self-check routes: auth, validation, idempotency, tenant isolation — against real Temporal and Postgres. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { uniqueName } from '../support/temporal.js';

let h: ApiHarness;
let tokenA: string;
let tokenB: string;
beforeAll(async () => {
  h = await startApiHarness();
  tokenA = await h.signer.token({ tenant: 'tenant-a', scopes: [Scope.SelfCheck] });
  tokenB = await h.signer.token({ tenant: 'tenant-b', scopes: [Scope.SelfCheck] });
});
afterAll(async () => {
  await h?.close();
});

const post = (token: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  h.app.inject({
    method: 'POST',
    url: '/api/v1/self-checks',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    payload: body as object,
  });

async function waitForStatus(token: string, checkId: string, status: string) {
  for (let i = 0; i < 100; i++) {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/self-checks/${checkId}`,
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.json<{ status: string }>().status === status) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`self-check ${checkId} never reached ${status}`);
}

describe('POST /api/v1/self-checks', () => {
  it('starts a run for the token’s tenant (202) and its result becomes readable', async () => {
    const res = await post(tokenA, { activityCount: 3 });
    expect(res.statusCode).toBe(202);
    const body = res.json<{ checkId: string; tenantId: string; workflowId: string }>();
    expect(body.tenantId).toBe('tenant-a');
    expect(body.workflowId).toBe(`self-check/tenant-a/${body.checkId}`);
    const done = await waitForStatus(tokenA, body.checkId, 'COMPLETED');
    expect(done.json()).toMatchObject({
      result: { activitiesCompleted: 3, activityTaskQueues: [`${h.taskQueuePrefix}policy-simulation`] },
    });
  });

  it('returns the same run for a retried Idempotency-Key (200), without starting another', async () => {
    const key = uniqueName('key');
    const first = await post(tokenA, { activityCount: 1 }, { 'idempotency-key': key });
    const second = await post(tokenA, { activityCount: 1 }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(200);
    expect(second.json<{ runId: string }>().runId).toBe(first.json<{ runId: string }>().runId);
  });

  it('answers 401 without a token and with a token from an unknown key', async () => {
    const missing = await post(undefined, {});
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    const foreign = await post(await h.signer.foreignToken({ tenant: 'tenant-a', scopes: [Scope.SelfCheck] }), {});
    expect(foreign.statusCode).toBe(401);
  });

  it('answers 403 for a missing scope and for a tenant header that is not the token’s', async () => {
    const noScope = await post(await h.signer.token({ tenant: 'tenant-a', scopes: ['other:scope'] }), {});
    expect(noScope.statusCode).toBe(403);
    expect(noScope.json()).toMatchObject({ error: 'Forbidden' });
    const wrongTenant = await post(tokenA, {}, { 'x-stellaops-tenant': 'tenant-b' });
    expect(wrongTenant.statusCode).toBe(403);
    const rightTenant = await post(tokenA, {}, { 'x-stellaops-tenant': 'tenant-a' });
    expect(rightTenant.statusCode).toBe(202);
  });

  it('answers 400 with field errors for bad input, and starts nothing', async () => {
    const key = uniqueName('bad');
    const res = await post(tokenA, { activityCount: 1000, taskQueue: 'nope', extra: true }, { 'idempotency-key': key });
    expect(res.statusCode).toBe(400);
    const body = res.json<{ error: string; errors: { path: string }[] }>();
    expect(body.error).toBe('ValidationFailed');
    const paths = body.errors.map((e) => e.path);
    expect(paths).toContain('body.activityCount');
    expect(paths).toContain('body.taskQueue');
    expect(paths).toContain('body.extra');
    const badKey = await post(tokenA, {}, { 'idempotency-key': 'has spaces!' });
    expect(badKey.statusCode).toBe(400);
    expect(badKey.json<{ errors: { path: string }[] }>().errors[0]?.path).toBe('headers.idempotency-key');
    const get = await h.app.inject({
      method: 'GET',
      url: `/api/v1/self-checks/${key}`,
      headers: { authorization: `Bearer ${tokenA}` },
    });
    expect(get.statusCode).toBe(404);
  });
});

describe('GET /api/v1/self-checks/{checkId}', () => {
  it('answers 404 for an unknown id', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/api/v1/self-checks/does-not-exist',
      headers: { authorization: `Bearer ${tokenA}` },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'NotFound' });
  });

  it('never shows one tenant another tenant’s run', async () => {
    const key = uniqueName('private');
    expect((await post(tokenA, { activityCount: 1 }, { 'idempotency-key': key })).statusCode).toBe(202);
    const asB = await h.app.inject({
      method: 'GET',
      url: `/api/v1/self-checks/${key}`,
      headers: { authorization: `Bearer ${tokenB}` },
    });
    expect(asB.statusCode).toBe(404);
    const asA = await h.app.inject({
      method: 'GET',
      url: `/api/v1/self-checks/${key}`,
      headers: { authorization: `Bearer ${tokenA}` },
    });
    expect(asA.statusCode).toBe(200);
  });
});
