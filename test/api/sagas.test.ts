/**
 * The saga API: instances listed and read from the projection (filters, cursor pagination, timeline, compensations,
 * tenant isolation) and cancel (Update → compensation → audit), against a real dev server, real Postgres and the real
 * saga workflows on a saga worker with the real bookkeeping activities. The effects queue is served by this file's
 * providers: an impact index that resolves an advisory's `packages` as the impacted images and a Gateway that accepts
 * every command.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSagaActivities } from '../../activities/sagas/index.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import type {
  AggregateEvent,
  EffectCommand,
  EffectResult,
  GatewayCommand,
  GatewayResult,
  SagaOutboundActivities,
} from '../../workflows/sagas/definitions.js';
import { createWorkerHost, type WorkerHost } from '../../workers/host.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';
import { eventually } from '../support/http-sinks.js';
import { workflowBundle } from '../support/temporal.js';

const RESCAN = 'advisory-impact-rescan';
let h: ApiHarness;
let workers: WorkerHost;
let running: Promise<void>;
/** Commands the Gateway of these tests received, in order. */
const commands: GatewayCommand[] = [];

const providers: SagaOutboundActivities = {
  runEffect: async (command: EffectCommand): Promise<EffectResult> => ({
    tenantId: command.tenantId,
    commandId: command.commandId,
    effectName: command.effectName,
    resultType: 'succeeded',
    payload: { images: ((command.payload['packages'] as string[] | undefined) ?? []).map((imageId) => ({ imageId })) },
    timestamp: new Date().toISOString(),
  }),
  submitGatewayCommand: async ({ command }: { command: GatewayCommand }): Promise<GatewayResult> => {
    commands.push(command);
    return { commandId: command.commandId, outcome: 'accepted', httpStatus: 202, body: {} };
  },
};

