/**
 * The quarantine of aggregate-event messages (`/api/v1/events/quarantined`: list, read, redeliver, discard) and the
 * bulk replay of unmatched and quarantined events (`POST /api/v1/events/replay`), against a real dev server, real
 * Postgres and the real saga workflows on workers with the real activities (the reference services behind the
 * effects queue). Quarantined rows are written with the bridge's own query, as the bridge writes them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import {
  getQuarantinedEvent,
  recordQuarantinedEvent,
  type QuarantineRecord,
} from '../../db/queries/saga-quarantine.js';
import { findIngestedEvent } from '../../db/queries/sagas.js';
import type { AggregateEvent } from '../../workflows/sagas/definitions.js';
import {
  injectAs,
  startApiHarness,
  startAppWithoutTemporal,
  type ApiHarness,
  type InjectMethod,
} from '../support/api.js';
import { eventually } from '../support/http-sinks.js';
import { RESCAN_SAGA } from '../support/sagas.js';

const PAYMENTS_API = 'payments-api:3.8.2';
const STREAM = 'AGGREGATE_EVENTS';
let h: ApiHarness;
let sequence = Math.floor(Math.random() * 1_000_000_000);

beforeAll(async () => {
  h = await startApiHarness({ sagas: {} });
});
afterAll(async () => {
  await h?.close();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const token = (tenant: string, scope: string, subject = 'ops-alice') =>
  h.signer.token({ tenant, scopes: [scope], subject });

/** `Advisory.Published` that impacts nothing (an empty package filter): its instance completes at once. */
function advisoryPublished(tenantId: string, correlationId = fresh('adv')): AggregateEvent {
  return {
    tenantId,
    eventId: fresh('evt'),
    aggregateType: 'Advisory',
    aggregateId: correlationId,
    eventType: 'Advisory.Published',
    sequence: 1,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: { packages: [] },
  };
}

/** A scanner's `Scan.Completed` for the rescan instance `correlationId`. */
function scanCompleted(tenantId: string, correlationId: string): AggregateEvent {
  return {
    tenantId,
    eventId: fresh('evt'),
    aggregateType: 'Scan',
    aggregateId: PAYMENTS_API,
    eventType: 'Scan.Completed',
    sequence: 3,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: { imageId: PAYMENTS_API, findings: 2 },
  };
}

/** Quarantines `payload` (an event, or raw bytes) as the bridge does; answers the row's id. */
async function quarantine(
  tenantId: string,
  payload: AggregateEvent | Uint8Array | Record<string, unknown>,
  overrides: Partial<QuarantineRecord> = {},
): Promise<string> {
  const bytes = payload instanceof Uint8Array ? payload : Buffer.from(JSON.stringify(payload));
  const event = payload instanceof Uint8Array ? undefined : (payload as Partial<AggregateEvent>);
  const { id } = await recordQuarantinedEvent(h.db.pool, {
    tenantId,
    stream: STREAM,
    streamSequence: ++sequence,
    subject: `aggregate.${tenantId}.${event?.aggregateType ?? 'Unknown'}.${event?.aggregateId ?? 'x'}.${event?.eventType ?? 'x'}`,
    headers: { 'Nats-Msg-Id': [event?.eventId ?? 'none'], 'x-trace': ['a', 'b'] },
    payload: bytes,
    eventId: typeof event?.eventId === 'string' ? event.eventId : null,
    sagaNames: event?.aggregateType === 'Advisory' || event?.aggregateType === 'Scan' ? [RESCAN_SAGA] : [],
    errorKind: 'max_deliver',
    error: 'Temporal was unavailable for every delivery',
    deliveryCount: 5,
    ...overrides,
  });
  return id;
}

const call = (method: InjectMethod, url: string, bearer: string | undefined, payload?: unknown) =>
  injectAs(h.app, method, url, bearer, payload);

interface QuarantinedDoc {
  id: string;
  stream: string;
  streamSequence: number;
  subject: string;
  headers: Record<string, string[]>;
  payloadBase64: string;
  payloadText: string | null;
  eventId: string | null;
  sagaNames: string[];
  errorKind: string;
  error: string;
  deliveryCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  status: string;
  resolution: {
    action: string;
    by: string;
    reason: string | null;
    outcome: { status: string; instances: { workflowId: string; outcome: string }[] } | null;
  } | null;
}
interface ActionAnswer {
  event: QuarantinedDoc;
  repeated: boolean;
}

