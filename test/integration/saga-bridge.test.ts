/**
 * The JetStream → sagas bridge on real servers: an embedded nats-server with the streams of sagas, the Temporal dev
 * server, Postgres, the saga and effect workers and the reference services, whose Gateway publishes the events its
 * commands cause (`Scan.Completed`) to the aggregate stream. Each test has its tenants and durable consumer of its
 * own on the shared stream. Temporal outages of one bridge go through a TCP proxy the test cuts, so the workers and
 * the other bridges keep their server.
 *
 * 1. A message delivered again and again (its first deliveries fail, Temporal being unreachable) and the same event
 *    published three times: one saga transition, one command per image.
 * 2. Poison: undecodable and tenant-mismatched messages are quarantined at their first delivery and terminated;
 *    a message still failing at the last delivery is quarantined (`max_deliver`), never acknowledged before.
 * 3. Scale-out: two bridges on one durable consumer and two worker hosts, 500 events: each processed once.
 * 4. Drain and re-filtering.
 * 5. The reference Gateway's JetStream emitter: retried until a stream takes the event, refused for good when the
 *    event cannot be put on a subject.
 */
import { randomUUID } from 'node:crypto';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSagaIngress, type SagaIngress } from '../../api/services/saga-ingress.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { createSagaTemporal } from '../../api/temporal/sagas.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { createJetStreamEmitter } from '../../reference-services/emitter.js';
import { listQuarantinedEvents } from '../../db/queries/saga-quarantine.js';
import { findIngestedEvent } from '../../db/queries/sagas.js';
import { createRunnerMetrics, type BridgeOutcome, type RunnerMetrics } from '../../workers/runner-metrics.js';
import { bridgeFilterSubjects, startSagaBridge, type SagaBridge } from '../../workers/saga-bridge.js';
import { aggregateEventSubject, aggregatePublishPrefix } from '../../workers/saga-streams.js';
import { commandIdOf, sagaWorkflowId, type AggregateEvent, type SagaView } from '../../workflows/sagas/definitions.js';
import { eventually } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startSagaStack, type SagaStack } from '../support/saga-stack.js';
import {
  advisoryPublished,
  exportRequested,
  MIRROR_SAGA,
  RAPID_RESET,
  RAPID_RESET_IMAGES,
  RESCAN_SAGA,
} from '../support/sagas.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { createDevServerEnv } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let nats: TestNats;
let stack: SagaStack;
let js: JetStreamClient;
let prefix: string;
/** Temporal through the proxy: the ingress of the bridges whose Temporal outage a test makes. */
let proxy: TcpProxy;
let proxied: { temporal: TemporalFacade; ingress: SagaIngress };
const logger = createLogger({ level: 'warn', name: 'saga-bridge-test' });

beforeAll(async () => {
  [env, db, nats] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    // Short ack wait: the working acks must keep slow messages (a Temporal outage) from being delivered again.
    startTestNats({ NATS_BRIDGE_ACK_WAIT_SECONDS: '3', NATS_BRIDGE_BATCH: '20' }),
  ]);
  prefix = aggregatePublishPrefix(nats.config.nats.aggregateStream.subjects)!;
  js = jetstream(nats.connection);
  stack = await startSagaStack(env, db.pool, {
    reference: { scanDelayMs: 50 },
    publishTo: { nats: nats.connection, subjectPrefix: prefix },
    workerHosts: 2,
  });
  proxy = await startTcpProxy(env.address);
  const temporal = createTemporalFacade({ address: proxy.address, namespace: env.namespace ?? 'default' });
  proxied = {
    temporal,
    ingress: createSagaIngress({
      pool: db.pool,
      logger,
      temporal: createSagaTemporal(temporal, { taskQueuePrefix: stack.taskQueuePrefix }),
    }),
  };
});

const bridges: SagaBridge[] = [];
afterEach(async () => {
  await Promise.allSettled(bridges.splice(0).map((bridge) => bridge.drain()));
  await proxy?.restore();
});
afterAll(async () => {
  await stack?.close();
  await proxied?.temporal.close();
  await proxy?.close();
  await nats?.cleanup();
  await db?.drop();
  await env?.teardown();
});

const fresh = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

