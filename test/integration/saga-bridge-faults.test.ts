/**
 * Fault drills of the Runner's JetStream bridge and workers, as real processes: two `saga` replicas running the
 * bridge on one shared durable consumer and two `effect` replicas (`node --import tsx workers/main.ts` each, with its
 * own operations port), a dev server, a test database and an embedded nats-server with the streams of sagas. Start
 * events are published to the aggregate stream as aggregates publish them; the reference Gateway in this process
 * publishes the events its commands cause (`Scan.Completed`) the same way, and counts every command and provider call
 * by its idempotency key.
 *
 * 1. Rolling restart: while events arrive at a steady pace, each replica in turn gets SIGTERM, drains and exits 0,
 *    and its replacement becomes ready before the next one is stopped.
 * 2. Crash: bridge and effect replicas are SIGKILLed at random moments (seeded; the seed is printed) while 500 events
 *    are processed, and started again.
 *
 * Afterwards every saga is terminal, every event was ingested once and applied once by its saga, no command or
 * provider call was applied twice, nothing was quarantined and the consumer has nothing pending or unacknowledged.
 * Recovery times and counts are printed, never asserted on.
 */
import { randomUUID } from 'node:crypto';
import type { ConsumerInfo } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  commandIdOf,
  FINAL_SAGA_STATUSES,
  sagaWorkflowId,
  type AggregateEvent,
  type SagaView,
} from '../../workflows/sagas/definitions.js';
import { eventually } from '../support/http-sinks.js';
import {
  killRunnerProcess,
  seededRandom,
  startRunnerDrillStack,
  terminateRunnerProcess,
  type RunnerDrillStack,
  type RunnerProcess,
  type RunnerSpec,
  type RunnerStop,
} from '../support/runner-processes.js';
import {
  advisoryPublished,
  exportRequested,
  MIRROR_SAGA,
  MIRROR_STEPS,
  RAPID_RESET,
  RAPID_RESET_IMAGES,
  RESCAN_SAGA,
} from '../support/sagas.js';

/** Scans complete this long after their rescan was requested, so instances wait across stops and kills. */
const SCAN_DELAY_MS = 1_000;

const REPLICAS: RunnerSpec[] = [
  { name: 'saga-1', mode: 'saga', bridge: true },
  { name: 'saga-2', mode: 'saga', bridge: true },
  { name: 'effect-1', mode: 'effect' },
  { name: 'effect-2', mode: 'effect' },
];

/** Rolling restart: 150 rescans and 50 exports, published in one slice per replica, one event per pace. */
const ROLLING = { tenant: 'acme-rolling', rescans: 150, exports: 50, paceMs: 60 } as const;
/**
 * Crash: 100 rescans (a start and three `Scan.Completed` each) and 100 exports (a start each): 500 events the bridge
 * routes; the starts go in one batch per kill, one per pace.
 */
const CRASH = { tenant: 'acme-crash', rescans: 100, exports: 100, kills: 6, paceMs: 40 } as const;
/** How long (uniformly random, in ms) after a batch started arriving its kill comes. */
const RUN_BEFORE_KILL_MS = { min: 200, max: 1_500 };
/** How long the replicas may take to finish everything after the last fault: generous, never asserted on. */
const DRAIN_DEADLINE_MS = 180_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const spread = (values: number[]) =>
  values.length === 0
    ? 'n/a'
    : `min ${seconds(Math.min(...values))}, median ${seconds(median(values))}, max ${seconds(Math.max(...values))}`;

let stack: RunnerDrillStack;
/** The running replica of each spec, by name. */
const replicas = new Map<string, RunnerProcess>();

beforeAll(async () => {
  stack = await startRunnerDrillStack({
    scanDelayMs: SCAN_DELAY_MS,
    env: {
      // A message a killed replica held comes back after this; working acks keep a slow one with its replica.
      NATS_BRIDGE_ACK_WAIT_SECONDS: '10',
      // Deliveries cut short by kills are not poison messages: the drill must not quarantine any.
      NATS_BRIDGE_MAX_DELIVER: '20',
      NATS_BRIDGE_BATCH: '20',
      WORKER_SHUTDOWN_GRACE_SECONDS: '10',
    },
  });
  const started = await Promise.all(REPLICAS.map((spec) => stack.start(spec)));
  for (const replica of started) replicas.set(replica.spec.name, replica);
}, 300_000);

