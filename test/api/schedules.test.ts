/** Schedule routes against a real dev server: Temporal Schedules per tenant, with an audit trail. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import type { PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { eventually } from '../support/http-sinks.js';
import { uniqueName } from '../support/temporal.js';

const BASE = '/api/v1/scheduler/schedules';
let h: ApiHarness;
let token: string;
const simulation = { policyId: 'baseline-security', policyVersion: 4, inputs: { sbomSet: ['sbom-edge-gateway'] } };

beforeAll(async () => {
  h = await startApiHarness();
  token = await h.signer.token({
    tenant: 'acme',
    scopes: [Scope.PolicySchedule, Scope.PolicySimulate],
    subject: 'alice',
  });
});
afterAll(async () => {
  await h?.close();
});

const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, t: string = token) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${t}` }, ...(payload ? { payload } : {}) });

describe('schedules', () => {
  it('creates, lists, pauses, unpauses, triggers and deletes a schedule, auditing who did what', async () => {
    const scheduleId = uniqueName('nightly');
    const created = await call('POST', BASE, {
      scheduleId,
      description: 'nightly drift check',
      spec: { cron: ['0 2 * * *'] },
      simulation,
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      scheduleId,
      tenantId: 'acme',
      paused: false,
      createdBy: 'alice',
      spec: { cron: ['0 2 * * *'] },
    });
    expect(created.json<{ nextRunTimes: string[] }>().nextRunTimes.length).toBeGreaterThan(0);

    expect((await call('POST', BASE, { scheduleId, spec: { intervalSeconds: 3600 }, simulation })).statusCode).toBe(
      409,
    );
    const list = await call('GET', BASE);
    expect(list.json<{ items: { scheduleId: string }[] }>().items.map((i) => i.scheduleId)).toContain(scheduleId);

    const paused = await call('POST', `${BASE}/${scheduleId}/pause`, { note: 'freeze week' });
    expect(paused.json()).toMatchObject({ paused: true, note: 'freeze week' });
    expect((await call('POST', `${BASE}/${scheduleId}/unpause`)).json()).toMatchObject({ paused: false });

    // Trigger starts a real simulation now; it shows up in the simulations list of the tenant.
    expect((await call('POST', `${BASE}/${scheduleId}/trigger`)).statusCode).toBe(202);
    const run = await eventually(async () => {
      const res = await call(
        'GET',
        '/api/v1/scheduler/policies/simulations?policyId=baseline-security&status=succeeded&limit=200',
      );
      return res.json<{ items: PolicyRunStatus[] }>().items.find((i) => i.metadata.scheduleId === scheduleId);
    });
    expect(run.workflowId).toMatch(new RegExp(`^policy-simulation/acme/sched-${scheduleId}-`));
    expect(run.policyVersion).toBe(4);

    expect((await call('DELETE', `${BASE}/${scheduleId}`)).statusCode).toBe(204);
    expect((await call('GET', `${BASE}/${scheduleId}`)).statusCode).toBe(404);

    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'scheduler.schedule.' });
    expect(
      audit
        .filter((a) => a.subject === scheduleId)
        .map((a) => `${a.eventType}:${a.actor}`)
        .reverse(),
    ).toEqual([
      'scheduler.schedule.created:alice',
      'scheduler.schedule.paused:alice',
      'scheduler.schedule.unpaused:alice',
      'scheduler.schedule.triggered:alice',
      'scheduler.schedule.deleted:alice',
    ]);
  });

  it('keeps tenants apart and validates input', async () => {
    const scheduleId = uniqueName('hourly');
    expect(
      (await call('POST', BASE, { scheduleId, spec: { intervalSeconds: 3600 }, simulation, paused: true })).statusCode,
    ).toBe(201);
    const other = await h.signer.token({ tenant: 'globex', scopes: [Scope.PolicySchedule] });
    expect((await call('GET', `${BASE}/${scheduleId}`, undefined, other)).statusCode).toBe(404);
    expect((await call('POST', `${BASE}/${scheduleId}/trigger`, undefined, other)).statusCode).toBe(404);
    expect((await call('GET', BASE, undefined, other)).json<{ items: unknown[] }>().items).toEqual([]);

    expect((await call('POST', BASE, { spec: {}, simulation })).statusCode).toBe(400);
    expect((await call('POST', BASE, { spec: { intervalSeconds: 5 }, simulation })).statusCode).toBe(400);
    const badCron = await call('POST', BASE, { spec: { cron: ['not a cron at all'] }, simulation });
    expect(badCron.statusCode).toBe(400);
    const noScope = await h.signer.token({ tenant: 'acme', scopes: [Scope.PolicySimulate] });
    expect((await call('GET', BASE, undefined, noScope)).statusCode).toBe(403);
    await call('DELETE', `${BASE}/${scheduleId}`);
  });
});
