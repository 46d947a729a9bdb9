/**
 * The sagas' event ingress (`POST /api/v1/events`) and the unmatched and late events with their redelivery, against
 * a real dev server, real Postgres and the real saga workflows on workers with the real activities of each queue:
 * the effects queue calls the reference services (impact index from the sample SBOMs, Gateway), whose events come
 * back through the ingress under test.
 */
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { createPool } from '../../db/pool.js';
import { listAudit } from '../../db/queries/audit.js';
import { findIngestedEvent } from '../../db/queries/sagas.js';
import type { AggregateEvent, SagaInput } from '../../workflows/sagas/definitions.js';
import { startApiHarness, startAppWithoutTemporal, type ApiHarness } from '../support/api.js';
import { TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';
import { eventually } from '../support/http-sinks.js';
import { freePort } from '../support/ports.js';
import { RESCAN_SAGA, type RescanDetail } from '../support/sagas.js';

/** Log4Shell impacts one sample image, whose SBOM has 15 findings. */
const LOG4SHELL = 'CVE-2021-44228';
const PAYMENTS_API = { imageId: 'payments-api:3.8.2', findings: 15 };
/** HTTP/2 rapid reset impacts three sample images; two of them, each through its own package. */
const RAPID_RESET = 'CVE-2023-44487';
const AUTH_SERVICE = { imageId: 'auth-service:2.1.0', purl: 'pkg:golang/golang.org/x/net', findings: 14 };
const EDGE_GATEWAY = { imageId: 'edge-gateway:1.9.0', purl: 'pkg:deb/debian/nginx', findings: 19 };
let h: ApiHarness;
let writer: string;
let operator: string;

beforeAll(async () => {
  // The Gateway never completes a rescan of edge-gateway: only an event of the test's can.
  h = await startApiHarness({ sagas: { neverCompleteImages: [EDGE_GATEWAY.imageId] } });
  writer = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerEventsWrite], subject: 'aggregates' });
  operator = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerSagasOperate], subject: 'ops-alice' });
});
afterAll(async () => {
  await h?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/**
 * `Advisory.Published` of `advisoryId`; `packages` (purls) narrows the impact, none impacts nothing, undefined leaves
 * the index unfiltered. The correlation id is the advisory id unless `overrides` carries one.
 */
function advisoryPublished(
  advisoryId: string,
  packages: string[] | undefined,
  overrides: Partial<AggregateEvent> = {},
) {
  return {
    tenantId: 'acme',
    eventId: fresh('evt'),
    aggregateType: 'Advisory',
    aggregateId: advisoryId,
    eventType: 'Advisory.Published',
    sequence: 1,
    occurredAt: new Date().toISOString(),
    payload: packages === undefined ? {} : { packages },
    ...overrides,
  } satisfies AggregateEvent;
}

/** A scanner's `Scan.Completed` of `imageId` for the rescan instance `correlationId`, with 2 findings. */
function scanCompleted(
  correlationId: string,
  imageId: string,
  sequence: number,
  overrides: Partial<AggregateEvent> = {},
) {
  return {
    tenantId: 'acme',
    eventId: fresh('evt'),
    aggregateType: 'Scan',
    aggregateId: imageId,
    eventType: 'Scan.Completed',
    sequence,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: { imageId, findings: 2 },
    ...overrides,
  } satisfies AggregateEvent;
}

interface InstanceOutcome {
  sagaName: string;
  correlationId: string;
  workflowId: string;
  outcome: string;
  reason: string | null;
}
interface EventResult {
  index: number;
  eventId: string | null;
  status: string;
  instances: InstanceOutcome[];
  reason?: string;
  errors?: { path: string; message: string }[];
}

async function post(body: unknown, token = writer, app = h.app) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/events',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
  return { res, results: res.statusCode < 300 ? res.json<{ results: EventResult[] }>().results : [] };
}

async function get<T>(url: string, token = operator): Promise<T> {
  const res = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<T>();
}

interface UnmatchedDoc {
  id: string;
  eventId: string;
  sagaName: string;
  correlationId: string;
  kind: string;
  status: string;
  reason: string;
  claimedBy: string | null;
  redelivery: { delivery: string; generation: number | null; requestedBy: string } | null;
  event: AggregateEvent;
}
const unmatchedOf = async (correlationId: string) =>
  (await get<{ items: UnmatchedDoc[] }>('/api/v1/events/unmatched?limit=200')).items.filter(
    (i) => i.correlationId === correlationId,
  );

const detailOf = (correlationId: string) => get<RescanDetail>(`/api/v1/sagas/${RESCAN_SAGA}/${correlationId}`);
/** The instance once its projection shows `status` and its execution has closed (no event can reach it any more). */
const finished = (correlationId: string, status = 'completed') =>
  eventually(async () => {
    const detail = await detailOf(correlationId);
    if (detail.instance.status !== status) return undefined;
    const execution = await h.env.client.workflow.getHandle(`saga/acme/${RESCAN_SAGA}/${correlationId}`).describe();
    return execution.status.name === 'RUNNING' ? undefined : detail;
  });

function redeliver(id: string, token = operator) {
  return h.app.inject({
    method: 'POST',
    url: `/api/v1/events/unmatched/${id}/redeliver`,
    headers: { authorization: `Bearer ${token}` },
  });
}

describe('POST /api/v1/events', () => {
  it('starts an instance with a start event (202), with search attributes and summary; a repeat answers 200 duplicate', async () => {
    const correlationId = fresh('log4shell');
    const event = advisoryPublished(LOG4SHELL, undefined, { correlationId });
    const first = await post(event);
    expect(first.res.statusCode).toBe(202);
    const workflowId = `saga/acme/${RESCAN_SAGA}/${correlationId}`;
    const reached = { sagaName: RESCAN_SAGA, correlationId, workflowId, outcome: 'accepted', reason: null };
    expect(first.results).toEqual([{ index: 0, eventId: event.eventId, status: 'accepted', instances: [reached] }]);

    const again = await post(event);
    expect(again.res.statusCode).toBe(200);
    expect(again.results).toEqual([{ index: 0, eventId: event.eventId, status: 'duplicate', instances: [reached] }]);

    const description = await h.env.client.workflow.getHandle(workflowId).describe();
    expect(description.type).toBe('advisoryImpactRescanWorkflow');
    expect(description.searchAttributes).toMatchObject({
      TenantId: ['acme'],
      SagaName: [RESCAN_SAGA],
      CorrelationId: [correlationId],
    });
    expect(await description.staticSummary()).toBe(`Impact rescan of advisory ${LOG4SHELL} (${correlationId})`);
  });

  it('records an event delivered concurrently once: one answer accepted, the others duplicate', async () => {
    const correlationId = fresh('log4shell');
    const event = advisoryPublished(LOG4SHELL, undefined, { correlationId });
    const answers = await Promise.all(Array.from({ length: 5 }, () => post(event)));
    expect(answers.map((a) => a.res.statusCode).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(answers.map((a) => a.results[0]?.status).sort()).toEqual([
      'accepted',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
    ]);
    // The saga ran once: one rescan of the one impacted image, completed by the Gateway's one event.
    const detail = await finished(correlationId);
    const scans = h.sagas!.emitted.filter((e) => e.correlationId === correlationId && e.eventType === 'Scan.Completed');
    expect(scans.map((e) => e.aggregateId)).toEqual([PAYMENTS_API.imageId]);
    expect(detail.timeline.filter((t) => t.outcome === 'applied').map((t) => t.eventId)).toEqual([
      event.eventId,
      scans[0]!.eventId,
    ]);
    expect(detail.instance).toMatchObject({
      appliedEvents: 2,
      state: { images: [{ ...PAYMENTS_API, rescan: 'completed' }] },
    });
  });

  it('accepts an event no saga triggers on with no instances, records it, and answers its repeat as a duplicate', async () => {
    const event = { ...advisoryPublished(fresh('adv'), []), aggregateType: 'Sbom', eventType: 'Sbom.Uploaded' };
    expect((await post(event)).results).toEqual([
      { index: 0, eventId: event.eventId, status: 'accepted', instances: [] },
    ]);
    expect((await findIngestedEvent(h.db.pool, 'acme', event.eventId))?.outcomes).toEqual([]);
    const again = await post(event);
    expect(again.res.statusCode).toBe(200);
    expect(again.results[0]?.status).toBe('duplicate');
  });

  it('answers each event of a mixed batch in order: valid ones proceed, invalid ones carry field errors', async () => {
    const known = advisoryPublished(fresh('adv'), []);
    expect((await post(known)).res.statusCode).toBe(202);
    const start = advisoryPublished(fresh('adv'), [], { futureField: { v: 2 } } as Partial<AggregateEvent>);
    const broken = { ...advisoryPublished(fresh('adv'), []), occurredAt: 'yesterday', payload: { note: 'a\u0000b' } };
    const uncorrelated = { ...scanCompleted('x', PAYMENTS_API.imageId, 1), correlationId: undefined };
    const typed = { ...advisoryPublished(fresh('adv'), []), sequence: '3' };

    const { res, results } = await post({ events: [start, broken, known, uncorrelated, typed] });

    expect(res.statusCode).toBe(202);
    expect(results.map((r) => [r.index, r.status])).toEqual([
      [0, 'accepted'],
      [1, 'invalid'],
      [2, 'duplicate'],
      [3, 'invalid'],
      [4, 'invalid'],
    ]);
    expect(results[1]).toMatchObject({ eventId: broken.eventId, instances: [] });
    expect(results[1]?.errors?.map((e) => e.path)).toEqual(['body.events.1.occurredAt', 'body.events.1.payload.note']);
    expect(results[3]?.errors).toEqual([
      { path: 'body.events.3.correlationId', message: expect.stringMatching(/needs a correlation id/) as string },
    ]);
    expect(results[4]?.errors?.map((e) => e.path)).toEqual(['body.events.4.sequence']);
    // Unknown fields are kept in the recorded event.
    const recorded = await h.db.pool.query<{ event: Record<string, unknown> }>(
      'SELECT event FROM runner.ingested_events WHERE tenant_id = $1 AND event_id = $2',
      ['acme', start.eventId],
    );
    expect(recorded.rows[0]?.event).toMatchObject({ futureField: { v: 2 } });
    expect(await findIngestedEvent(h.db.pool, 'acme', broken.eventId)).toBeUndefined();
  });

  it('answers a single invalid event, a batch of invalid events only, and a malformed batch with 400', async () => {
    const single = await post({ ...advisoryPublished(fresh('adv'), []), eventType: 'no spaces allowed', extra: 1 });
    expect(single.res.statusCode).toBe(400);
    expect(single.res.json()).toMatchObject({ error: 'ValidationFailed', errors: [{ path: 'body.eventType' }] });

    const unroutable = await post(scanCompleted('x', PAYMENTS_API.imageId, 1, { correlationId: undefined }));
    expect(unroutable.res.statusCode).toBe(400);
    expect(unroutable.res.json()).toMatchObject({ errors: [{ path: 'body.correlationId' }] });

    const allInvalid = await post({ events: [{ tenantId: 'acme' }, { ...advisoryPublished('a', []), sequence: -1 }] });
    expect(allInvalid.res.statusCode).toBe(400);
    const paths = allInvalid.res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['body.events.0.eventId', 'body.events.1.sequence']));

    for (const events of [[], Array.from({ length: 501 }, () => advisoryPublished(fresh('adv'), [])), 'x']) {
      const malformed = await post({ events });
      expect(malformed.res.statusCode).toBe(400);
      expect(malformed.res.json()).toMatchObject({ errors: [{ path: 'body.events' }] });
    }
  });

  it('answers 401 without a token, 403 without the scope, and 403 for another tenant’s event, accepting nothing', async () => {
    const event = advisoryPublished(fresh('adv'), []);
    const anonymous = await h.app.inject({ method: 'POST', url: '/api/v1/events', payload: event });
    expect(anonymous.statusCode).toBe(401);
    expect((await post(event, operator)).res.statusCode).toBe(403);

    const foreign = { ...advisoryPublished(fresh('adv'), []), tenantId: 'globex' };
    const refused = await post({ events: [event, foreign] });
    expect(refused.res.statusCode).toBe(403);
    expect(refused.res.json<{ message: string }>().message).toMatch(/Event 1 belongs to another tenant/);
    expect(await findIngestedEvent(h.db.pool, 'acme', event.eventId)).toBeUndefined();
  });
});