beforeAll(async () => {
  h = await startApiHarness({ workers: false });
  const logger = createLogger({ level: 'warn', name: 'saga-worker' });
  workers = await createWorkerHost({
    connection: h.env.nativeConnection,
    namespace: h.env.namespace ?? 'default',
    queues: ['saga', 'effects'],
    activities: { ...createSagaActivities({ pool: h.db.pool, logger }), ...providers },
    workflowBundle: await workflowBundle(),
    logger,
    taskQueuePrefix: h.taskQueuePrefix,
  });
  running = workers.run();
});
afterAll(async () => {
  workers?.shutdown();
  await running;
  await h?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const token = (tenant: string, scope: string, subject = 'ops-alice') =>
  h.signer.token({ tenant, scopes: [scope], subject });

function advisoryPublished(tenantId: string, advisoryId: string, packages: string[]): AggregateEvent {
  return {
    tenantId,
    eventId: fresh('evt'),
    aggregateType: 'Advisory',
    aggregateId: advisoryId,
    eventType: 'Advisory.Published',
    sequence: 1,
    occurredAt: new Date().toISOString(),
    payload: { packages },
  };
}

async function call(method: 'GET' | 'POST', url: string, bearer: string | undefined, payload?: unknown) {
  return h.app.inject({
    method,
    url,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
}

interface SagaInstanceDoc {
  sagaName: string;
  correlationId: string;
  workflowId: string;
  status: string;
  state: { phase?: string; images?: { imageId: string; rescan: string }[] };
  lastEvent: { eventId: string } | null;
  appliedEvents: number;
  startedAt: string;
  finishedAt: string | null;
  reason: string | null;
}
interface SagaDetail {
  instance: SagaInstanceDoc;
  timeline: { eventId: string; outcome: string; via: string }[];
  compensations: { step: string; status: string; error?: string }[];
}

/** Starts rescans of `packages` (at least one) for a new advisory of `tenant`; waits until all are requested. */
async function startWaiting(
  tenant: string,
  packages: string[],
): Promise<{ advisoryId: string; event: AggregateEvent }> {
  const advisoryId = fresh('adv');
  const event = advisoryPublished(tenant, advisoryId, packages);
  const writer = await token(tenant, Scope.RunnerEventsWrite, 'aggregates');
  expect((await call('POST', '/api/v1/events', writer, event)).statusCode).toBe(202);
  const reader = await token(tenant, Scope.RunnerSagasRead);
  await eventually(async () => {
    const res = await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, reader);
    if (res.statusCode !== 200) return undefined;
    const detail = res.json<SagaDetail>();
    const images = detail.instance.state?.images ?? [];
    // Projected (the start event is in the timeline) with every rescan requested: the saga waits for the scans.
    const projected = detail.timeline.some((t) => t.outcome === 'applied');
    return projected && images.length === packages.length && images.every((i) => i.rescan === 'requested')
      ? true
      : undefined;
  });
  return { advisoryId, event };
}

describe('GET /api/v1/sagas', () => {
  it('lists the tenant’s instances newest first, filtered by saga, status and correlation id, page by page', async () => {
    const tenant = fresh('pager');
    const started: string[] = [];
    for (let i = 0; i < 3; i++) started.push((await startWaiting(tenant, ['img-a'])).advisoryId);
    const reader = await token(tenant, Scope.RunnerSagasRead);
    const list = async (query: string) => {
      const res = await call('GET', `/api/v1/sagas?${query}`, reader);
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ items: SagaInstanceDoc[]; nextCursor?: string }>();
    };

    const page1 = await list('limit=2');
    expect(page1.items.map((i) => i.correlationId)).toEqual([started[2], started[1]]);
    const page2 = await list(`limit=2&cursor=${page1.nextCursor}`);
    expect(page2.items.map((i) => i.correlationId)).toEqual([started[0]]);
    expect(page2.nextCursor).toBeUndefined();
    expect(page1.items[0]).toMatchObject({
      sagaName: RESCAN,
      workflowId: `saga/${tenant}/${RESCAN}/${started[2]}`,
      status: 'running',
      state: { phase: 'rescanning', images: [{ imageId: 'img-a', rescan: 'requested' }] },
      appliedEvents: 1,
      finishedAt: null,
    });

    expect((await list(`correlationId=${started[1]}`)).items.map((i) => i.correlationId)).toEqual([started[1]]);
    expect((await list(`saga=${RESCAN}&status=running`)).items).toHaveLength(3);
    expect((await list('status=completed')).items).toEqual([]);
    expect((await list('saga=mirror-bundle-export')).items).toEqual([]);

    for (const query of ['limit=0', 'limit=201', 'status=done', 'cursor=bm9wZQ', 'other=1']) {
      expect((await call('GET', `/api/v1/sagas?${query}`, reader)).statusCode, query).toBe(400);
    }
    const otherTenant = await token(fresh('other'), Scope.RunnerSagasRead);
    expect((await call('GET', '/api/v1/sagas', otherTenant)).json()).toEqual({ items: [] });
  });
});

describe('GET /api/v1/sagas/{saga}/{correlationId}', () => {
  it('answers state, status, timeline and compensations; 404 for unknown ones and another tenant’s', async () => {
    const { advisoryId, event } = await startWaiting('acme', ['img-1']);
    const reader = await token('acme', Scope.RunnerSagasRead);
    const res = await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, reader);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      instance: { status: 'running', lastEvent: { eventId: event.eventId }, reason: null },
      timeline: [{ eventId: event.eventId, outcome: 'applied', via: 'ingress' }],
      compensations: [],
    });

    expect((await call('GET', `/api/v1/sagas/${RESCAN}/adv-unknown`, reader)).statusCode).toBe(404);
    expect((await call('GET', `/api/v1/sagas/no-such-saga/${advisoryId}`, reader)).statusCode).toBe(404);
    const globex = await token('globex', Scope.RunnerSagasRead);
    const foreign = await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, globex);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ error: 'NotFound' });
    expect((await call('GET', `/api/v1/sagas/${RESCAN}/bad%20id`, reader)).statusCode).toBe(400);
    expect((await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, undefined)).statusCode).toBe(401);
    const writer = await token('acme', Scope.RunnerEventsWrite);
    expect((await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, writer)).statusCode).toBe(403);
  });
});

