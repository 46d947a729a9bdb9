/**
 * The sagas' crash test: 200 instances of both sagas (150 advisory rescans, 50 mirror bundle exports) run while the
 * worker process — `tsx workers/main.ts` serving the saga and effects queues — is SIGKILLed and started again at
 * random moments, 11 times, the last worker left running. Real parts throughout: a dev server, a test database, the
 * reference Gateway and providers in this process (their counters see every arrival), the ingress of the API with
 * the Gateway's events going back into it. Afterwards every instance has completed, every event is in the saga
 * event log (or recorded as late), and no command or provider call was applied twice, however often a crash made it
 * arrive again.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSagaIngress, type SagaIngress } from '../../api/services/saga-ingress.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { createSagaTemporal } from '../../api/temporal/sagas.js';
import { createLogger } from '../../core/logger.js';
import type { EventSink } from '../../reference-services/emitter.js';
import { startReferenceServices, type RunningReferenceServices } from '../../reference-services/server.js';
import {
  commandIdOf,
  FINAL_SAGA_STATUSES,
  sagaWorkflowId,
  type AggregateEvent,
  type SagaView,
} from '../../workflows/sagas/definitions.js';
import { eventually } from '../support/http-sinks.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { seededRandom } from '../support/runner-processes.js';
import {
  advisoryPublished,
  exportRequested,
  MIRROR_SAGA,
  MIRROR_STEPS,
  RAPID_RESET,
  RAPID_RESET_IMAGES,
  RESCAN_SAGA,
} from '../support/sagas.js';
import { createDevServerEnv } from '../support/temporal.js';
import {
  killAllWorkerProcesses,
  killWorkerProcess,
  startWorkerProcess,
  workerProcessDataConverter,
  workerProcessEnv,
  type WorkerProcess,
} from '../support/worker-process.js';

const TENANT = 'acme';

const RESCANS = 150;
const EXPORTS = 50;
/** Start events go in in this many batches, one per crash cycle, alternately just before and just after a kill. */
const BATCHES = 10;
const KILLS = 11;
/** A worker runs this long (uniformly random, in ms) before it is killed: long enough to get work in flight. */
const RUN_BEFORE_KILL_MS = { min: 1_000, max: 4_000 };
/** Scans complete this long after their rescan was requested, so instances wait across kills. */
const SCAN_DELAY_MS = 1_000;
/** How long the last worker may take to finish everything after the last kill: generous, never asserted on. */
const DRAIN_DEADLINE_MS = 240_000;
const TEST_TIMEOUT_MS = 480_000;

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let temporal: TemporalFacade;
let reference: RunningReferenceServices;
let ingress: SagaIngress;
let dataDir: string;
let referencePort: number;

/** Every event the reference Gateway emitted, and the ingestions still running. */
const emitted: AggregateEvent[] = [];
const ingesting = new Set<Promise<void>>();
/** Events the ingress could not take even after retries (a lost event: must stay empty). */
const notIngested: { event: AggregateEvent; error: string }[] = [];

/** Ingests one Gateway event like the reference emitter would over HTTP: retried while the ingress fails. */
async function ingestEmitted(event: AggregateEvent): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      await ingress.ingestEvents([event]);
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  notIngested.push({ event, error: String(lastError) });
}