describe('events before their start event', () => {
  it('records an overtaking event unmatched, delivers it when the instance starts, and the saga completes', async () => {
    const correlationId = fresh('rapid-reset');
    // A scanner reports edge-gateway before the advisory arrives; the Gateway never completes that rescan itself.
    const early = scanCompleted(correlationId, EDGE_GATEWAY.imageId, 7);
    const before = await post(early);
    expect(before.res.statusCode).toBe(202);
    expect(before.results[0]).toMatchObject({
      status: 'unmatched',
      reason: expect.stringMatching(/No instance of advisory-impact-rescan/) as string,
      instances: [{ sagaName: RESCAN_SAGA, correlationId, outcome: 'unmatched' }],
    });
    expect(await unmatchedOf(correlationId)).toMatchObject([
      { eventId: early.eventId, kind: 'unmatched', status: 'pending', claimedBy: null, event: early },
    ]);

    const start = advisoryPublished(RAPID_RESET, [AUTH_SERVICE.purl, EDGE_GATEWAY.purl], { correlationId });
    expect((await post(start)).results[0]?.status).toBe('accepted');
    const waiting = await eventually(async () => {
      const detail = await detailOf(correlationId);
      return detail.timeline.some((t) => t.eventId === early.eventId && t.outcome === 'applied') ? detail : undefined;
    });
    expect(waiting.timeline.filter((t) => t.eventId === early.eventId)).toMatchObject([
      { outcome: 'unmatched', via: 'ingress' },
      { outcome: 'applied', via: 'unmatched' },
    ]);
    const [claimed] = await unmatchedOf(correlationId);
    expect(claimed).toMatchObject({ status: 'delivered', claimedBy: expect.any(String) as string });
    const description = await h.env.client.workflow.getHandle(`saga/acme/${RESCAN_SAGA}/${correlationId}`).describe();
    expect(claimed?.claimedBy).toBe(description.raw.workflowExecutionInfo?.firstRunId);

    // The Gateway completes auth-service's rescan; edge-gateway's counts as done through the early event only.
    const done = await finished(correlationId);
    expect(done.instance).toMatchObject({
      state: {
        phase: 'completed',
        images: [
          { imageId: AUTH_SERVICE.imageId, rescan: 'completed', findings: AUTH_SERVICE.findings },
          { imageId: EDGE_GATEWAY.imageId, rescan: 'completed', findings: 2 },
        ],
      },
      appliedEvents: 3,
    });
  });
});