afterAll(async () => {
  await stack?.close();
});

/** The sagas of one drill: their start events and what the reference services must see of them. */
interface DrillPlan {
  tenant: string;
  starts: { event: AggregateEvent; sagaName: string; correlationId: string }[];
  rescans: string[];
  bundles: string[];
  expectedCommands: string[];
  expectedEffects: string[];
}

/** `rescans` rescans and `exports` exports of `tenant`, interleaved so every slice carries both sagas. */
function planDrill(tenant: string, rescans: number, exports: number): DrillPlan {
  const rescanIds = Array.from({ length: rescans }, (_, i) => `rescan-${i}-${randomUUID().slice(0, 8)}`);
  const bundleIds = Array.from({ length: exports }, (_, i) => `bundle-${i}-${randomUUID().slice(0, 8)}`);
  const rescanStarts = rescanIds.map((correlationId) => ({
    event: advisoryPublished(RAPID_RESET, {}, { tenantId: tenant, correlationId }),
    sagaName: RESCAN_SAGA,
    correlationId,
  }));
  const exportStarts = bundleIds.map((bundleId) => ({
    event: exportRequested(bundleId, { tenantId: tenant }),
    sagaName: MIRROR_SAGA,
    correlationId: bundleId,
  }));
  // The exports spread evenly between the rescans.
  const starts: DrillPlan['starts'] = [];
  let placed = 0;
  for (const [i, start] of rescanStarts.entries()) {
    starts.push(start);
    for (; placed < Math.floor(((i + 1) * exports) / rescans); placed++) starts.push(exportStarts[placed]!);
  }
  starts.push(...exportStarts.slice(placed));
  const id = (sagaName: string, correlationId: string, step: string) =>
    commandIdOf({ tenantId: tenant, sagaName, correlationId }, step);
  return {
    tenant,
    starts,
    rescans: rescanIds,
    bundles: bundleIds,
    expectedCommands: rescanIds.flatMap((c) =>
      RAPID_RESET_IMAGES.map((image) => id(RESCAN_SAGA, c, `rescan:${image}`)),
    ),
    expectedEffects: [
      ...rescanIds.map((c) => id(RESCAN_SAGA, c, 'resolve-impact')),
      ...bundleIds.flatMap((b) => MIRROR_STEPS.map((step) => id(MIRROR_SAGA, b, step))),
    ],
  };
}

/** Publishes `events` one per `paceMs` in the background; `count()` says how many are stored so far. */
function publishSteadily(events: readonly AggregateEvent[], paceMs: number) {
  let count = 0;
  const done = (async () => {
    for (const event of events) {
      const next = sleep(paceMs);
      await stack.publish([event]);
      count++;
      await next;
    }
  })();
  return { done, count: () => count };
}

/** Only the entries of `counts` whose key belongs to `tenant` (command ids start with the tenant). */
function ofTenant(counts: Record<string, number>, tenant: string): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(`${tenant}:`)));
}

/**
 * Samples progress every 250 ms — calls arriving at the reference services, messages acknowledged on the consumer —
 * so the report can say how soon work went on after a fault. `after(t)`: the first moment after `t` progress was seen.
 */
function watchProgress() {
  const arrivals = () =>
    sum(stack.reference.counters.commandsReceived()) + sum(stack.reference.counters.providerCalls());
  const changes: number[] = [];
  let last = '';
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const info = await stack.consumer().catch(() => undefined);
      const now = `${arrivals()}|${info?.ack_floor.stream_seq ?? ''}`;
      if (last !== '' && now !== last) changes.push(Date.now());
      last = now;
      await sleep(250);
    }
  })();
  return {
    after: (t: number) => changes.find((c) => c > t),
    async stop() {
      stopped = true;
      await sampling;
    },
  };
}

/**
 * Waits until every saga of `plan` is terminal and the bridge's consumer has nothing pending or unacknowledged, then
 * asserts the drill's outcome: every saga completed with its full result, every event ingested and applied once, no
 * command or provider call applied twice, nothing quarantined. Answers the counts for the report.
 */
