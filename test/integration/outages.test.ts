/**
 * Stopping Postgres or Temporal under a running API turns /ready and dependent routes into 503s with Retry-After,
 * and they recover by themselves when the server is back. Real servers, really stopped.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../stack/postgres.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from '../support/auth.js';
import { freePort } from '../support/ports.js';
import { createDevServerEnv } from '../support/temporal.js';

let dir: string;
let pgPort: number;
let temporalPort: number;
let postgres: EmbeddedPostgresHandle;
let temporalEnv: TestWorkflowEnvironment | undefined;
let pool: Pool;
let temporal: TemporalFacade;
let signer: TestSigner;
let app: FastifyInstance;

const startPostgres = () => startEmbeddedPostgres({ databaseDir: join(dir, 'pg'), port: pgPort });
const startTemporal = () => createDevServerEnv({ port: temporalPort, dbFilename: join(dir, 'temporal.sqlite') });

async function eventually(fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('condition not met in time');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-outage-'));
  await chmod(dir, 0o755);
  [pgPort, temporalPort] = await Promise.all([freePort(), freePort()]);
  [postgres, temporalEnv, signer] = await Promise.all([startPostgres(), startTemporal(), createTestSigner()]);
  pool = createPool({ connectionString: postgres.url, applicationName: 'outage-test' });
  await migrate(pool);
  temporal = createTemporalFacade({ address: `127.0.0.1:${temporalPort}`, namespace: 'default' });
  const config = loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE });
  app = await buildApp({
    config,
    logger: createLogger({ level: 'silent' }),
    pool,
    temporal,
    verifyToken: signer.verifier,
  });
});
afterAll(async () => {
  await app?.close();
  await pool?.end();
  await temporal?.close();
  await temporalEnv?.teardown();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ready = () => app.inject({ method: 'GET', url: '/ready' });

describe('dependency outages', () => {
  it('Postgres down → /ready 503 naming it; back up → 200 without a restart of the API', async () => {
    expect((await ready()).statusCode).toBe(200);
    await postgres.stop();
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBe('5');
    expect(down.json()).toMatchObject({
      status: 'unavailable',
      checks: { postgres: { status: 'down' }, temporal: { status: 'up' } },
    });

    postgres = await startPostgres();
    await eventually(async () => (await ready()).statusCode === 200);
  });

  it('Temporal down → /ready and Temporal-backed routes 503 with Retry-After; back up → they recover', async () => {
    const token = await signer.token({ tenant: 'acme', scopes: [Scope.SelfCheck] });
    const start = () =>
      app.inject({
        method: 'POST',
        url: '/api/v1/self-checks',
        headers: { authorization: `Bearer ${token}` },
        payload: {},
      });
    expect((await start()).statusCode).toBe(202);

    await temporalEnv!.teardown();
    temporalEnv = undefined;
    const down = await ready();
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ checks: { temporal: { status: 'down' }, postgres: { status: 'up' } } });
    const refused = await start();
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    const refusedBody = refused.json<{ error: string; message: string }>();
    expect(refusedBody.error).toBe('ServiceUnavailable');
    expect(refusedBody.message).toContain('Temporal');

    temporalEnv = await startTemporal();
    await eventually(async () => (await ready()).statusCode === 200);
    await eventually(async () => (await start()).statusCode === 202);
  });
});