const Q = '/api/v1/events/quarantined';

describe('GET /api/v1/events/quarantined', () => {
  it('lists the tenant’s messages newest first, filtered, page by page; reads one with its bytes and headers', async () => {
    const tenant = fresh('lister');
    const startedAt = new Date(Date.now() - 1000).toISOString();
    const valid = advisoryPublished(tenant);
    const ids = [
      await quarantine(tenant, valid),
      await quarantine(tenant, Uint8Array.from([0xff, 0xfe, 0x00, 0x41]), {
        errorKind: 'undecodable',
        error: 'not JSON',
      }),
      await quarantine(
        tenant,
        { ...scanCompleted(tenant, 'c1'), sequence: -1 },
        { errorKind: 'invalid', error: 'sequence' },
      ),
    ];
    const reader = await token(tenant, Scope.RunnerSagasRead);
    const list = async (query: string) => {
      const res = await call('GET', `${Q}?${query}`, reader);
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ items: QuarantinedDoc[]; nextCursor?: string }>();
    };

    const page1 = await list('limit=2');
    expect(page1.items.map((i) => i.id)).toEqual([ids[2], ids[1]]);
    const page2 = await list(`limit=2&cursor=${page1.nextCursor}`);
    expect(page2.items.map((i) => i.id)).toEqual([ids[0]]);
    expect(page2.nextCursor).toBeUndefined();

    expect((await list('errorKind=undecodable')).items.map((i) => i.id)).toEqual([ids[1]]);
    expect((await list(`sagaName=${RESCAN_SAGA}`)).items.map((i) => i.id)).toEqual([ids[2], ids[0]]);
    const subject = `aggregate.${tenant}.Advisory.${valid.aggregateId}.Advisory.Published`;
    expect((await list(`subject=${encodeURIComponent(subject)}`)).items.map((i) => i.id)).toEqual([ids[0]]);
    expect((await list('status=quarantined')).items).toHaveLength(3);
    expect((await list('status=discarded')).items).toEqual([]);
    expect((await list(`from=${encodeURIComponent(startedAt)}`)).items).toHaveLength(3);
    expect((await list(`to=${encodeURIComponent(startedAt)}`)).items).toEqual([]);
    for (const query of ['limit=0', 'status=open', 'errorKind=other', 'cursor=bm9wZQ', 'other=1', 'from=yesterday']) {
      expect((await call('GET', `${Q}?${query}`, reader)).statusCode, query).toBe(400);
    }
    const emptyRange = await call(
      'GET',
      `${Q}?from=${encodeURIComponent(startedAt)}&to=${encodeURIComponent(startedAt)}`,
      reader,
    );
    expect(emptyRange.statusCode).toBe(400);
    expect(emptyRange.json()).toMatchObject({ errors: [{ path: 'querystring.to' }] });

    const text = (await call('GET', `${Q}/${ids[0]}`, reader)).json<QuarantinedDoc>();
    expect(text).toMatchObject({
      id: ids[0],
      stream: STREAM,
      subject,
      headers: { 'Nats-Msg-Id': [valid.eventId], 'x-trace': ['a', 'b'] },
      eventId: valid.eventId,
      sagaNames: [RESCAN_SAGA],
      errorKind: 'max_deliver',
      deliveryCount: 5,
      status: 'quarantined',
      resolution: null,
    });
    expect(JSON.parse(text.payloadText!)).toEqual(valid);
    expect(Buffer.from(text.payloadBase64, 'base64').toString('utf8')).toBe(text.payloadText);
    const binary = (await call('GET', `${Q}/${ids[1]}`, reader)).json<QuarantinedDoc>();
    expect(binary.payloadText).toBeNull();
    expect([...Buffer.from(binary.payloadBase64, 'base64')]).toEqual([0xff, 0xfe, 0x00, 0x41]);

    // Another tenant sees none of them; reading needs a token with a saga scope.
    const globex = await token(fresh('globex'), Scope.RunnerSagasOperate);
    expect((await call('GET', Q, globex)).json()).toEqual({ items: [] });
    expect((await call('GET', `${Q}/${ids[0]}`, globex)).statusCode).toBe(404);
    expect((await call('GET', `${Q}/999999999`, reader)).statusCode).toBe(404);
    expect((await call('GET', Q, undefined)).statusCode).toBe(401);
    expect((await call('GET', Q, await token(tenant, Scope.RunnerEventsWrite))).statusCode).toBe(403);
  });
});