describe('events after their instance finished', () => {
  it('records late events with the final status, redelivers a late start event as a new generation, once', async () => {
    const advisoryId = fresh('adv');
    const workflowId = `saga/acme/${RESCAN_SAGA}/${advisoryId}`;
    // No package filtered for carries the advisory, so nothing is impacted: the instance completes at once.
    expect((await post(advisoryPublished(advisoryId, []))).res.statusCode).toBe(202);
    const first = await finished(advisoryId);

    const lateScan = scanCompleted(advisoryId, PAYMENTS_API.imageId, 3);
    const lateStart = advisoryPublished(advisoryId, [], { sequence: 2 });
    const { res, results } = await post({ events: [lateScan, lateStart] });
    expect(res.statusCode).toBe(202);
    for (const result of results) {
      expect(result).toMatchObject({
        status: 'late',
        reason: expect.stringMatching(new RegExp(`${workflowId} has finished \\(completed\\)`)) as string,
      });
    }
    const rows = await unmatchedOf(advisoryId);
    const rowOf = (eventId: string) => rows.find((r) => r.eventId === eventId)!;
    expect(rows.map((r) => [r.kind, r.status]).sort()).toEqual([
      ['late', 'pending'],
      ['late', 'pending'],
    ]);
    expect((await detailOf(advisoryId)).timeline.filter((t) => t.outcome === 'late').map((t) => t.eventId)).toEqual([
      lateScan.eventId,
      lateStart.eventId,
    ]);

    const refused = await redeliver(rowOf(lateScan.eventId).id);
    expect(refused.statusCode).toBe(409);
    expect(refused.json<{ message: string }>().message).toMatch(/can only go to a running instance/);

    const restarted = await redeliver(rowOf(lateStart.eventId).id);
    expect(restarted.statusCode, restarted.body).toBe(200);
    expect(restarted.json()).toMatchObject({
      repeated: false,
      event: { status: 'redelivered', redelivery: { delivery: 'started', generation: 1, requestedBy: 'ops-alice' } },
    });
    const second = await eventually(async () => {
      const detail = await detailOf(advisoryId);
      return detail.instance.startedAt > first.instance.startedAt && detail.instance.status === 'completed'
        ? detail
        : undefined;
    });
    expect(second.timeline.filter((t) => t.eventId === lateStart.eventId).map((t) => t.outcome)).toEqual([
      'late',
      'redelivered',
      'applied',
    ]);
    const history = await h.env.client.workflow.getHandle(workflowId).fetchHistory();
    const input = defaultPayloadConverter.fromPayload<SagaInput>(
      history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!,
    );
    expect(input.generation).toBe(1);

    const repeat = await redeliver(rowOf(lateStart.eventId).id);
    expect(repeat.statusCode).toBe(200);
    expect(repeat.json()).toMatchObject({
      repeated: true,
      event: { redelivery: { delivery: 'started', generation: 1 } },
    });
    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'saga.event.redelivered' });
    expect(audit.filter((a) => a.subject === `${RESCAN_SAGA}/${advisoryId}`)).toHaveLength(1);
  });

  it('answers redelivery 404 for an unknown or another tenant’s event, 403 without the operate scope', async () => {
    expect((await redeliver('999999999')).statusCode).toBe(404);
    const advisoryId = fresh('adv');
    await post(scanCompleted(advisoryId, PAYMENTS_API.imageId, 1));
    const [row] = await unmatchedOf(advisoryId);
    const globex = await h.signer.token({ tenant: 'globex', scopes: [Scope.RunnerSagasOperate] });
    expect((await redeliver(row!.id, globex)).statusCode).toBe(404);
    const reader = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerSagasRead] });
    expect((await redeliver(row!.id, reader)).statusCode).toBe(403);
    const stillWaiting = await redeliver(row!.id);
    expect(stillWaiting.statusCode).toBe(409);
    expect(stillWaiting.json<{ message: string }>().message).toMatch(/delivered when it starts/);
  });
});

