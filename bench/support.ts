/** Shared set-up of the benchmarks: a throwaway embedded Postgres and Temporal dev server on free ports. */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { createActivitiesByQueue, type ActivityDeps } from '../activities/index.js';
import { createEmailSender, createSignedWebhookSender } from '../activities/pack-approval/channels.js';
import type { PackApprovalDeps } from '../activities/pack-approval/index.js';
import { createTaskRunnerClient } from '../activities/pack-approval/task-runner.js';
import { startSimulation } from '../api/temporal/policy-simulations.js';
import { createEffectsManifestSource, loadEffectsManifest } from '../activities/sagas/effects-manifest.js';
import { createSagaIngress, type SagaIngress } from '../api/services/saga-ingress.js';
import { createTemporalFacade, type TemporalFacade } from '../api/temporal/facade.js';
import { createSagaTemporal } from '../api/temporal/sagas.js';
import { loadConfig, loadWebhookConfig, TASK_QUEUES } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { migrate } from '../db/migrate.js';
import { createPool, type Pool } from '../db/pool.js';
import { startReferenceServices, type RunningReferenceServices } from '../reference-services/server.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../stack/postgres.js';
import { startDevServer } from '../stack/temporal.js';
import type { policySimulationWorkflow } from '../workflows/policy-simulation/workflow.js';
import type { AggregateEvent, SagaView } from '../workflows/sagas/definitions.js';
import { bundleWorkflows, createWorkerHost, type WorkerHost } from '../workers/host.js';
import { freePort } from '../stack/ports.js';

export { freePort };

export const logger = createLogger({ level: 'warn', name: 'bench' });