describe('POST /api/v1/events/quarantined/{id}/redeliver', () => {
  it('routes the stored event once (the saga receives it via redelivered), audited; a repeat does nothing', async () => {
    const tenant = fresh('redeliver');
    const event = advisoryPublished(tenant);
    const id = await quarantine(tenant, event);
    const operator = await token(tenant, Scope.RunnerSagasOperate, 'ops-bob');
    const url = `${Q}/${id}/redeliver`;

    const res = await call('POST', url, operator, { note: 'Temporal is back' });
    expect(res.statusCode, res.body).toBe(200);
    const workflowId = `saga/${tenant}/${RESCAN_SAGA}/${event.correlationId}`;
    expect(res.json<ActionAnswer>()).toMatchObject({
      repeated: false,
      event: {
        status: 'redelivered',
        resolution: {
          action: 'redelivered',
          by: 'ops-bob',
          reason: 'Temporal is back',
          outcome: { status: 'accepted', instances: [{ workflowId, outcome: 'accepted' }] },
        },
      },
    });
    const reader = await token(tenant, Scope.RunnerSagasRead);
    const detail = await eventually(async () => {
      const d = await call('GET', `/api/v1/sagas/${RESCAN_SAGA}/${event.correlationId}`, reader);
      const body = d.statusCode === 200 ? d.json<{ instance: { status: string }; timeline: unknown[] }>() : undefined;
      return body?.instance.status === 'completed' && body.timeline.length > 0 ? body : undefined;
    });
    expect(detail.timeline).toMatchObject([{ eventId: event.eventId, outcome: 'applied', via: 'redelivered' }]);
    expect(await findIngestedEvent(h.db.pool, tenant, event.eventId)).toBeDefined();

    // No body is a redelivery without a note; the second one answers the recorded resolution and does nothing.
    const again = await call('POST', url, operator);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<ActionAnswer>()).toMatchObject({
      repeated: true,
      event: { status: 'redelivered', resolution: { outcome: { status: 'accepted' } } },
    });
    const audit = await listAudit(h.db.pool, tenant, { eventTypePrefix: 'saga.quarantine.' });
    expect(audit).toMatchObject([
      {
        eventType: 'saga.quarantine.redelivered',
        actor: 'ops-bob',
        subject: `quarantined-event/${id}`,
        details: { id, eventId: event.eventId, reason: 'Temporal is back', outcome: { status: 'accepted' } },
      },
    ]);
    const history = await h.env.client.workflow.getHandle(workflowId).fetchHistory();
    const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes);
    expect(signals).toHaveLength(1);

    const discard = await call('POST', `${Q}/${id}/discard`, operator, { reason: 'changed my mind' });
    expect(discard.statusCode).toBe(409);
    expect(discard.json<{ message: string }>().message).toMatch(/already redelivered by ops-bob/);
  });

  it('answers 422 with field errors for bytes that still are not a routable event, leaving the row quarantined', async () => {
    const tenant = fresh('invalid');
    const operator = await token(tenant, Scope.RunnerSagasOperate);
    const cases = [
      [Uint8Array.from([0xff, 0xfe]), 'payload', /not UTF-8/],
      [Buffer.from('{"eventId": '), 'payload', /not JSON/],
      [
        { ...advisoryPublished(tenant), occurredAt: 'yesterday', eventType: undefined },
        'payload.eventType',
        /contract/,
      ],
      [advisoryPublished(fresh('other')), 'payload.tenantId', /another tenant/],
      [{ ...scanCompleted(tenant, 'x'), correlationId: undefined }, 'payload.correlationId', /cannot be routed/],
    ] as const;
    for (const [payload, path, message] of cases) {
      const id = await quarantine(tenant, payload as Uint8Array, { errorKind: 'invalid' });
      const res = await call('POST', `${Q}/${id}/redeliver`, operator, {});
      expect(res.statusCode, res.body).toBe(422);
      const body = res.json<{ error: string; message: string; errors: { path: string }[] }>();
      expect(body.error).toBe('StillInvalid');
      expect(body.message).toMatch(message);
      expect(body.errors.map((e) => e.path)).toContain(path);
      expect(await getQuarantinedEvent(h.db.pool, tenant, id)).toMatchObject({
        status: 'quarantined',
        resolution: null,
      });
    }
    expect(await listAudit(h.db.pool, tenant)).toEqual([]);
  });

  it('answers 404 for unknown and foreign rows, 403 without the operate scope, 401 without a token', async () => {
    const tenant = fresh('guard');
    const id = await quarantine(tenant, advisoryPublished(tenant));
    const url = `${Q}/${id}/redeliver`;
    const globex = await token(fresh('globex'), Scope.RunnerSagasOperate);
    expect((await call('POST', url, globex, {})).statusCode).toBe(404);
    expect(
      (await call('POST', `${Q}/999999999/redeliver`, await token(tenant, Scope.RunnerSagasOperate), {})).statusCode,
    ).toBe(404);
    expect((await call('POST', url, await token(tenant, Scope.RunnerSagasRead), {})).statusCode).toBe(403);
    expect((await call('POST', url, undefined, {})).statusCode).toBe(401);
    expect((await call('POST', url, await token(tenant, Scope.RunnerSagasOperate), { note: 1 })).statusCode).toBe(400);
    expect(await getQuarantinedEvent(h.db.pool, tenant, id)).toMatchObject({ status: 'quarantined' });
  });

  it('answers 503 with Retry-After when Temporal is unreachable, changing nothing; the retry redelivers', async () => {
    const tenant = fresh('outage');
    const event = advisoryPublished(tenant);
    const id = await quarantine(tenant, event);
    const operator = await token(tenant, Scope.RunnerSagasOperate);
    const { app, close } = await startAppWithoutTemporal(h);
    try {
      const down = await app.inject({
        method: 'POST',
        url: `${Q}/${id}/redeliver`,
        headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
        payload: '{}',
      });
      expect(down.statusCode).toBe(503);
      expect(down.headers['retry-after']).toBe('5');
    } finally {
      await close();
    }
    expect(await getQuarantinedEvent(h.db.pool, tenant, id)).toMatchObject({ status: 'quarantined', resolution: null });
    expect(await findIngestedEvent(h.db.pool, tenant, event.eventId)).toBeUndefined();
    expect(await listAudit(h.db.pool, tenant)).toEqual([]);

    const retried = await call('POST', `${Q}/${id}/redeliver`, operator, {});
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json<ActionAnswer>().event.status).toBe('redelivered');
  });
});