describe('POST /api/v1/sagas/{saga}/{correlationId}/cancel', () => {
  it('cancels through the Update: completed steps are compensated, recorded and audited; a repeat answers 409', async () => {
    const { advisoryId } = await startWaiting('acme', ['img-1', 'img-2']);
    const url = `/api/v1/sagas/${RESCAN}/${advisoryId}/cancel`;
    const operator = await token('acme', Scope.RunnerSagasOperate, 'ops-bob');

    const res = await call('POST', url, operator, { reason: 'advisory withdrawn' });
    expect(res.statusCode, res.body).toBe(200);
    const view = res.json<SagaInstanceDoc>();
    expect(['compensating', 'compensated']).toContain(view.status);
    expect(view.reason).toBe('cancelled by ops-bob: advisory withdrawn');

    const reader = await token('acme', Scope.RunnerSagasRead);
    const done = await eventually(async () => {
      const detail = (await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, reader)).json<SagaDetail>();
      return detail.instance.status === 'compensated' ? detail : undefined;
    });
    expect(done.instance.finishedAt).not.toBeNull();
    expect(done.compensations.map((c) => [c.step, c.status])).toEqual([
      ['rescan:img-2', 'compensated'],
      ['rescan:img-1', 'compensated'],
    ]);
    // Undone in reverse order, by the Gateway's CancelRescan.
    const mine = commands.filter((c) => c.correlationId === advisoryId).map((c) => `${c.commandType}:${c.aggregateId}`);
    expect(mine).toEqual(['RequestRescan:img-1', 'RequestRescan:img-2', 'CancelRescan:img-2', 'CancelRescan:img-1']);
    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'saga.cancel.requested' });
    expect(audit.find((a) => a.correlationId === advisoryId)).toMatchObject({
      actor: 'ops-bob',
      subject: `${RESCAN}/${advisoryId}`,
      details: { reason: 'advisory withdrawn' },
    });

    const again = await call('POST', url, operator, { reason: 'again' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'Conflict' });
  });

  it('answers 404 for unknown and foreign instances, 400 without a reason, 403 without the operate scope', async () => {
    const { advisoryId } = await startWaiting('acme', ['img-1']);
    const url = `/api/v1/sagas/${RESCAN}/${advisoryId}/cancel`;
    const operator = await token('acme', Scope.RunnerSagasOperate);
    expect(
      (await call('POST', `/api/v1/sagas/${RESCAN}/adv-unknown/cancel`, operator, { reason: 'x' })).statusCode,
    ).toBe(404);
    expect((await call('POST', `/api/v1/sagas/nope/${advisoryId}/cancel`, operator, { reason: 'x' })).statusCode).toBe(
      404,
    );
    const globex = await token('globex', Scope.RunnerSagasOperate);
    expect((await call('POST', url, globex, { reason: 'x' })).statusCode).toBe(404);
    expect((await call('POST', url, operator, {})).statusCode).toBe(400);
    expect((await call('POST', url, operator, { reason: '' })).statusCode).toBe(400);
    const reader = await token('acme', Scope.RunnerSagasRead);
    expect((await call('POST', url, reader, { reason: 'x' })).statusCode).toBe(403);
    expect((await call('POST', url, undefined, { reason: 'x' })).statusCode).toBe(401);
    // Still running: none of the refused calls reached the saga.
    const detail = (await call('GET', `/api/v1/sagas/${RESCAN}/${advisoryId}`, reader)).json<SagaDetail>();
    expect(detail.instance.status).toBe('running');
  });
});

describe('OpenAPI', () => {
  it('documents every saga route under the sagas tag with its responses', async () => {
    const doc = (await call('GET', '/openapi.json', undefined)).json<{
      paths: Record<string, Record<string, { tags: string[]; responses: Record<string, unknown> }>>;
    }>();
    const routes = [
      ['/api/v1/events', 'post', ['200', '202', '400', '401', '403', '503']],
      ['/api/v1/sagas', 'get', ['200', '400', '401', '403', '503']],
      ['/api/v1/sagas/{saga}/{correlationId}', 'get', ['200', '404']],
      ['/api/v1/sagas/{saga}/{correlationId}/cancel', 'post', ['200', '404', '409']],
      ['/api/v1/events/unmatched', 'get', ['200']],
      ['/api/v1/events/unmatched/{id}/redeliver', 'post', ['200', '404', '409']],
    ] as const;
    for (const [path, method, statuses] of routes) {
      const operation = doc.paths[path]?.[method];
      expect(operation?.tags, path).toEqual(['sagas']);
      expect(Object.keys(operation?.responses ?? {}), path).toEqual(expect.arrayContaining([...statuses]));
    }
  });
});