/** The Gateway's events go into the ingress in this process, as `POST /api/v1/events` would take them. */
const sink: EventSink = {
  emit(event) {
    emitted.push(event);
    const ingestion: Promise<void> = ingestEmitted(event).finally(() => ingesting.delete(ingestion));
    ingesting.add(ingestion);
  },
  async close() {
    while (ingesting.size > 0) await Promise.allSettled([...ingesting]);
  },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const spread = (values: number[]) =>
  values.length === 0
    ? 'n/a'
    : `min ${seconds(Math.min(...values))}, median ${seconds(median(values))}, max ${seconds(Math.max(...values))}`;

beforeAll(async () => {
  [env, db, referencePort, dataDir] = await Promise.all([
    // A dev server of this file's own: the worker process serves the unprefixed queues.
    createDevServerEnv(),
    createTestDatabase(),
    freePort(),
    mkdtemp(join(tmpdir(), 'stellaops-saga-crash-')),
  ]);
  temporal = createTemporalFacade({
    address: env.address,
    namespace: env.namespace ?? 'default',
    dataConverter: await workerProcessDataConverter(dataDir),
  });
  ingress = createSagaIngress({
    pool: db.pool,
    logger: createLogger({ level: 'warn', name: 'saga-crash' }),
    temporal: createSagaTemporal(temporal, { taskQueuePrefix: '' }),
  });
  // On a fixed port: the worker finds the providers through REFERENCE_SERVICES_PORT (the bundled manifest).
  reference = await startReferenceServices({
    host: '127.0.0.1',
    port: referencePort,
    scanDelayMs: SCAN_DELAY_MS,
    events: sink,
  });
});

afterAll(async () => {
  await killAllWorkerProcesses();
  await reference?.close();
  await sink.close();
  await temporal?.close();
  await db?.drop();
  await env?.teardown();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('sagas while the worker process is SIGKILLed and restarted 11 times', () => {
  it(
    'complete all 200 instances with no event lost and no command or provider call applied twice',
    async () => {
      const workerEnv = {
        ...workerProcessEnv({ dataDir, env, db }),
        WORKER_QUEUES: 'saga,effects',
        GATEWAY_URL: reference.url,
        REFERENCE_SERVICES_PORT: String(referencePort),
        // The bundled manifest, whatever the environment running the tests points at.
        EFFECTS_MANIFEST: '',
      };

      // 150 rescans and 50 exports, interleaved so every batch carries both sagas.
      const rescans = Array.from({ length: RESCANS }, (_, i) => `crash-rescan-${i}-${randomUUID().slice(0, 8)}`);
      const bundles = Array.from({ length: EXPORTS }, (_, i) => `crash-bundle-${i}-${randomUUID().slice(0, 8)}`);
      const starts: { event: AggregateEvent; sagaName: string; correlationId: string }[] = [];
      for (let i = 0; i < RESCANS; i++) {
        const correlationId = rescans[i]!;
        starts.push({
          event: advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }),
          sagaName: RESCAN_SAGA,
          correlationId,
        });
        if (i % 3 === 2) {
          const bundleId = bundles[(i - 2) / 3]!;
          starts.push({
            event: exportRequested(bundleId, { tenantId: TENANT }),
            sagaName: MIRROR_SAGA,
            correlationId: bundleId,
          });
        }
      }
      expect(starts).toHaveLength(RESCANS + EXPORTS);
      const batchSize = Math.ceil(starts.length / BATCHES);
      const batches = Array.from({ length: BATCHES }, (_, b) => starts.slice(b * batchSize, (b + 1) * batchSize));
      const post = async (batch: typeof starts) => {
        const answers = await ingress.ingestEvents(batch.map((s) => s.event));
        expect(answers.map((a) => a.status)).toEqual(batch.map(() => 'accepted'));
      };

      // Every outbound arrival at the reference services, sampled, to see when work resumes after each kill.
      const arrivals = () => sum(reference.counters.commandsReceived()) + sum(reference.counters.providerCalls());
      const changes: number[] = [];
      let last = arrivals();
      const sampler = setInterval(() => {
        const now = arrivals();
        if (now !== last) changes.push(Date.now());
        last = now;
      }, 50);

      const seed = Math.floor(Math.random() * 2 ** 32);
      const next = seededRandom(seed);
      const kills: number[] = [];
      const restarts: number[] = [];
      /** The worker started after each kill. */
      const successors: WorkerProcess[] = [];
      const startedAt = Date.now();
      try {
        let worker: WorkerProcess = await startWorkerProcess(workerEnv);
        restarts.push(worker.readyAt - worker.spawnedAt);
        for (let k = 0; k < KILLS; k++) {
          const batch = batches[k];
          // Half the batches arrive while a worker runs, the other half while none does.
          if (batch && k % 2 === 0) await post(batch);
          await sleep(RUN_BEFORE_KILL_MS.min + next() * (RUN_BEFORE_KILL_MS.max - RUN_BEFORE_KILL_MS.min));
          kills.push(await killWorkerProcess(worker));
          if (batch && k % 2 === 1) await post(batch);
          worker = await startWorkerProcess(workerEnv);
          restarts.push(worker.readyAt - worker.spawnedAt);
          successors.push(worker);
        }
        const lastKillAt = kills.at(-1)!;

        // Every instance reaches a final status in the projection...
        const finalStatuses = FINAL_SAGA_STATUSES as readonly string[];
        const instances = await eventually(async () => {
          const { rows } = await db.pool.query<{ saga_name: string; correlation_id: string; status: string }>(
            `SELECT saga_name, correlation_id, status FROM runner.saga_instances WHERE tenant_id = $1`,
            [TENANT],
          );
          return rows.length === starts.length && rows.every((r) => finalStatuses.includes(r.status))
            ? rows
            : undefined;
        }, DRAIN_DEADLINE_MS).catch((error: unknown) => {
          throw new Error(`${String(error)}: not every instance finished; last worker's output:\n${worker.output()}`);
        });
        const finishedAt = Date.now();
        clearInterval(sampler);
        await sink.close();

        // ...and in Temporal, where each workflow returned its completed view.
        expect(instances.filter((r) => r.status !== 'completed')).toEqual([]);
        const views: SagaView[] = [];
        for (let i = 0; i < starts.length; i += 20) {
          views.push(
            ...(await Promise.all(
              starts
                .slice(i, i + 20)
                .map(
                  (s) =>
                    temporal.client.workflow
                      .getHandle(sagaWorkflowId(TENANT, s.sagaName, s.correlationId))
                      .result() as Promise<SagaView>,
                ),
            )),
          );
        }
        const rescanViews = views.filter((v) => v.sagaName === RESCAN_SAGA);
        const exportViews = views.filter((v) => v.sagaName === MIRROR_SAGA);
        expect(rescanViews).toHaveLength(RESCANS);
        expect(exportViews).toHaveLength(EXPORTS);
        for (const view of rescanViews) {
          expect(view).toMatchObject({ status: 'completed', appliedEvents: 4, compensations: [] });
          expect(view.state).toMatchObject({ summary: { impacted: 3, completed: 3, outstanding: 0 } });
        }
        for (const view of exportViews) {
          expect(view).toMatchObject({ status: 'completed', appliedEvents: 1, compensations: [] });
          expect(view.state).toMatchObject({ phase: 'published' });
        }

        // No event lost: every event posted or emitted was ingested, and every one a saga triggers on is in that
        // saga's event log as applied, or recorded as late (it came after its instance ended).
        expect(notIngested).toEqual([]);
        const completedScans = emitted.filter((e) => e.eventType === 'Scan.Completed');
        expect(completedScans).toHaveLength(RESCANS * RAPID_RESET_IMAGES.length);
        const { rows: ingested } = await db.pool.query<{ event_id: string }>(
          `SELECT event_id FROM runner.ingested_events WHERE tenant_id = $1`,
          [TENANT],
        );
        const ingestedIds = new Set(ingested.map((r) => r.event_id));
        const everyEvent = [...starts.map((s) => s.event), ...emitted];
        expect(everyEvent.filter((e) => !ingestedIds.has(e.eventId)).map((e) => e.eventId)).toEqual([]);
        const key = (sagaName: string, correlationId: string, eventId: string) =>
          `${sagaName}|${correlationId}|${eventId}`;
        const { rows: logged } = await db.pool.query<{ saga_name: string; correlation_id: string; event_id: string }>(
          `SELECT saga_name, correlation_id, event_id FROM runner.saga_event_log
            WHERE tenant_id = $1 AND outcome = 'applied'`,
          [TENANT],
        );
        const { rows: late } = await db.pool.query<{ saga_name: string; correlation_id: string; event_id: string }>(
          `SELECT saga_name, correlation_id, event_id FROM runner.unmatched_events WHERE tenant_id = $1 AND kind = 'late'`,
          [TENANT],
        );
        const applied = new Set(logged.map((r) => key(r.saga_name, r.correlation_id, r.event_id)));
        const recordedLate = new Set(late.map((r) => key(r.saga_name, r.correlation_id, r.event_id)));
        const routed = [
          ...starts.map((s) => key(s.sagaName, s.correlationId, s.event.eventId)),
          ...completedScans.map((e) => key(RESCAN_SAGA, e.correlationId!, e.eventId)),
        ];
        const lost = routed.filter((k) => !applied.has(k) && !recordedLate.has(k));
        expect(lost).toEqual([]);
        expect(logged).toHaveLength(routed.length - late.length);

        // No duplicates: each command and each provider call applied exactly once per commandId, whatever arrived.
        const expectedCommands = rescans.flatMap((correlationId) =>
          RAPID_RESET_IMAGES.map((image) =>
            commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, `rescan:${image}`),
          ),
        );
        const expectedEffects = [
          ...rescans.map((correlationId) =>
            commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, 'resolve-impact'),
          ),
          ...bundles.flatMap((bundleId) =>
            MIRROR_STEPS.map((step) =>
              commandIdOf({ tenantId: TENANT, sagaName: MIRROR_SAGA, correlationId: bundleId }, step),
            ),
          ),
        ];
        const commandsReceived = reference.counters.commandsReceived();
        const commandsApplied = reference.counters.commandsApplied();
        const providerCalls = reference.counters.providerCalls();
        const providerApplied = reference.counters.providerApplied();
        const once = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, 1]));
        expect(commandsApplied).toEqual(once(expectedCommands));
        expect(providerApplied).toEqual(once(expectedEffects));
        expect(Object.keys(commandsReceived).sort()).toEqual([...expectedCommands].sort());
        expect(Object.keys(providerCalls).sort()).toEqual([...expectedEffects].sort());

        expect(kills).toHaveLength(KILLS);
        // The next worker polls once its workers exist: an arrival before that is a request the killed worker had
        // sent, read by the reference services after the kill.
        const resumptions = kills.flatMap((killedAt, i) => {
          const successor = successors[i]!;
          const resumed = changes.find((t) => t >= successor.readyAt);
          const nextKill = kills[i + 1] ?? finishedAt;
          return resumed !== undefined && resumed <= nextKill
            ? [{ afterKill: resumed - killedAt, afterReady: resumed - successor.readyAt }]
            : [];
        });
        const repeated = (counts: Record<string, number>) => Object.values(counts).filter((n) => n > 1).length;
        const extra = (counts: Record<string, number>) => sum(counts) - Object.keys(counts).length;
        console.log(
          [
            `saga crash test (seed ${seed}): ${starts.length} instances (${RESCANS} ${RESCAN_SAGA}, ${EXPORTS} ${MIRROR_SAGA}), ` +
              `${kills.length} SIGKILLs of the worker process group, ${restarts.length} worker starts`,
            `  duration: ${seconds(finishedAt - startedAt)} from the first start to every instance final ` +
              `(${seconds(finishedAt - lastKillAt)} after the last kill)`,
            `  worker start (spawn → workers created): ${spread(restarts)}`,
            `  recovery, ${resumptions.length} of ${kills.length} kills with work pending: kill → first outbound ` +
              `call of the next worker ${spread(resumptions.map((r) => r.afterKill))}; its workers created → that ` +
              `call ${spread(resumptions.map((r) => r.afterReady))}`,
            `  Gateway commands: ${sum(commandsReceived)} received for ${Object.keys(commandsReceived).length} ` +
              `commandIds (${extra(commandsReceived)} repeats, ${repeated(commandsReceived)} ids received more than once); ` +
              `applied ${sum(commandsApplied)}, duplicates applied ${extra(commandsApplied)}`,
            `  provider calls: ${sum(providerCalls)} received for ${Object.keys(providerCalls).length} ` +
              `Idempotency-Keys (${extra(providerCalls)} repeats, ${repeated(providerCalls)} keys received more than once); ` +
              `applied ${sum(providerApplied)}, duplicates applied ${extra(providerApplied)}`,
            `  events: ${everyEvent.length} ingested (${starts.length} start, ${emitted.length} from the Gateway), ` +
              `${routed.length} routed to sagas: ${logged.length} in the saga event log, ${late.length} late, ${lost.length} lost`,
          ].join('\n'),
        );
      } finally {
        clearInterval(sampler);
      }
    },
    TEST_TIMEOUT_MS,
  );
});