/** A bridge on a connection of its own, with metrics of its own, drained after the test. */
async function startBridge(options: {
  tenants: string[];
  durable?: string;
  ingress?: SagaIngress;
  maxDeliver?: number;
  logger?: Logger;
}): Promise<{ bridge: SagaBridge; metrics: RunnerMetrics; durable: string }> {
  const durable = options.durable ?? fresh('bridge');
  const metrics = createRunnerMetrics({ defaults: false });
  const bridge = await startSagaBridge({
    connection: await nats.connect(durable),
    nats: {
      ...nats.config.nats,
      bridge: {
        ...nats.config.nats.bridge,
        durable,
        tenants: options.tenants,
        ...(options.maxDeliver && { maxDeliver: options.maxDeliver }),
      },
    },
    ingress: options.ingress ?? stack.ingress,
    pool: db.pool,
    logger: options.logger ?? logger,
    metrics,
  });
  bridges.push(bridge);
  return { bridge, metrics, durable };
}

/** Messages a bridge handled with `outcome`. */
async function handled(metrics: RunnerMetrics, outcome: BridgeOutcome): Promise<number> {
  const { values } = await metrics.bridge.messages.get();
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/**
 * Resolves once a bridge has counted `n` messages, whatever their outcome: it counts a message when its ack is
 * confirmed, a moment after the consumer's info shows it acknowledged.
 */
async function untilHandled(metrics: RunnerMetrics, n: number): Promise<void> {
  await eventually(async () => {
    const { values } = await metrics.bridge.messages.get();
    return values.reduce((sum, v) => sum + v.value, 0) >= n ? true : undefined;
  }, 60_000);
}

async function redeliveries(metrics: RunnerMetrics): Promise<number> {
  return (await metrics.bridge.redeliveries.get()).values[0]?.value ?? 0;
}

/** Publishes `event` (or other bytes) on its subject, as an aggregate does; `msgID` defaults to the event id. */
async function publish(event: AggregateEvent, options: { msgID?: string; subject?: string; data?: string } = {}) {
  await js.publish(options.subject ?? aggregateEventSubject(prefix, event), options.data ?? JSON.stringify(event), {
    msgID: options.msgID ?? event.eventId,
  });
}

/** Resolves once the durable consumer has nothing left to deliver and nothing unacknowledged. */
function consumerSettled(durable: string) {
  return eventually(async () => {
    const info = await nats.jsm.consumers.info(nats.config.nats.aggregateStream.name, durable);
    return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
  }, 60_000);
}

/** The final view of a saga instance, once it has started and closed. */
async function resultOf(workflowId: string): Promise<SagaView> {
  const handle = stack.temporal.client.workflow.getHandle(workflowId);
  await eventually(() => handle.describe().catch(() => undefined), 60_000);
  return stack.result(workflowId);
}

const rescanCommands = (tenantId: string, correlationId: string) =>
  RAPID_RESET_IMAGES.map((image) => commandIdOf({ tenantId, sagaName: RESCAN_SAGA, correlationId }, `rescan:${image}`));

describe('redelivery', () => {
  it('routes a message delivered several times, and the same event published three times, once', async () => {
    const tenant = fresh('t-redeliver');
    await proxy.cut();
    const { bridge, metrics, durable } = await startBridge({
      tenants: [tenant],
      ingress: proxied.ingress,
      maxDeliver: 8,
    });
    const correlationId = fresh('c');
    const event = advisoryPublished(RAPID_RESET, {}, { tenantId: tenant, correlationId });
    // Three copies the stream keeps apart (their message ids differ), all delivered while Temporal is unreachable.
    for (const copy of [1, 2, 3]) await publish(event, { msgID: `${event.eventId}/copy-${copy}` });

    await eventually(async () => ((await handled(metrics, 'nak')) >= 3 ? true : undefined), 90_000);
    expect(await handled(metrics, 'accepted')).toBe(0);
    expect(bridge.status().lastError).toBeUndefined();
    await proxy.restore();

    const view: SagaView = await resultOf(sagaWorkflowId(tenant, RESCAN_SAGA, correlationId));
    expect(view).toMatchObject({ status: 'completed', appliedEvents: 4 });
    await consumerSettled(durable);
    // A message is counted once its ack is confirmed, a moment after the consumer shows it acknowledged; the NAK count
    // may still grow meanwhile (a copy in its backoff), so the wait is on the outcomes themselves.
    await eventually(async () => {
      const routed = (await handled(metrics, 'accepted')) + (await handled(metrics, 'late'));
      return routed >= 4 && (await handled(metrics, 'duplicate')) >= 2 ? true : undefined;
    }, 60_000).catch(async (error: unknown) => {
      const { values } = await metrics.bridge.messages.get();
      throw new Error(`${(error as Error).message}: ${JSON.stringify(values.map((v) => [v.labels.outcome, v.value]))}`);
    });
    await consumerSettled(durable);
    // The start once and its three Scan.Completed (published by the Gateway to the stream); the copies duplicates.
    // A call cut short as Temporal came back may have started the instance even so: the saga then ran to its end on
    // the scans, and the start's next delivery found it finished (late), which routes nothing a second time.
    const [accepted, late] = [await handled(metrics, 'accepted'), await handled(metrics, 'late')];
    expect([accepted + late, late <= 1]).toEqual([4, true]);
    expect(await handled(metrics, 'duplicate')).toBe(2);
    expect(await redeliveries(metrics)).toBeGreaterThanOrEqual(3);
    for (const commandId of rescanCommands(tenant, correlationId)) {
      expect(stack.reference.counters.commandsReceived()[commandId], commandId).toBe(1);
      expect(stack.reference.counters.commandsApplied()[commandId], commandId).toBe(1);
    }
    expect(await findIngestedEvent(db.pool, tenant, event.eventId)).toMatchObject({
      outcomes: [{ sagaName: RESCAN_SAGA, workflowId: sagaWorkflowId(tenant, RESCAN_SAGA, correlationId) }],
    });

    // The Gateway publishes on the event's subject with the event id as the message id (the stream's dedupe key).
    const stored = await nats.jsm.streams.getMessage(nats.config.nats.aggregateStream.name, {
      last_by_subj: `${prefix}.${tenant}.Scan.Scan.Completed`,
    });
    const scan = stored!.json<AggregateEvent>();
    expect(scan).toMatchObject({ tenantId: tenant, eventType: 'Scan.Completed', correlationId });
    expect(stored!.header.get('Nats-Msg-Id')).toBe(scan.eventId);
  });
  it('acknowledges the events of a batch the ingress recorded, and NAKs only the one it failed on', async () => {
    const tenant = fresh('t-partial');
    const [held, failing, recorded] = ['held', 'failing', 'recorded'].map((name) =>
      exportRequested(fresh(name), { tenantId: tenant }),
    ) as [AggregateEvent, AggregateEvent, AggregateEvent];
    const durable = fresh('partial');
    const calls: string[][] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let failed = false;
    // The real ingress, but the first call is held until the other two messages wait in the bridge (so they come
    // as one batch), and the first attempt at `failing` fails as an unreachable Temporal would.
    const flaky: SagaIngress = {
      ...stack.ingress,
      async ingestEachEvent(events, options) {
        calls.push(events.map((e) => e.eventId));
        if (calls.length === 1) await released;
        const settled = await stack.ingress.ingestEachEvent(
          events.filter((e) => failed || e.eventId !== failing.eventId),
          options,
        );
        return events.map((e) => {
          if (failed || e.eventId !== failing.eventId) return settled.shift()!;
          failed = true;
          return { status: 'rejected', reason: new Error('Temporal unavailable') };
        });
      },
    };
    const { metrics } = await startBridge({ tenants: [tenant], durable, ingress: flaky });
    await publish(held);
    await eventually(() => (calls.length === 1 ? true : undefined));
    await publish(failing);
    await publish(recorded);
    await eventually(async () => {
      const info = await nats.jsm.consumers.info(nats.config.nats.aggregateStream.name, durable);
      return info.num_ack_pending === 3 ? true : undefined;
    });
    release();

    await consumerSettled(durable);
    await untilHandled(metrics, 4);
    expect(calls).toEqual([[held.eventId], [failing.eventId, recorded.eventId], [failing.eventId]]);
    expect([await handled(metrics, 'accepted'), await handled(metrics, 'nak')]).toEqual([3, 1]);
    expect(await handled(metrics, 'duplicate')).toBe(0);
    expect(await redeliveries(metrics)).toBe(1);
    for (const event of [held, failing, recorded]) {
      expect(await findIngestedEvent(db.pool, tenant, event.eventId), event.eventId).toBeDefined();
    }
  });
});

describe('poison messages', () => {
  it('quarantines an undecodable message and a tenant mismatch at their first delivery, and terminates them', async () => {
    const tenant = fresh('t-poison');
    const memory = memoryLogger();
    const { metrics, durable } = await startBridge({ tenants: [tenant], logger: memory.logger });
    const subject = `${prefix}.${tenant}.Advisory.Advisory.Published`;
    const garbage = `{"tenantId": "${tenant}", "token": "garbage-secret-91c2", not json`;
    await js.publish(subject, garbage, { msgID: fresh('garbage') });
    const foreign = advisoryPublished(
      RAPID_RESET,
      { note: 'payload-secret-7f3a' },
      { tenantId: fresh('t-other'), correlationId: fresh('c') },
    );
    await publish(foreign, { subject });

    const { items } = await eventually(async () => {
      const page = await listQuarantinedEvents(db.pool, tenant, { limit: 10 });
      return page.items.length === 2 ? page : undefined;
    });
    const byKind = Object.fromEntries(items.map((item) => [item.errorKind, item]));
    expect(byKind['undecodable']).toMatchObject({
      tenantId: tenant,
      stream: nats.config.nats.aggregateStream.name,
      subject,
      eventId: null,
      deliveryCount: 1,
      status: 'quarantined',
    });
    expect(byKind['undecodable']!.payload.toString()).toBe(garbage);
    expect(byKind['undecodable']!.headers['Nats-Msg-Id']).toHaveLength(1);
    expect(byKind['tenant_mismatch']).toMatchObject({
      tenantId: tenant,
      subject,
      eventId: foreign.eventId,
      sagaNames: [RESCAN_SAGA],
      deliveryCount: 1,
      headers: { 'Nats-Msg-Id': [foreign.eventId] },
    });
    expect(JSON.parse(byKind['tenant_mismatch']!.payload.toString())).toEqual(foreign);

    // Terminated: nothing waits for an ack or a redelivery, and nothing reached Temporal or the event log.
    await consumerSettled(durable);
    expect(await redeliveries(metrics)).toBe(0);
    expect(await handled(metrics, 'invalid')).toBe(2);
    expect((await metrics.bridge.quarantined.get()).values.map((v) => [v.labels.reason, v.value]).sort()).toEqual([
      ['tenant_mismatch', 1],
      ['undecodable', 1],
    ]);
    expect(await findIngestedEvent(db.pool, foreign.tenantId, foreign.eventId)).toBeUndefined();
    // Logged with where the message came from, never with its payload.
    const quarantined = memory.records.filter((r) => r['msg'] === 'message quarantined');
    expect(quarantined).toHaveLength(2);
    expect(quarantined.every((r) => r['subject'] === subject && typeof r['streamSequence'] === 'number')).toBe(true);
    for (const secret of ['payload-secret-7f3a', 'garbage-secret-91c2']) {
      expect(
        memory.lines.some((line) => line.includes(secret)),
        secret,
      ).toBe(false);
    }
  });

  it('quarantines a message still failing at its last delivery, having acknowledged nothing before', async () => {
    const tenant = fresh('t-exhaust');
    await proxy.cut();
    const { metrics, durable } = await startBridge({ tenants: [tenant], ingress: proxied.ingress, maxDeliver: 2 });
    const correlationId = fresh('c');
    const event = advisoryPublished(RAPID_RESET, {}, { tenantId: tenant, correlationId });
    await publish(event);

    const { items } = await eventually(async () => {
      const page = await listQuarantinedEvents(db.pool, tenant, { limit: 10 });
      return page.items.length > 0 ? page : undefined;
    }, 90_000);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      errorKind: 'max_deliver',
      eventId: event.eventId,
      sagaNames: [RESCAN_SAGA],
      deliveryCount: 2,
      status: 'quarantined',
    });
    expect(items[0]!.error).toContain('still failing at delivery 2 of 2');
    await consumerSettled(durable);
    // The first delivery was NAKed, the second quarantined; nothing was acknowledged or reached the sagas.
    expect(await handled(metrics, 'nak')).toBe(1);
    expect(await handled(metrics, 'quarantined')).toBe(1);
    for (const outcome of ['accepted', 'duplicate', 'unmatched', 'late'] as const) {
      expect(await handled(metrics, outcome), outcome).toBe(0);
    }
    expect(await findIngestedEvent(db.pool, tenant, event.eventId)).toBeUndefined();
    await expect(
      stack.temporal.client.workflow.getHandle(sagaWorkflowId(tenant, RESCAN_SAGA, correlationId)).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});

describe('scale-out', () => {
  it('splits 500 events between two bridges on one durable consumer, each processed once', async () => {
    const tenant = fresh('t-scale');
    const durable = fresh('scale');
    const [one, two] = await Promise.all([
      startBridge({ tenants: [tenant], durable }),
      startBridge({ tenants: [tenant], durable }),
    ]);
    // 125 rescans: each a start event and the three Scan.Completed its commands cause, 500 events in all.
    const correlationIds = Array.from({ length: 125 }, (_, i) => fresh(`scale-${i}`));
    await Promise.all(
      correlationIds.map((correlationId) =>
        publish(advisoryPublished(RAPID_RESET, {}, { tenantId: tenant, correlationId })),
      ),
    );

    const acceptedByBoth = async () =>
      (await handled(one.metrics, 'accepted')) + (await handled(two.metrics, 'accepted'));
    await eventually(async () => ((await acceptedByBoth()) >= 500 ? true : undefined), 150_000);
    const views = await Promise.all(correlationIds.map((c) => stack.result(sagaWorkflowId(tenant, RESCAN_SAGA, c))));
    expect(views.filter((view) => view.status !== 'completed')).toEqual([]);
    expect(views.every((view) => view.appliedEvents === 4)).toBe(true);
    await consumerSettled(durable);

    const accepted = [await handled(one.metrics, 'accepted'), await handled(two.metrics, 'accepted')];
    expect(accepted[0]! + accepted[1]!).toBe(500);
    expect(accepted[0]).toBeGreaterThan(0);
    expect(accepted[1]).toBeGreaterThan(0);
    for (const metrics of [one.metrics, two.metrics]) {
      for (const outcome of ['duplicate', 'nak', 'invalid', 'quarantined'] as const) {
        expect(await handled(metrics, outcome), outcome).toBe(0);
      }
    }
    // The gauges follow the consumer's info: nothing left to deliver or to acknowledge.
    for (const metrics of [one.metrics, two.metrics]) {
      await eventually(async () => {
        const gauge = async (g: RunnerMetrics['bridge']['consumerLag']) =>
          (await g.get()).values.find((v) => v.labels.consumer === durable)?.value;
        const [lag, pending] = [await gauge(metrics.bridge.consumerLag), await gauge(metrics.bridge.ackPending)];
        return lag === 0 && pending === 0 ? true : undefined;
      });
    }
    const received = stack.reference.counters.commandsReceived();
    const applied = stack.reference.counters.commandsApplied();
    for (const commandId of correlationIds.flatMap((c) => rescanCommands(tenant, c))) {
      expect([received[commandId], applied[commandId]], commandId).toEqual([1, 1]);
    }
  });
});

describe('drain and re-filtering', () => {
  it('finishes the message in flight, pulls nothing new, and leaves the rest to the next bridge', async () => {
    const tenant = fresh('t-drain');
    const durable = fresh('drain');
    let entered!: () => void;
    const inIngress = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // The real ingress, reached once the test lets the call go on: a slow Temporal as the bridge sees it.
    const slow: SagaIngress = {
      ...stack.ingress,
      async ingestEachEvent(events, options) {
        entered();
        await held;
        return stack.ingress.ingestEachEvent(events, options);
      },
    };
    const { bridge, metrics } = await startBridge({ tenants: [tenant], durable, ingress: slow });
    const first = exportRequested(fresh('bundle'), { tenantId: tenant });
    await publish(first);
    await inIngress;
    expect(bridge.status()).toMatchObject({ pulling: true, draining: false, inFlight: 1, consumer: durable });

    const drained = bridge.drain();
    expect(bridge.status()).toMatchObject({ pulling: false, draining: true, inFlight: 1 });
    const second = exportRequested(fresh('bundle'), { tenantId: tenant });
    await publish(second);
    release();
    await drained;
    await bridge.drain();

    expect(bridge.status()).toMatchObject({ pulling: false, draining: true, inFlight: 0 });
    expect(await handled(metrics, 'accepted')).toBe(1);
    expect(await findIngestedEvent(db.pool, tenant, first.eventId)).toBeDefined();
    expect(await findIngestedEvent(db.pool, tenant, second.eventId)).toBeUndefined();

    // The next bridge on the consumer gets what the drained one did not take.
    const next = await startBridge({ tenants: [tenant], durable });
    await eventually(() => findIngestedEvent(db.pool, tenant, second.eventId));
    await consumerSettled(durable);
    await untilHandled(next.metrics, 1);
    expect(await handled(next.metrics, 'accepted')).toBe(1);
    await Promise.all([first, second].map((e) => resultOf(sagaWorkflowId(tenant, MIRROR_SAGA, e.aggregateId))));
  });

  it('re-filters the durable consumer to the tenants of its shard', async () => {
    const [a, b] = [fresh('t-shard-a'), fresh('t-shard-b')];
    const { bridge, durable } = await startBridge({ tenants: [a] });
    const subjects = nats.config.nats.aggregateStream.subjects;
    const stream = nats.config.nats.aggregateStream.name;
    expect(bridge.status().filterSubjects).toEqual(bridgeFilterSubjects(subjects, [a]));
    expect((await nats.jsm.consumers.info(stream, durable)).config.filter_subjects).toEqual(
      bridgeFilterSubjects(subjects, [a]),
    );

    await bridge.setTenants([b]);
    expect(bridge.status().filterSubjects).toEqual(bridgeFilterSubjects(subjects, [b]));
    expect((await nats.jsm.consumers.info(stream, durable)).config.filter_subjects).toEqual(
      bridgeFilterSubjects(subjects, [b]),
    );
    const [ofA, ofB] = [
      exportRequested(fresh('bundle'), { tenantId: a }),
      exportRequested(fresh('bundle'), { tenantId: b }),
    ];
    await publish(ofA);
    await publish(ofB);
    await eventually(() => findIngestedEvent(db.pool, b, ofB.eventId));
    await consumerSettled(durable);
    // Tenant a's event is no longer the shard's: never delivered to it.
    expect(await findIngestedEvent(db.pool, a, ofA.eventId)).toBeUndefined();

    await bridge.setTenants([]);
    expect(bridge.status().filterSubjects).toEqual(bridgeFilterSubjects(subjects, []));
    expect(bridge.status()).toMatchObject({ pulling: true, draining: false });
    await resultOf(sagaWorkflowId(b, MIRROR_SAGA, ofB.aggregateId));
  });
});

describe("the reference Gateway's JetStream emitter", () => {
  it('publishes again until a stream captures the subject, then once; drops an event no subject can carry', async () => {
    const stream = fresh('LATE');
    const late = fresh('late');
    const emitter = createJetStreamEmitter({
      js: jetstream(await nats.connect(fresh('emitter'))),
      subjectPrefix: late,
      logger,
      retryInitialMs: 50,
      retryMaxMs: 200,
      timeoutMs: 1_000,
    });
    try {
      const event = exportRequested(fresh('bundle'), { tenantId: 'eu.acme' });
      emitter.emit(event);
      // No stream captures the subject yet: nothing acknowledges the publish, so it is tried again.
      await eventually(() => (emitter.stats().retries >= 2 ? true : undefined));
      expect(emitter.stats()).toMatchObject({ pending: 1, delivered: 0, dropped: 0 });

      await nats.jsm.streams.add({ name: stream, subjects: [`${late}.>`] });
      await emitter.idle();
      expect(emitter.stats()).toMatchObject({ pending: 0, delivered: 1, dropped: 0 });
      const subject = `${late}.eu%2Eacme.MirrorBundle.MirrorBundle.ExportRequested`;
      const stored = await nats.jsm.streams.getMessage(stream, { last_by_subj: subject });
      expect(stored!.json<AggregateEvent>()).toEqual(event);
      expect(stored!.header.get('Nats-Msg-Id')).toBe(event.eventId);
      expect((await nats.jsm.streams.info(stream)).state.messages).toBe(1);

      emitter.emit({ ...event, eventId: fresh('evt'), tenantId: 'a b' });
      await emitter.idle();
      expect(emitter.stats()).toMatchObject({ pending: 0, delivered: 1, dropped: 1 });
    } finally {
      await emitter.close();
      await nats.jsm.streams.delete(stream).catch(() => undefined);
    }
  });
});