describe('POST /api/v1/events/quarantined/{id}/discard', () => {
  it('discards with a reason, audited; a repeat answers the row; redeliver afterwards is 409', async () => {
    const tenant = fresh('discard');
    const id = await quarantine(tenant, Uint8Array.from([0x00]), { errorKind: 'undecodable' });
    const operator = await token(tenant, Scope.RunnerSagasOperate, 'ops-carol');
    const url = `${Q}/${id}/discard`;
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x', other: 1 }]) {
      expect((await call('POST', url, operator, body)).statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await call('POST', url, await token(tenant, Scope.RunnerSagasRead), { reason: 'x' })).statusCode).toBe(403);
    expect(
      (await call('POST', url, await token(fresh('globex'), Scope.RunnerSagasOperate), { reason: 'x' })).statusCode,
    ).toBe(404);
    expect(await getQuarantinedEvent(h.db.pool, tenant, id)).toMatchObject({ status: 'quarantined' });

    const res = await call('POST', url, operator, { reason: 'garbage from a test producer' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<ActionAnswer>()).toMatchObject({
      repeated: false,
      event: {
        status: 'discarded',
        resolution: { action: 'discarded', by: 'ops-carol', reason: 'garbage from a test producer', outcome: null },
      },
    });
    const again = await call('POST', url, operator, { reason: 'again' });
    expect(again.json<ActionAnswer>()).toMatchObject({
      repeated: true,
      event: { resolution: { reason: 'garbage from a test producer' } },
    });
    expect((await call('POST', `${Q}/${id}/redeliver`, operator, {})).statusCode).toBe(409);
    expect(await listAudit(h.db.pool, tenant)).toMatchObject([
      {
        eventType: 'saga.quarantine.discarded',
        actor: 'ops-carol',
        subject: `quarantined-event/${id}`,
        details: { id, errorKind: 'undecodable', reason: 'garbage from a test producer' },
      },
    ]);
  });
});

