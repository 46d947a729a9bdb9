/** Operational routes against a real dev server, real workers and real Postgres. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiHarness, type ApiHarness } from '../support/api.js';

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('operational routes', () => {
  it('GET /health answers while the process is up', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok' });
  });

  it('GET /ready checks Postgres and Temporal', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ status: string; checks: Record<string, { status: string }> }>();
    expect(body.status).toBe('ready');
    expect(body.checks.postgres?.status).toBe('up');
    expect(body.checks.temporal?.status).toBe('up');
    expect(body.checks.selfCheck).toBeUndefined();
  });

  it('GET /ready?deep=true proves a workflow + activity round trip on every queue', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/ready?deep=true' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ checks: { selfCheck: Record<string, { status: string }> } }>();
    expect(Object.keys(body.checks.selfCheck).sort()).toEqual([
      'effects',
      'pack-approval',
      'policy-simulation',
      'saga',
    ]);
    for (const check of Object.values(body.checks.selfCheck)) expect(check.status).toBe('up');
  });

  it('GET /info names the version, namespace and task queues', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/info' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      version: string;
      temporal: { namespace: string };
      taskQueues: string[];
      searchAttributes: string[];
    }>();
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.temporal.namespace).toBe('default');
    expect(body.taskQueues).toHaveLength(4);
    expect(body.searchAttributes).toContain('TenantId');
  });

  it('GET /metrics exposes HTTP metrics labelled by route template and status', async () => {
    await h.app.inject({ method: 'GET', url: '/health' });
    await h.app.inject({ method: 'GET', url: '/api/v1/self-checks/abc' });
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/health",status_code="200"\} \d+/,
    );
    expect(res.body).toMatch(/route="\/api\/v1\/self-checks\/:checkId",status_code="401"/);
    expect(res.body).toContain('process_cpu_seconds_total');
  });

  it('publishes OpenAPI with a response schema on every route, and Swagger UI at /docs', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      openapi: string;
      paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    }>();
    expect(doc.openapi).toBe('3.1.0');
    for (const path of [
      '/health',
      '/ready',
      '/info',
      '/metrics',
      '/api/v1/self-checks',
      '/api/v1/self-checks/{checkId}',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(Object.keys(operation.responses ?? {}), `${method} ${path}`).not.toHaveLength(0);
      }
    }
    const ui = await h.app.inject({ method: 'GET', url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'NotFound' });
  });
});
