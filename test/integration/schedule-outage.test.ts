/**
 * Schedules while Postgres is down: every change answers 503 and leaves Temporal untouched, so a retry after the
 * outage simply succeeds, and every change that exists has exactly one audit record. Real servers, really stopped.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { temporalScheduleId } from '../../api/temporal/schedules.js';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { listAudit } from '../../db/queries/audit.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../stack/postgres.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';
import { freePort } from '../support/ports.js';
import { createDevServerEnv } from '../support/temporal.js';

const BASE = '/api/v1/scheduler/schedules';
const TENANT = 'acme';
const simulation = { policyId: 'baseline-security', policyVersion: 3, inputs: { sbomSet: ['sbom-payments-api'] } };

let dir: string;
let pgPort: number;
let postgres: EmbeddedPostgresHandle;
let temporalEnv: TestWorkflowEnvironment;
let pool: Pool;
let temporal: TemporalFacade;
let app: FastifyInstance;
let token: string;

const startPostgres = () => startEmbeddedPostgres({ databaseDir: join(dir, 'pg'), port: pgPort });
const call = (method: 'POST' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

/** The schedule as Temporal has it, or undefined when it does not exist. */
async function inTemporal(scheduleId: string) {
  try {
    return await temporal.client.schedule.getHandle(temporalScheduleId(TENANT, scheduleId)).describe();
  } catch {
    return undefined;
  }
}

/** Audit event types recorded for `scheduleId`, oldest first. */
async function auditOf(scheduleId: string): Promise<string[]> {
  const records = await listAudit(pool, TENANT, { eventTypePrefix: 'scheduler.schedule.' });
  return records
    .filter((r) => r.subject === scheduleId)
    .map((r) => r.eventType)
    .reverse();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-schedule-outage-'));
  await chmod(dir, 0o755);
  const temporalPort = await freePort();
  pgPort = await freePort();
  const signer = await createTestSigner();
  [postgres, temporalEnv] = await Promise.all([
    startPostgres(),
    createDevServerEnv({ port: temporalPort, dbFilename: join(dir, 'temporal.sqlite') }),
  ]);
  pool = createPool({ connectionString: postgres.url, applicationName: 'schedule-outage-test' });
  await migrate(pool);
  temporal = createTemporalFacade({ address: `127.0.0.1:${temporalPort}`, namespace: 'default' });
  app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger: createLogger({ level: 'silent' }),
    pool,
    temporal,
    verifyToken: signer.verifier,
  });
  token = await signer.token({ tenant: TENANT, subject: 'alice', scopes: [Scope.PolicySchedule] });
});
afterAll(async () => {
  await app?.close();
  await pool?.end();
  await temporal?.close();
  await temporalEnv?.teardown();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('schedules during a Postgres outage', () => {
  it('answer 503 and change nothing; retried afterwards they succeed with one audit record each', async () => {
    const existing = 'nightly';
    expect(
      (await call('POST', BASE, { scheduleId: existing, spec: { cron: ['0 2 * * *'] }, simulation })).statusCode,
    ).toBe(201);
    const before = await inTemporal(existing);
    expect(before?.state.paused).toBe(false);
    const actionsBefore = before?.info.numActionsTaken;

    await postgres.stop();
    const refused = {
      create: await call('POST', BASE, { scheduleId: 'hourly', spec: { intervalSeconds: 3600 }, simulation }),
      pause: await call('POST', `${BASE}/${existing}/pause`, { note: 'freeze' }),
      trigger: await call('POST', `${BASE}/${existing}/trigger`),
      remove: await call('DELETE', `${BASE}/${existing}`),
    };
    for (const [name, answer] of Object.entries(refused)) {
      expect({ name, status: answer.statusCode, retryAfter: answer.headers['retry-after'] }).toEqual({
        name,
        status: 503,
        retryAfter: '5',
      });
      expect(answer.json()).toMatchObject({ error: 'ServiceUnavailable' });
    }
    // Nothing reached Temporal.
    expect(await inTemporal('hourly')).toBeUndefined();
    const during = await inTemporal(existing);
    expect(during?.state.paused).toBe(false);
    expect(during?.info.numActionsTaken).toBe(actionsBefore);

    postgres = await startPostgres();
    const deadline = Date.now() + 60_000;
    let created = await call('POST', BASE, { scheduleId: 'hourly', spec: { intervalSeconds: 3600 }, simulation });
    while (created.statusCode === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      created = await call('POST', BASE, { scheduleId: 'hourly', spec: { intervalSeconds: 3600 }, simulation });
    }
    expect(created.statusCode).toBe(201);
    expect((await call('POST', `${BASE}/${existing}/pause`, { note: 'freeze' })).statusCode).toBe(200);
    expect((await call('POST', `${BASE}/${existing}/trigger`)).statusCode).toBe(202);
    expect((await call('DELETE', `${BASE}/${existing}`)).statusCode).toBe(204);
    expect(await inTemporal(existing)).toBeUndefined();

    expect(await auditOf('hourly')).toEqual(['scheduler.schedule.created']);
    expect(await auditOf(existing)).toEqual([
      'scheduler.schedule.created',
      'scheduler.schedule.paused',
      'scheduler.schedule.triggered',
      'scheduler.schedule.deleted',
    ]);
  });

  it('records nothing for a change Temporal refuses', async () => {
    const missing = await call('POST', `${BASE}/no-such-schedule/pause`, { note: 'x' });
    expect(missing.statusCode).toBe(404);
    const duplicate = await call('POST', BASE, { scheduleId: 'hourly', spec: { intervalSeconds: 60 }, simulation });
    expect(duplicate.statusCode).toBe(409);
    expect(await auditOf('no-such-schedule')).toEqual([]);
    expect(await auditOf('hourly')).toEqual(['scheduler.schedule.created']);
  });
});