interface ReplayAnswer {
  dryRun: boolean;
  count: number;
  ids: string[];
  outcomes?: Record<string, number>;
  items?: { id: string; outcome: string; message?: string }[];
}

describe('POST /api/v1/events/replay', () => {
  const range = () => ({
    from: new Date(Date.now() - 60_000).toISOString(),
    to: new Date(Date.now() + 60_000).toISOString(),
  });

  it('replays quarantined messages: a dry run counts, a stale expectedCount is 409, the real run redelivers', async () => {
    const tenant = fresh('replay-q');
    const good = [advisoryPublished(tenant), advisoryPublished(tenant)];
    const ids = [
      await quarantine(tenant, good[0]!),
      await quarantine(tenant, { ...scanCompleted(tenant, 'x'), correlationId: undefined }),
      await quarantine(tenant, good[1]!),
    ];
    // Not in the replay: discarded, another saga, another tenant.
    await call(
      'POST',
      `${Q}/${await quarantine(tenant, Uint8Array.from([1]))}/discard`,
      await token(tenant, Scope.RunnerSagasOperate),
      { reason: 'noise' },
    );
    await quarantine(tenant, { tenantId: tenant }, { sagaNames: ['mirror-bundle-export'] });
    await quarantine(fresh('globex'), advisoryPublished('globex'));
    const operator = await token(tenant, Scope.RunnerSagasOperate, 'ops-dan');
    const body = { source: 'quarantined', sagaName: RESCAN_SAGA, ...range() };

    const dry = await call('POST', '/api/v1/events/replay', operator, body);
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json<ReplayAnswer>()).toEqual({ dryRun: true, source: 'quarantined', count: 3, ids });

    for (const stale of [{ dryRun: false }, { dryRun: false, expectedCount: 2 }]) {
      const refused = await call('POST', '/api/v1/events/replay', operator, { ...body, ...stale });
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({
        errors: [{ path: 'body.expectedCount', message: expect.stringMatching(/current count 3/) as string }],
      });
    }
    for (const invalid of [
      { ...body, limit: 1001 },
      { ...body, source: 'all' },
      { ...body, to: body.from },
      { source: 'quarantined' },
    ]) {
      expect((await call('POST', '/api/v1/events/replay', operator, invalid)).statusCode, JSON.stringify(invalid)).toBe(
        400,
      );
    }
    expect(
      (await call('POST', '/api/v1/events/replay', await token(tenant, Scope.RunnerSagasRead), body)).statusCode,
    ).toBe(403);
    expect(await listAudit(h.db.pool, tenant, { eventTypePrefix: 'saga.quarantine.redelivered' })).toEqual([]);

    const run = await call('POST', '/api/v1/events/replay', operator, { ...body, dryRun: false, expectedCount: 3 });
    expect(run.statusCode, run.body).toBe(200);
    expect(run.json<ReplayAnswer>()).toMatchObject({
      dryRun: false,
      count: 3,
      outcomes: { redelivered: 2, repeated: 0, refused: 1 },
      items: [
        { id: ids[0], outcome: 'redelivered' },
        { id: ids[1], outcome: 'refused', message: expect.stringMatching(/cannot be routed/) as string },
        { id: ids[2], outcome: 'redelivered' },
      ],
    });
    for (const event of good) expect(await findIngestedEvent(h.db.pool, tenant, event.eventId)).toBeDefined();
    const audit = await listAudit(h.db.pool, tenant, { eventTypePrefix: 'saga.' });
    expect(
      audit
        .filter((a) => a.eventType === 'saga.quarantine.redelivered')
        .map((a) => a.details?.['id'])
        .sort(),
    ).toEqual([ids[0], ids[2]].sort());
    expect(audit.filter((a) => a.eventType === 'saga.events.replayed')).toMatchObject([
      {
        actor: 'ops-dan',
        details: { source: 'quarantined', sagaName: RESCAN_SAGA, count: 3, outcomes: { redelivered: 2, refused: 1 } },
      },
    ]);
    // What the run refused is left as it was, and is all a new dry run finds.
    expect((await call('POST', '/api/v1/events/replay', operator, body)).json<ReplayAnswer>()).toMatchObject({
      count: 1,
      ids: [ids[1]],
    });
  });

  it('replays late events: a late start event starts the next generation, a late scan stays pending', async () => {
    const tenant = fresh('replay-u');
    const writer = await token(tenant, Scope.RunnerEventsWrite, 'aggregates');
    const reader = await token(tenant, Scope.RunnerSagasRead);
    const start = advisoryPublished(tenant);
    const correlationId = start.correlationId!;
    expect((await call('POST', '/api/v1/events', writer, start)).statusCode).toBe(202);
    await eventually(async () => {
      const execution = await h.env.client.workflow
        .getHandle(`saga/${tenant}/${RESCAN_SAGA}/${correlationId}`)
        .describe();
      return execution.status.name === 'COMPLETED' ? true : undefined;
    });
    // One after the other, so that the scan is the older one: it is replayed first, while no instance runs.
    const lateScan = scanCompleted(tenant, correlationId);
    expect((await call('POST', '/api/v1/events', writer, lateScan)).json()).toMatchObject({
      results: [{ status: 'late' }],
    });
    const lateStart = { ...advisoryPublished(tenant, correlationId), sequence: 2 };
    expect((await call('POST', '/api/v1/events', writer, lateStart)).json()).toMatchObject({
      results: [{ status: 'late' }],
    });

    const operator = await token(tenant, Scope.RunnerSagasOperate, 'ops-erin');
    const body = { source: 'unmatched', ...range() };
    const dry = (await call('POST', '/api/v1/events/replay', operator, body)).json<ReplayAnswer>();
    expect(dry).toMatchObject({ dryRun: true, count: 2 });
    expect(
      (await call('POST', '/api/v1/events/replay', operator, { ...body, sagaName: 'mirror-bundle-export' })).json(),
    ).toMatchObject({ count: 0, ids: [] });

    const run = await call('POST', '/api/v1/events/replay', operator, { ...body, dryRun: false, expectedCount: 2 });
    expect(run.statusCode, run.body).toBe(200);
    expect(run.json<ReplayAnswer>()).toMatchObject({
      outcomes: { redelivered: 1, repeated: 0, refused: 1 },
      items: [
        {
          id: dry.ids[0],
          outcome: 'refused',
          message: expect.stringMatching(/can only go to a running instance/) as string,
        },
        { id: dry.ids[1], outcome: 'redelivered' },
      ],
    });
    const rows = (await call('GET', '/api/v1/events/unmatched?limit=200', reader)).json<{
      items: { eventId: string; status: string; redelivery: { delivery: string; generation: number } | null }[];
    }>();
    expect(rows.items.find((r) => r.eventId === lateStart.eventId)).toMatchObject({
      status: 'redelivered',
      redelivery: { delivery: 'started', generation: 1 },
    });
    expect(rows.items.find((r) => r.eventId === lateScan.eventId)).toMatchObject({ status: 'pending' });
    const audit = await listAudit(h.db.pool, tenant, { eventTypePrefix: 'saga.' });
    expect(audit.map((a) => a.eventType)).toEqual(['saga.events.replayed', 'saga.event.redelivered']);
    expect(audit[0]).toMatchObject({
      actor: 'ops-erin',
      details: { source: 'unmatched', count: 2, outcomes: { redelivered: 1, refused: 1 } },
    });
  });
});
