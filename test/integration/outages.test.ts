/**
 * Stopping Postgres or Temporal under a running API turns /ready and dependent routes into 503s with Retry-After,
 * and they recover by themselves when the server is back. Real servers, really stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { eventually } from '../support/http-sinks.js';
import { startOutageStack, type OutageStack } from '../support/outage-stack.js';

let stack: OutageStack;

beforeAll(async () => {
  stack = await startOutageStack('outage');
});
afterAll(async () => {
  await stack?.close();
});

const ready = () => stack.app.inject({ method: 'GET', url: '/ready' });

describe('dependency outages', () => {
  it('Postgres down → /ready 503 naming it; back up → 200 without a restart of the API', async () => {
    expect((await ready()).statusCode).toBe(200);
    await stack.postgres.stop();
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBe('5');
    expect(down.json()).toMatchObject({
      status: 'unavailable',
      checks: { postgres: { status: 'down' }, temporal: { status: 'up' } },
    });

    await stack.startPostgres();
    await eventually(async () => ((await ready()).statusCode === 200 ? true : undefined), 60_000);
  });

  it('Temporal down → /ready and Temporal-backed routes 503 with Retry-After; back up → they recover', async () => {
    const token = await stack.signer.token({ tenant: 'acme', scopes: [Scope.SelfCheck] });
    const start = () =>
      stack.app.inject({
        method: 'POST',
        url: '/api/v1/self-checks',
        headers: { authorization: `Bearer ${token}` },
        payload: {},
      });
    expect((await start()).statusCode).toBe(202);

    await stack.stopTemporal();
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ checks: { temporal: { status: 'down' }, postgres: { status: 'up' } } });
    const refused = await start();
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    const refusedBody = refused.json<{ error: string; message: string }>();
    expect(refusedBody.error).toBe('ServiceUnavailable');
    expect(refusedBody.message).toContain('Temporal');

    await stack.startTemporal();
    await eventually(async () => ((await ready()).statusCode === 200 ? true : undefined), 60_000);
    await eventually(async () => ((await start()).statusCode === 202 ? true : undefined), 60_000);
  });
});
