/**
 * The saga API: instances listed and read from the projection (filters, cursor pagination, timeline, compensations,
 * tenant isolation) and cancel (Update → compensation → audit), against a real dev server, real Postgres and the real
 * saga workflows on workers with the real activities of each queue: the effects queue calls the reference services
 * (impact index from the sample SBOMs, Gateway), whose events come back through the ingress.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import type { AggregateEvent } from '../../workflows/sagas/definitions.js';
import { injectAs, startApiHarness, type ApiHarness, type InjectMethod } from '../support/api.js';
import { eventually } from '../support/http-sinks.js';
import { RESCAN_SAGA, type RescanDetail, type RescanInstanceDoc } from '../support/sagas.js';

/** HTTP/2 rapid reset: the three sample images it impacts, in the index's order, each with the package carrying it. */
const RAPID_RESET = 'CVE-2023-44487';
const IMAGES = [
  { imageId: 'payments-api:3.8.2', purl: 'pkg:maven/io.netty/netty-codec-http2' },
  { imageId: 'auth-service:2.1.0', purl: 'pkg:golang/golang.org/x/net' },
  { imageId: 'edge-gateway:1.9.0', purl: 'pkg:deb/debian/nginx' },
] as const;
type Image = (typeof IMAGES)[number];
const [PAYMENTS_API, AUTH_SERVICE, EDGE_GATEWAY] = IMAGES;
let h: ApiHarness;

beforeAll(async () => {
  // No rescan ever completes: every instance here stays waiting for its scans, to be listed, read and cancelled.
  h = await startApiHarness({ sagas: { neverCompleteImages: IMAGES.map((i) => i.imageId) } });
});
afterAll(async () => {
  await h?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const token = (tenant: string, scope: string, subject = 'ops-alice') =>
  h.signer.token({ tenant, scopes: [scope], subject });

/** `Advisory.Published` of rapid reset for the instance `correlationId`, narrowed to the packages of `images`. */
function advisoryPublished(
  tenantId: string,
  correlationId: string,
  images: readonly Image[] | undefined,
): AggregateEvent {
  return {
    tenantId,
    eventId: fresh('evt'),
    aggregateType: 'Advisory',
    aggregateId: RAPID_RESET,
    eventType: 'Advisory.Published',
    sequence: 1,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: images ? { packages: images.map((i) => i.purl) } : {},
  };
}

const call = (method: InjectMethod, url: string, bearer: string | undefined, payload?: unknown) =>
  injectAs(h.app, method, url, bearer, payload);

/**
 * Starts an instance of `tenant` rescanning `images` (every impacted one when undefined); waits until all rescans are
 * requested. `advisoryId` is the instance's correlation id.
 */
async function startWaiting(
  tenant: string,
  images?: readonly Image[],
): Promise<{ advisoryId: string; event: AggregateEvent }> {
  const advisoryId = fresh('rapid-reset');
  const event = advisoryPublished(tenant, advisoryId, images);
  const writer = await token(tenant, Scope.RunnerEventsWrite, 'aggregates');
  expect((await call('POST', '/api/v1/events', writer, event)).statusCode).toBe(202);
  const reader = await token(tenant, Scope.RunnerSagasRead);
  const impacted = (images ?? IMAGES).length;
  await eventually(async () => {
    const res = await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, reader);
    if (res.statusCode !== 200) return undefined;
    const detail = res.json<RescanDetail>();
    const images = detail.instance.state?.images ?? [];
    // Projected (the start event is in the timeline) with every rescan requested: the saga waits for the scans.
    const projected = detail.timeline.some((t) => t.outcome === 'applied');
    return projected && images.length === impacted && images.every((i) => i.rescan === 'requested') ? true : undefined;
  });
  return { advisoryId, event };
}

describe('GET /api/v1/sagas', () => {
  it('lists the tenant’s instances newest first, filtered by saga, status and correlation id, page by page', async () => {
    const tenant = fresh('pager');
    const started: string[] = [];
    for (let i = 0; i < 3; i++) started.push((await startWaiting(tenant, [AUTH_SERVICE])).advisoryId);
    const reader = await token(tenant, Scope.RunnerSagasRead);
    const list = async (query: string) => {
      const res = await call('GET', `/api/v1/sagas?${query}`, reader);
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ items: RescanInstanceDoc[]; nextCursor?: string }>();
    };

    const page1 = await list('limit=2');
    expect(page1.items.map((i) => i.correlationId)).toEqual([started[2], started[1]]);
    const page2 = await list(`limit=2&cursor=${page1.nextCursor}`);
    expect(page2.items.map((i) => i.correlationId)).toEqual([started[0]]);
    expect(page2.nextCursor).toBeUndefined();
    expect(page1.items[0]).toMatchObject({
      sagaName: RESCAN_SAGA,
      workflowId: `saga/${tenant}/${RESCAN_SAGA}/${started[2]}`,
      status: 'running',
      state: { phase: 'rescanning', images: [{ imageId: AUTH_SERVICE.imageId, rescan: 'requested' }] },
      appliedEvents: 1,
      finishedAt: null,
    });

    expect((await list(`correlationId=${started[1]}`)).items.map((i) => i.correlationId)).toEqual([started[1]]);
    expect((await list(`saga=${RESCAN_SAGA}&status=running`)).items).toHaveLength(3);
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
    const { advisoryId, event } = await startWaiting('acme', [PAYMENTS_API]);
    const reader = await token('acme', Scope.RunnerSagasRead);
    const res = await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, reader);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      instance: { status: 'running', lastEvent: { eventId: event.eventId }, reason: null },
      timeline: [{ eventId: event.eventId, outcome: 'applied', via: 'ingress' }],
      compensations: [],
    });

    expect((await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/adv-unknown`, reader)).statusCode).toBe(404);
    expect((await call('GET', `/api/v1/sagas/no-such-saga/${advisoryId}`, reader)).statusCode).toBe(404);
    const globex = await token('globex', Scope.RunnerSagasRead);
    const foreign = await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, globex);
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ error: 'NotFound' });
    expect((await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/bad%20id`, reader)).statusCode).toBe(400);
    expect((await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, undefined)).statusCode).toBe(401);
    const writer = await token('acme', Scope.RunnerEventsWrite);
    expect((await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, writer)).statusCode).toBe(403);
  });
});