async function settleAndVerify(plan: DrillPlan, before: ConsumerInfo, describeState: () => string) {
  const finalStatuses = FINAL_SAGA_STATUSES as readonly string[];
  const instances = await eventually(async () => {
    const { rows } = await stack.db.pool.query<{ saga_name: string; correlation_id: string; status: string }>(
      `SELECT saga_name, correlation_id, status FROM runner.saga_instances WHERE tenant_id = $1`,
      [plan.tenant],
    );
    return rows.length === plan.starts.length && rows.every((r) => finalStatuses.includes(r.status)) ? rows : undefined;
  }, DRAIN_DEADLINE_MS).catch((error: unknown) => {
    throw new Error(`${String(error)}: not every saga of ${plan.tenant} is terminal\n${describeState()}`);
  });
  const settledAt = Date.now();
  await stack.reference.emitter.idle();
  const consumer = await eventually(async () => {
    const info = await stack.consumer();
    return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
  }, DRAIN_DEADLINE_MS).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: the consumer still holds messages: ${JSON.stringify(await stack.consumer())}`);
  });
  // Every event the Gateway's commands caused reached the stream.
  expect(stack.reference.emitter.stats()).toMatchObject({ pending: 0, dropped: 0 });

  // Every saga completed, in the projection and in Temporal, with the result of every step.
  expect(instances.filter((r) => r.status !== 'completed')).toEqual([]);
  const views: SagaView[] = [];
  for (let i = 0; i < plan.starts.length; i += 25) {
    views.push(
      ...(await Promise.all(
        plan.starts
          .slice(i, i + 25)
          .map(
            (s) =>
              stack.client.workflow
                .getHandle(sagaWorkflowId(plan.tenant, s.sagaName, s.correlationId))
                .result() as Promise<SagaView>,
          ),
      )),
    );
  }
  for (const view of views.filter((v) => v.sagaName === RESCAN_SAGA)) {
    expect(view).toMatchObject({ status: 'completed', appliedEvents: 4, compensations: [] });
    expect(view.state).toMatchObject({ summary: { impacted: 3, completed: 3, outstanding: 0 } });
  }
  for (const view of views.filter((v) => v.sagaName === MIRROR_SAGA)) {
    expect(view).toMatchObject({ status: 'completed', appliedEvents: 1, compensations: [] });
    expect(view.state).toMatchObject({ phase: 'published' });
  }
  expect(views.filter((v) => v.sagaName === RESCAN_SAGA)).toHaveLength(plan.rescans.length);
  expect(views.filter((v) => v.sagaName === MIRROR_SAGA)).toHaveLength(plan.bundles.length);

  // Every event the bridge consumes was ingested once: each start, and one Scan.Completed per image of each rescan
  // (the Gateway emits one per applied RequestRescan), nothing else.
  const { rows: ingested } = await stack.db.pool.query<{
    event_id: string;
    event_type: string;
    correlation_id: string | null;
    image_id: string | null;
  }>(
    `SELECT event_id, event->>'eventType' AS event_type, event->>'correlationId' AS correlation_id,
            event->'payload'->>'imageId' AS image_id
       FROM runner.ingested_events WHERE tenant_id = $1`,
    [plan.tenant],
  );
  const completedScans = ingested.filter((r) => r.event_type === 'Scan.Completed');
  const others = ingested.filter((r) => r.event_type !== 'Scan.Completed');
  expect(others.map((r) => r.event_id).sort()).toEqual(plan.starts.map((s) => s.event.eventId).sort());
  expect(completedScans.map((r) => `${r.correlation_id}|${r.image_id}`).sort()).toEqual(
    plan.rescans.flatMap((c) => RAPID_RESET_IMAGES.map((image) => `${c}|${image}`)).sort(),
  );

  // Each one applied once by its saga: one `applied` row per (saga, instance, event) in the event log.
  const key = (sagaName: string, correlationId: string, eventId: string) => `${sagaName}|${correlationId}|${eventId}`;
  const { rows: logged } = await stack.db.pool.query<{ saga_name: string; correlation_id: string; event_id: string }>(
    `SELECT saga_name, correlation_id, event_id FROM runner.saga_event_log WHERE tenant_id = $1 AND outcome = 'applied'`,
    [plan.tenant],
  );
  const routed = [
    ...plan.starts.map((s) => key(s.sagaName, s.correlationId, s.event.eventId)),
    ...completedScans.map((r) => key(RESCAN_SAGA, r.correlation_id!, r.event_id)),
  ];
  expect(logged.map((r) => key(r.saga_name, r.correlation_id, r.event_id)).sort()).toEqual([...routed].sort());
  const { rows: quarantined } = await stack.db.pool.query<{ event_id: string | null; error: string }>(
    `SELECT event_id, error FROM runner.quarantined_events WHERE tenant_id = $1`,
    [plan.tenant],
  );
  expect(quarantined).toEqual([]);

  // No duplicate effects: each command and provider call applied exactly once per idempotency key.
  const commandsReceived = ofTenant(stack.reference.counters.commandsReceived(), plan.tenant);
  const commandsApplied = ofTenant(stack.reference.counters.commandsApplied(), plan.tenant);
  const providerCalls = ofTenant(stack.reference.counters.providerCalls(), plan.tenant);
  const providerApplied = ofTenant(stack.reference.counters.providerApplied(), plan.tenant);
  const once = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, 1]));
  expect(commandsApplied).toEqual(once(plan.expectedCommands));
  expect(providerApplied).toEqual(once(plan.expectedEffects));
  expect(Object.keys(commandsReceived).sort()).toEqual([...plan.expectedCommands].sort());
  expect(Object.keys(providerCalls).sort()).toEqual([...plan.expectedEffects].sort());

  const extra = (counts: Record<string, number>) => sum(counts) - Object.keys(counts).length;
  return {
    settledAt,
    lines: [
      `  events: ${routed.length} routed (${plan.starts.length} starts, ${completedScans.length} Scan.Completed), ` +
        `${ingested.length} ingested, ${logged.length} applied, ${quarantined.length} quarantined; consumer: ` +
        `${consumer.delivered.consumer_seq - before.delivered.consumer_seq} deliveries ` +
        `(${consumer.delivered.consumer_seq - before.delivered.consumer_seq - routed.length} redeliveries), ` +
        `${consumer.num_pending} pending, ${consumer.num_ack_pending} unacknowledged`,
      `  Gateway commands: ${sum(commandsReceived)} received for ${Object.keys(commandsReceived).length} ids ` +
        `(${extra(commandsReceived)} repeats), ${sum(commandsApplied)} applied (${extra(commandsApplied)} duplicates)`,
      `  provider calls: ${sum(providerCalls)} received for ${Object.keys(providerCalls).length} keys ` +
        `(${extra(providerCalls)} repeats), ${sum(providerApplied)} applied (${extra(providerApplied)} duplicates)`,
    ],
  };
}

/** The output of every running replica, for the message of a failing wait. */
function replicaOutputs(): string {
  return [...replicas.values()].map((r) => `--- ${r.spec.name} ---\n${r.output().slice(-4_000)}`).join('\n');
}

describe('the JetStream bridge and the workers as processes', () => {
  it('lose and duplicate nothing while every replica in turn is stopped with SIGTERM and replaced', async () => {
    const plan = planDrill(ROLLING.tenant, ROLLING.rescans, ROLLING.exports);
    const slice = Math.ceil(plan.starts.length / REPLICAS.length);
    const stops: {
      name: string;
      stop: RunnerStop;
      startMs: number;
      publishedBefore: number;
      unacknowledged: number;
      during: number;
    }[] = [];
    const consumerBefore = await stack.consumer();
    const startedAt = Date.now();
    let published = 0;
    for (const [i, spec] of REPLICAS.entries()) {
      // This replica's slice arrives at a steady pace while it drains and its replacement starts.
      const events = plan.starts.slice(i * slice, (i + 1) * slice).map((s) => s.event);
      const publisher = publishSteadily(events, ROLLING.paceMs);
      // Work in flight before the signal: a quarter of the slice is in the stream.
      await eventually(() => (publisher.count() >= Math.ceil(events.length / 4) ? true : undefined), 60_000);
      const before = published + publisher.count();
      const unacknowledged = (await stack.consumer()).num_ack_pending;
      const stop = await terminateRunnerProcess(replicas.get(spec.name)!);
      expect({ replica: spec.name, code: stop.code, signal: stop.signal }).toEqual({
        replica: spec.name,
        code: 0,
        signal: null,
      });
      const replacement = await stack.start(spec);
      replicas.set(spec.name, replacement);
      await publisher.done;
      published += events.length;
      stops.push({
        name: spec.name,
        stop,
        startMs: replacement.readyAt - replacement.spawnedAt,
        publishedBefore: before,
        unacknowledged,
        during: published - before,
      });
    }
    expect(published).toBe(plan.starts.length);

    const result = await settleAndVerify(plan, consumerBefore, replicaOutputs);
    console.log(
      [
        `rolling restart: ${plan.starts.length} sagas (${plan.rescans.length} ${RESCAN_SAGA}, ${plan.bundles.length} ` +
          `${MIRROR_SAGA}), one start per ${ROLLING.paceMs} ms, ${stops.length} replicas stopped with SIGTERM and replaced`,
        ...stops.map(
          (s) =>
            `  ${s.name}: SIGTERM after ${s.publishedBefore} starts (unacknowledged messages: ${s.unacknowledged}), ` +
            `drained and exited ${s.stop.code} in ` +
            `${seconds(s.stop.tookMs)}; replacement ready in ${seconds(s.startMs)}; ${s.during} starts published meanwhile`,
        ),
        `  duration: ${seconds(result.settledAt - startedAt)} from the first start to every saga terminal`,
        ...result.lines,
      ].join('\n'),
    );
  }, 360_000);

  it('lose and duplicate nothing while bridge and effect replicas are SIGKILLed at random and restarted', async () => {
    const plan = planDrill(CRASH.tenant, CRASH.rescans, CRASH.exports);
    expect(plan.starts.length + plan.rescans.length * RAPID_RESET_IMAGES.length).toBe(500);
    const batchSize = Math.ceil(plan.starts.length / CRASH.kills);
    const batches = Array.from({ length: CRASH.kills }, (_, b) =>
      plan.starts.slice(b * batchSize, (b + 1) * batchSize).map((s) => s.event),
    );
    const seed = Math.floor(Math.random() * 2 ** 32);
    const next = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const kills: { names: string[]; at: number; unacknowledged: number; readyMs: number }[] = [];
    const consumerBefore = await stack.consumer();
    const progress = watchProgress();
    const startedAt = Date.now();
    for (let k = 0; k < CRASH.kills; k++) {
      // Each batch arrives at a steady pace across the kill, so the victims hold messages and tasks when they die.
      const publisher = publishSteadily(batches[k]!, CRASH.paceMs);
      await sleep(RUN_BEFORE_KILL_MS.min + next() * (RUN_BEFORE_KILL_MS.max - RUN_BEFORE_KILL_MS.min));
      // Bridge and effect replicas in turn; now and then both replicas of the kind at once.
      const mode = k % 2 === 0 ? 'saga' : 'effect';
      const ofMode = REPLICAS.filter((spec) => spec.mode === mode);
      const victims = next() < 0.25 ? ofMode : [pick(ofMode)];
      const unacknowledged = (await stack.consumer()).num_ack_pending;
      const at = Date.now();
      await Promise.all(victims.map((spec) => killRunnerProcess(replicas.get(spec.name)!)));
      const restarted = await Promise.all(victims.map((spec) => stack.start(spec)));
      for (const replica of restarted) replicas.set(replica.spec.name, replica);
      await publisher.done;
      kills.push({
        names: victims.map((spec) => spec.name),
        at,
        unacknowledged,
        readyMs: Math.max(...restarted.map((r) => r.readyAt)) - at,
      });
    }
    const lastKillAt = kills.at(-1)!.at;

    let result: Awaited<ReturnType<typeof settleAndVerify>>;
    try {
      result = await settleAndVerify(plan, consumerBefore, replicaOutputs);
    } finally {
      await progress.stop();
    }
    const resumed = kills.map((k) => (progress.after(k.at) ?? NaN) - k.at);
    console.log(
      [
        `crash (seed ${seed}): ${plan.starts.length} sagas (${plan.rescans.length} ${RESCAN_SAGA}, ${plan.bundles.length} ` +
          `${MIRROR_SAGA}), ${kills.length} SIGKILLs`,
        ...kills.map(
          (k, i) =>
            `  SIGKILL ${k.names.join(' + ')} (unacknowledged messages: ${k.unacknowledged}): work went on after ` +
            `${seconds(resumed[i]!)}, restarted and ready after ${seconds(k.readyMs)}`,
        ),
        `  kill → next progress (a call or an acknowledgement): ${spread(resumed.filter((ms) => !Number.isNaN(ms)))}`,
        `  kill → replacement ready: ${spread(kills.map((k) => k.readyMs))}`,
        `  duration: ${seconds(result.settledAt - startedAt)} from the first start to every saga terminal ` +
          `(${seconds(result.settledAt - lastKillAt)} after the last kill)`,
        ...result.lines,
      ].join('\n'),
    );
  }, 360_000);
});