/** A migrated Postgres in a temporary directory. */
export async function benchPostgres(): Promise<{ pool: Pool; server: EmbeddedPostgresHandle; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stellaops-bench-'));
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({
    databaseDir: join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const pool = createPool({ connectionString: server.url, applicationName: 'bench', max: 20 });
  await migrate(pool);
  return {
    pool,
    server,
    async close() {
      await pool.end();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The q-quantile (0–1) of `values` (nearest rank). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Runs `one` `count` times with `concurrency` in flight (closed loop); returns completions per second. */
export async function closedLoop(count: number, concurrency: number, one: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  return count / ((Date.now() - started) / 1000);
}

/** A Temporal client and workers on every queue of a {@link startBenchStack} server, of one data converter. */
export interface BenchWorkers {
  temporal: TemporalFacade;
  /** Prefix of the queues these workers serve (give it to the start helpers and `buildApp`). */
  taskQueuePrefix: string;
}

/**
 * Postgres, a dev server and workers on every queue, as the benchmarks need them. `addWorkers` adds another client and
 * set of workers on the same server and Postgres with a data converter (the bundle built with it, as the product's
 * workers are) on queues under their own prefix, so one process compares converters on the same stack.
 */
export async function startBenchStack(activities: Omit<ActivityDeps, 'pool' | 'logger'>) {
  const pg = await benchPostgres();
  const server = await startDevServer({ ip: '127.0.0.1', port: await freePort(), namespace: 'default' });
  const connection = await NativeConnection.connect({ address: server.address });
  const activitiesByQueue = createActivitiesByQueue({ pool: pg.pool, logger, ...activities });
  const hosts: { host: WorkerHost; running: Promise<void>; temporal: TemporalFacade }[] = [];
  const addWorkers = async (
    options: { dataConverter?: DataConverter; taskQueuePrefix?: string } = {},
  ): Promise<BenchWorkers> => {
    const { dataConverter, taskQueuePrefix = '' } = options;
    const temporal = createTemporalFacade({ address: server.address, namespace: 'default', dataConverter });
    const host = await createWorkerHost({
      connection,
      namespace: 'default',
      queues: TASK_QUEUES,
      activitiesByQueue,
      workflowBundle: await bundleWorkflows({ dataConverter }),
      logger,
      taskQueuePrefix,
      dataConverter,
    });
    hosts.push({ host, running: host.run(), temporal });
    return { temporal, taskQueuePrefix };
  };
  const { temporal } = await addWorkers();
  return {
    pool: pg.pool,
    temporal,
    addWorkers,
    async close() {
      for (const { host } of hosts) host.shutdown();
      await Promise.all(hosts.map(({ running }) => running));
      await connection.close();
      await Promise.all(hosts.map(({ temporal }) => temporal.close()));
      await server.stop();
      await pg.close();
    },
  };
}

/** What {@link startSagaBenchStack} runs: the saga parts of the product, each real. */
export interface SagaBenchStack {
  pool: Pool;
  temporal: TemporalFacade;
  /** The one routing code path of events into sagas (what `POST /api/v1/events` calls). */
  ingress: SagaIngress;
  reference: RunningReferenceServices;
  /** Gateway events the ingress failed to take and was offered again: a sign of a saturated Temporal or Postgres. */
  gatewayEventRetries(): number;
  /** Ingests one event and resolves with the final view of the instance it started, once its workflow closed. */
  runToEnd(event: AggregateEvent): Promise<SagaView>;
  close(): Promise<void>;
}

/**
 * Postgres, a dev server, the reference services (Gateway and providers) and workers on the `saga` and `effects`
 * queues with the product's own activities (bookkeeping on Postgres, effects and Gateway commands over HTTP), wired
 * as `npm start` wires them; the Gateway's events go straight into the ingress, as they would over HTTP.
 */
export async function startSagaBenchStack(options: { scanDelayMs?: number } = {}): Promise<SagaBenchStack> {
  const pg = await benchPostgres();
  const server = await startDevServer({ ip: '127.0.0.1', port: await freePort(), namespace: 'default' });
  const connection = await NativeConnection.connect({ address: server.address });
  const temporal = createTemporalFacade({ address: server.address, namespace: 'default' });
  const ingress = createSagaIngress({
    pool: pg.pool,
    logger,
    temporal: createSagaTemporal(temporal, { taskQueuePrefix: '' }),
  });
  const emitted = new Set<Promise<unknown>>();
  let closing = false;
  let retries = 0;
  // As the Gateway's emitter does over HTTP: an event the ingress could not take (Temporal or Postgres too slow under
  // the load) is offered again with a growing delay, never dropped — a saga waiting for it would never complete.
  const deliver = async (event: AggregateEvent) => {
    for (let delayMs = 250; ; delayMs = Math.min(2_000, delayMs * 2)) {
      try {
        await ingress.ingestEvents([event]);
        return;
      } catch (err) {
        if (closing) throw err;
        retries++;
        logger.debug({ err, eventId: event.eventId }, 'event not ingested, retrying');
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };
  const stopEmitting = async () => {
    closing = true;
    await Promise.allSettled([...emitted]);
  };
  const reference = await startReferenceServices({
    host: '127.0.0.1',
    port: 0,
    ...(options.scanDelayMs !== undefined && { scanDelayMs: options.scanDelayMs }),
    events: {
      emit: (event) => {
        const delivery = deliver(event)
          .catch((err: unknown) => logger.error({ err }, 'event not ingested'))
          .finally(() => emitted.delete(delivery));
        emitted.add(delivery);
      },
      close: stopEmitting,
    },
  });
  const host = await createWorkerHost({
    connection,
    namespace: 'default',
    queues: ['saga', 'effects'],
    activitiesByQueue: createActivitiesByQueue({
      pool: pg.pool,
      logger,
      policyEngineUrl: 'http://127.0.0.1:9',
      policyWebhook: loadWebhookConfig({}),
      effects: {
        manifest: createEffectsManifestSource(loadEffectsManifest({ referenceServicesUrl: reference.url })),
        gatewayUrl: reference.url,
      },
    }),
    effectsConcurrency: loadConfig({}).sagas.effectsConcurrency,
    workflowBundle: await bundleWorkflows(),
    logger,
  });
  const running = host.run();
  return {
    pool: pg.pool,
    temporal,
    ingress,
    reference,
    gatewayEventRetries: () => retries,
    async runToEnd(event) {
      const [result] = await ingress.ingestEvents([event]);
      const instance = result?.status === 'accepted' ? result.instances[0] : undefined;
      if (!instance) throw new Error(`event ${event.eventId} answered ${JSON.stringify(result)}`);
      return (await temporal.client.workflow.getHandle(instance.workflowId).result()) as SagaView;
    },
    async close() {
      host.shutdown();
      await running;
      await reference.close();
      // The services do not close a sink they were given: the deliveries still retrying end here.
      await stopEmitting();
      await connection.close();
      await temporal.close();
      await server.stop();
      await pg.close();
    },
  };
}

/** The pack-approval activities of a benchmark: mail to `inboxDir`, real webhook and Task Runner clients. */
export function benchPackApprovalDeps(inboxDir: string, linkSecret: string): Omit<PackApprovalDeps, 'pool' | 'logger'> {
  return {
    email: createEmailSender({ from: 'bench@stellaops.local', inboxDir, logger }),
    webhook: createSignedWebhookSender({ logger }),
    taskRunner: createTaskRunnerClient({ logger }),
    publicBaseUrl: 'http://127.0.0.1:3000',
    linkSecret,
    defaultLocale: 'en-US',
    defaultRecipients: ['approvers@bench.local'],
  };
}

/** Runs one policy simulation of the sample data to its end through `temporal`; throws unless it succeeded. */
export async function runBenchSimulation(temporal: TemporalFacade, taskQueuePrefix?: string): Promise<void> {
  const { doc } = await startSimulation(temporal, {
    tenantId: 'bench',
    body: {
      policyId: 'baseline-security',
      policyVersion: 3,
      inputs: { sbomSet: ['sbom-payments-api', 'sbom-web-frontend'] },
    },
    idempotencyKey: randomUUID(),
    requestedBy: 'bench',
    evaluationTimeoutSeconds: 300,
    ...(taskQueuePrefix !== undefined && { taskQueuePrefix }),
  });
  const result = await temporal.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId).result();
  if (result.status !== 'succeeded') throw new Error(`simulation ${doc.runId} did not succeed`);
}