describe('GET /api/v1/events/unmatched', () => {
  it('filters by kind, status and saga, pages with an opaque cursor, and shows only the caller’s tenant', async () => {
    const advisoryId = fresh('adv');
    for (const [i, imageId] of [PAYMENTS_API.imageId, AUTH_SERVICE.imageId, EDGE_GATEWAY.imageId].entries()) {
      await post(scanCompleted(advisoryId, imageId, i + 1));
    }
    const page1 = await get<{ items: UnmatchedDoc[]; nextCursor?: string }>(
      `/api/v1/events/unmatched?kind=unmatched&status=pending&saga=${RESCAN_SAGA}&limit=2`,
    );
    expect(page1.items).toHaveLength(2);
    expect(page1.items.every((i) => i.kind === 'unmatched' && i.status === 'pending')).toBe(true);
    const page2 = await get<{ items: UnmatchedDoc[] }>(`/api/v1/events/unmatched?limit=200&cursor=${page1.nextCursor}`);
    const ids = [...page1.items, ...page2.items].map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((a, b) => b - a));

    const reader = await h.signer.token({ tenant: 'acme', scopes: [Scope.RunnerSagasRead] });
    expect((await get<{ items: unknown[] }>('/api/v1/events/unmatched?kind=late', reader)).items).toBeDefined();
    const globex = await h.signer.token({ tenant: 'globex', scopes: [Scope.RunnerSagasRead] });
    expect((await get<{ items: unknown[] }>('/api/v1/events/unmatched', globex)).items).toEqual([]);
    const bad = await h.app.inject({
      method: 'GET',
      url: '/api/v1/events/unmatched?cursor=bm9wZQ',
      headers: { authorization: `Bearer ${operator}` },
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('outages', () => {
  it('answers 503 with Retry-After when Temporal is unreachable; the retried batch answers what was recorded duplicate', async () => {
    const { app, close } = await startAppWithoutTemporal(h);
    const untriggered = { ...advisoryPublished(fresh('adv'), []), aggregateType: 'Sbom', eventType: 'Sbom.Uploaded' };
    const start = advisoryPublished(fresh('adv'), []);
    try {
      const down = await post({ events: [untriggered, start] }, writer, app);
      expect(down.res.statusCode).toBe(503);
      expect(down.res.headers['retry-after']).toBe('5');
      expect(down.res.json()).toMatchObject({ error: 'ServiceUnavailable' });
    } finally {
      await close();
    }
    expect(await findIngestedEvent(h.db.pool, 'acme', untriggered.eventId)).toBeDefined();
    expect(await findIngestedEvent(h.db.pool, 'acme', start.eventId)).toBeUndefined();

    const retried = await post({ events: [untriggered, start] });
    expect(retried.res.statusCode).toBe(202);
    expect(retried.results.map((r) => r.status)).toEqual(['duplicate', 'accepted']);
  });

  it('answers 503 with Retry-After when Postgres is unreachable', async () => {
    const pool = createPool({
      connectionString: `postgres://nobody:nothing@127.0.0.1:${await freePort()}/none`,
      applicationName: 'stellaops-test-down',
    });
    const app = await buildApp({
      config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
      logger: createLogger({ level: 'silent' }),
      pool,
      temporal: h.temporal,
      verifyToken: h.signer.verifier,
      taskQueuePrefix: h.taskQueuePrefix,
    });
    try {
      const down = await post(advisoryPublished(fresh('adv'), []), writer, app);
      expect(down.res.statusCode).toBe(503);
      expect(down.res.headers['retry-after']).toBe('5');
    } finally {
      await app.close();
      await pool.end();
    }
  });
});