describe('POST /api/v1/sagas/{saga}/{correlationId}/cancel', () => {
  it('cancels through the Update: completed steps are compensated, recorded and audited; a repeat answers 409', async () => {
    const { advisoryId } = await startWaiting('acme');
    const url = `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}/cancel`;
    const operator = await token('acme', Scope.RunnerSagasOperate, 'ops-bob');

    const res = await call('POST', url, operator, { reason: 'advisory withdrawn' });
    expect(res.statusCode, res.body).toBe(200);
    const view = res.json<RescanInstanceDoc>();
    expect(['compensating', 'compensated']).toContain(view.status);
    expect(view.reason).toBe('cancelled by ops-bob: advisory withdrawn');

    const reader = await token('acme', Scope.RunnerSagasRead);
    const done = await eventually(async () => {
      const detail = (await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, reader)).json<RescanDetail>();
      return detail.instance.status === 'compensated' ? detail : undefined;
    });
    expect(done.instance.finishedAt).not.toBeNull();
    expect(done.compensations.map((c) => [c.step, c.status])).toEqual([
      [`rescan:${EDGE_GATEWAY.imageId}`, 'compensated'],
      [`rescan:${AUTH_SERVICE.imageId}`, 'compensated'],
      [`rescan:${PAYMENTS_API.imageId}`, 'compensated'],
    ]);
    // Undone in reverse order by the Gateway's CancelRescan: what its Scan aggregates did, in the order they did it.
    const mine = h.sagas!.emitted.filter((e) => e.correlationId === advisoryId);
    expect(mine.map((e) => `${e.eventType} ${e.aggregateId}`)).toEqual([
      ...IMAGES.map((i) => `Scan.Requested ${i.imageId}`),
      ...[...IMAGES].reverse().map((i) => `Scan.Cancelled ${i.imageId}`),
    ]);
    // Each caused by a command of its own that reached the Gateway once; no other command of the saga did.
    const received = h.sagas!.reference.counters.commandsReceived();
    const sent = Object.entries(received).filter(([id]) => id.startsWith(`acme:${RESCAN_SAGA}:${advisoryId}:`));
    expect(Object.fromEntries(sent)).toEqual(Object.fromEntries(mine.map((e) => [e.metadata?.causationId, 1])));
    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'saga.cancel.requested' });
    expect(audit.find((a) => a.correlationId === advisoryId)).toMatchObject({
      actor: 'ops-bob',
      subject: `${RESCAN_SAGA}/${advisoryId}`,
      details: { reason: 'advisory withdrawn' },
    });

    const again = await call('POST', url, operator, { reason: 'again' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'Conflict' });
  });

  it('answers 404 for unknown and foreign instances, 400 without a reason, 403 without the operate scope', async () => {
    const { advisoryId } = await startWaiting('acme', [PAYMENTS_API]);
    const url = `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}/cancel`;
    const operator = await token('acme', Scope.RunnerSagasOperate);
    expect(
      (await call('POST', `/api/v1/sagas/${RESCAN_SAGA}/adv-unknown/cancel`, operator, { reason: 'x' })).statusCode,
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
    const detail = (await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${advisoryId}`, reader)).json<RescanDetail>();
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
