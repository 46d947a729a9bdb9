/**
 * Saga reset (`POST /api/v1/sagas/{saga}/{correlationId}/reset`) against a real dev server, real Postgres and the
 * real saga workflows on workers with the real activities: the effects queue calls the reference services (impact
 * index, Gateway), whose counters show what reached them and what they applied.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import type { AggregateEvent } from '../../workflows/sagas/definitions.js';
import { injectAs, startApiHarness, type ApiHarness, type InjectMethod } from '../support/api.js';
import { eventually } from '../support/http-sinks.js';
import { RESCAN_SAGA, type RescanDetail } from '../support/sagas.js';

/** Log4Shell impacts one sample image, whose SBOM has 15 findings. */
const LOG4SHELL = 'CVE-2021-44228';
const PAYMENTS_API = { imageId: 'payments-api:3.8.2', findings: 15 };
let h: ApiHarness;
let operator: string;

beforeAll(async () => {
  h = await startApiHarness({ sagas: {} });
  operator = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerSagasOperate], subject: 'ops-alice' });
});
afterAll(async () => {
  await h?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** `bearer` null sends no token. */
const call = (method: InjectMethod, url: string, payload?: unknown, bearer: string | null = operator) =>
  injectAs(h.app, method, url, bearer, payload);

interface ResetAnswer {
  workflowId: string;
  runId: string;
  baseRunId: string;
  eventId: number;
  to: string;
  repeated: boolean;
}

/** The instance once its projection shows it completed after `since` and its current run `runId` has completed. */
const completed = (correlationId: string, since = '', runId?: string) =>
  eventually(async () => {
    const res = await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${correlationId}`);
    const detail = res.statusCode === 200 ? res.json<RescanDetail>() : undefined;
    if (detail?.instance.status !== 'completed' || detail.instance.startedAt <= since) return undefined;
    const execution = await h.env.client.workflow.getHandle(`saga/acme/${RESCAN_SAGA}/${correlationId}`).describe();
    if (execution.status.name !== 'COMPLETED' || (runId && execution.runId !== runId)) return undefined;
    return { detail, runId: execution.runId };
  }, 60_000);

/** The reference services' counts of this instance's calls (keyed by command id, which carries the correlation id). */
function countsOf(correlationId: string) {
  const prefix = `acme:${RESCAN_SAGA}:${correlationId}:`;
  const mine = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(prefix)));
  const { counters } = h.sagas!.reference;
  return {
    commandsReceived: mine(counters.commandsReceived()),
    commandsApplied: mine(counters.commandsApplied()),
    providerCalls: mine(counters.providerCalls()),
    providerApplied: mine(counters.providerApplied()),
  };
}

async function startRescan(): Promise<{ correlationId: string; workflowId: string; event: AggregateEvent }> {
  const correlationId = fresh('log4shell');
  const event: AggregateEvent = {
    tenantId: 'acme',
    eventId: fresh('evt'),
    aggregateType: 'Advisory',
    aggregateId: LOG4SHELL,
    eventType: 'Advisory.Published',
    sequence: 1,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: {},
  };
  const writer = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerEventsWrite], subject: 'aggregates' });
  expect((await call('POST', '/api/v1/events', event, writer)).statusCode).toBe(202);
  return { correlationId, workflowId: `saga/acme/${RESCAN_SAGA}/${correlationId}`, event };
}

describe('POST /api/v1/sagas/{saga}/{correlationId}/reset', () => {
  it('re-runs a completed saga from its first workflow task: calls repeated with the same keys, applied once', async () => {
    const { correlationId, workflowId } = await startRescan();
    const first = await completed(correlationId);
    const before = countsOf(correlationId);
    const once = (counts: Record<string, number>) => Object.values(counts).every((n) => n === 1);
    // One impact resolution and one rescan command, each received and applied once.
    expect(Object.keys(before.providerCalls)).toHaveLength(1);
    expect(Object.keys(before.commandsReceived)).toHaveLength(1);
    expect(once(before.providerCalls) && once(before.commandsReceived)).toBe(true);
    const emittedBefore = h.sagas!.emitted.filter((e) => e.correlationId === correlationId).length;
    const url = `/api/v1/sagas/${RESCAN_SAGA}/${correlationId}/reset`;

    const res = await call('POST', url, {
      confirm: workflowId,
      reason: 'provider fix deployed',
      to: 'first-workflow-task',
    });
    expect(res.statusCode, res.body).toBe(200);
    const reset = res.json<ResetAnswer>();
    expect(reset).toMatchObject({ workflowId, baseRunId: first.runId, to: 'first-workflow-task', repeated: false });
    expect(reset.runId).not.toBe(first.runId);

    // The new run ran the saga's code again from the top and completed; the projection shows it.
    const second = await completed(correlationId, first.detail.instance.startedAt, reset.runId);
    expect(second.detail.instance).toMatchObject({
      status: 'completed',
      state: { images: [{ imageId: PAYMENTS_API.imageId, rescan: 'completed', findings: PAYMENTS_API.findings }] },
      appliedEvents: first.detail.instance.appliedEvents,
    });
    // Every effect and command reached its receiver again with the same key, and was applied once.
    const after = countsOf(correlationId);
    expect(Object.keys(after.providerCalls)).toEqual(Object.keys(before.providerCalls));
    expect(Object.keys(after.commandsReceived)).toEqual(Object.keys(before.commandsReceived));
    expect(Object.values(after.providerCalls)).toEqual([2]);
    expect(Object.values(after.commandsReceived)).toEqual([2]);
    expect(after.providerApplied).toEqual(before.providerApplied);
    expect(after.commandsApplied).toEqual(before.commandsApplied);
    // So the Gateway caused no second scan.
    expect(h.sagas!.emitted.filter((e) => e.correlationId === correlationId)).toHaveLength(emittedBefore);

    // The same call again answers the run it started, and does not reset again.
    const again = await call('POST', url, {
      confirm: workflowId,
      reason: 'provider fix deployed',
      to: 'first-workflow-task',
    });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<ResetAnswer>()).toEqual({ ...reset, repeated: true });
    const execution = await h.env.client.workflow.getHandle(workflowId).describe();
    expect(execution.runId).toBe(reset.runId);
    expect(countsOf(correlationId)).toEqual(after);

    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'saga.reset' });
    expect(audit.filter((a) => a.correlationId === correlationId)).toMatchObject([
      {
        actor: 'ops-alice',
        subject: `${RESCAN_SAGA}/${correlationId}`,
        details: {
          reason: 'provider fix deployed',
          to: 'first-workflow-task',
          workflowId,
          baseRunId: first.runId,
          runId: reset.runId,
          eventId: reset.eventId,
        },
      },
    ]);
  });

  it('resets to the last workflow task: the run ends as it did, no call repeated', async () => {
    const { correlationId, workflowId } = await startRescan();
    const first = await completed(correlationId);
    const before = countsOf(correlationId);
    const res = await call('POST', `/api/v1/sagas/${RESCAN_SAGA}/${correlationId}/reset`, {
      confirm: workflowId,
      reason: 'rerun the end',
      to: 'last-workflow-task',
    });
    expect(res.statusCode, res.body).toBe(200);
    const reset = res.json<ResetAnswer>();
    const second = await completed(correlationId, '', reset.runId);
    expect(second.detail.instance.state).toEqual(first.detail.instance.state);
    expect(countsOf(correlationId)).toEqual(before);
  });

  it('refuses a wrong confirmation (400), unknown instances (404), bad bodies (400) and missing scopes, doing nothing', async () => {
    const { correlationId, workflowId } = await startRescan();
    const first = await completed(correlationId);
    const url = `/api/v1/sagas/${RESCAN_SAGA}/${correlationId}/reset`;
    const body = { confirm: workflowId, reason: 'x', to: 'first-workflow-task' };

    const wrong = await call('POST', url, { ...body, confirm: `saga/acme/${RESCAN_SAGA}/other` });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({
      errors: [{ path: 'body.confirm', message: expect.stringContaining(workflowId) as string }],
    });
    for (const invalid of [
      { ...body, to: 'start' },
      { ...body, reason: ' ' },
      { confirm: workflowId, to: 'first-workflow-task' },
      { ...body, extra: 1 },
    ]) {
      expect((await call('POST', url, invalid)).statusCode, JSON.stringify(invalid)).toBe(400);
    }
    const unknown = `saga/acme/${RESCAN_SAGA}/adv-unknown`;
    expect(
      (await call('POST', `/api/v1/sagas/${RESCAN_SAGA}/adv-unknown/reset`, { ...body, confirm: unknown })).statusCode,
    ).toBe(404);
    expect((await call('POST', `/api/v1/sagas/nope/${correlationId}/reset`, body)).statusCode).toBe(404);
    // Another tenant's token names another workflow id: its confirmation of this one is refused, and its own is unknown.
    const globex = await h.signer.token({ tenant: 'globex', scopes: [Scope.RunnerSagasOperate] });
    expect((await call('POST', url, body, globex)).statusCode).toBe(400);
    expect(
      (await call('POST', url, { ...body, confirm: `saga/globex/${RESCAN_SAGA}/${correlationId}` }, globex)).statusCode,
    ).toBe(404);
    const reader = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerSagasRead] });
    expect((await call('POST', url, body, reader)).statusCode).toBe(403);
    expect((await call('POST', url, body, null)).statusCode).toBe(401);

    const execution = await h.env.client.workflow.getHandle(workflowId).describe();
    expect(execution.runId).toBe(first.runId);
    expect(
      (await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'saga.reset' })).filter(
        (a) => a.correlationId === correlationId,
      ),
    ).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('documents the reset, quarantine and replay routes under the sagas tag with their responses', async () => {
    const doc = (await call('GET', '/openapi.json', undefined, null)).json<{
      paths: Record<string, Record<string, { tags: string[]; responses: Record<string, unknown> }>>;
    }>();
    const routes = [
      ['/api/v1/sagas/{saga}/{correlationId}/reset', 'post', ['200', '400', '404', '409', '503']],
      ['/api/v1/events/quarantined', 'get', ['200', '400', '401', '403']],
      ['/api/v1/events/quarantined/{id}', 'get', ['200', '404']],
      ['/api/v1/events/quarantined/{id}/redeliver', 'post', ['200', '404', '409', '422', '503']],
      ['/api/v1/events/quarantined/{id}/discard', 'post', ['200', '400', '404', '409']],
      ['/api/v1/events/replay', 'post', ['200', '400', '409', '503']],
    ] as const;
    for (const [path, method, statuses] of routes) {
      const operation = doc.paths[path]?.[method];
      expect(operation?.tags, path).toEqual(['sagas']);
      expect(Object.keys(operation?.responses ?? {}), path).toEqual(expect.arrayContaining([...statuses]));
    }
  });
});
