/**
 * Schedules while Postgres is down: every change answers 503 and leaves Temporal untouched, so a retry after the
 * outage simply succeeds, and every change that exists has exactly one audit record. Real servers, really stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalScheduleId } from '../../api/temporal/schedules.js';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import { startOutageStack, type OutageStack } from '../support/outage-stack.js';

const BASE = '/api/v1/scheduler/schedules';
const TENANT = 'acme';
const simulation = { policyId: 'baseline-security', policyVersion: 3, inputs: { sbomSet: ['sbom-payments-api'] } };

let stack: OutageStack;
let token: string;

const call = (method: 'POST' | 'DELETE', url: string, payload?: object) =>
  stack.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

/** The schedule as Temporal has it, or undefined when it does not exist. */
async function inTemporal(scheduleId: string) {
  try {
    return await stack.temporal.client.schedule.getHandle(temporalScheduleId(TENANT, scheduleId)).describe();
  } catch {
    return undefined;
  }
}

/** Audit event types recorded for `scheduleId`, oldest first. */
async function auditOf(scheduleId: string): Promise<string[]> {
  const records = await listAudit(stack.pool, TENANT, { eventTypePrefix: 'scheduler.schedule.' });
  return records
    .filter((r) => r.subject === scheduleId)
    .map((r) => r.eventType)
    .reverse();
}

beforeAll(async () => {
  stack = await startOutageStack('schedule-outage');
  token = await stack.signer.token({ tenant: TENANT, subject: 'alice', scopes: [Scope.PolicySchedule] });
});
afterAll(async () => {
  await stack?.close();
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

    await stack.postgres.stop();
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

    await stack.startPostgres();
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
