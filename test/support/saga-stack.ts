/**
 * Sagas on real parts for workflow tests: the saga and effects workers with the real bookkeeping, effect and Gateway
 * activities, the reference services (Gateway and providers, with fault injection) on loopback, and the ingress of
 * the API (the one routing code path) — the Gateway's events go straight into it, as they would over HTTP, or, with
 * `publishTo`, to the aggregate stream, for a JetStream bridge to route.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { createActivitiesByQueue } from '../../activities/index.js';
import { createEffectsManifestSource, loadEffectsManifest } from '../../activities/sagas/effects-manifest.js';
import { createSagaIngress, type IngestResult, type SagaIngress } from '../../api/services/saga-ingress.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { createSagaTemporal } from '../../api/temporal/sagas.js';
import { loadWebhookConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import {
  startReferenceServices,
  type ReferenceServicesOptions,
  type RunningReferenceServices,
} from '../../reference-services/server.js';
import { getSagaQuery, type AggregateEvent, type SagaView } from '../../workflows/sagas/definitions.js';
import { createWorkerHost, type WorkerHost } from '../../workers/host.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { uniqueName, workflowBundle } from './temporal.js';

/** A running saga stack. */
export interface SagaStack {
  ingress: SagaIngress;
  temporal: TemporalFacade;
  reference: RunningReferenceServices;
  taskQueuePrefix: string;
  /** Ingests `events` like `POST /api/v1/events` does. */
  post(...events: AggregateEvent[]): Promise<IngestResult[]>;
  /** The instance's view (query). */
  view(workflowId: string): Promise<SagaView>;
  /** Resolves with the final view once the instance's workflow has closed. */
  result(workflowId: string): Promise<SagaView>;
  /** Sets a fault of the reference providers (`PUT /control/faults`). */
  fault(fault: {
    effect: string;
    mode: 'reject' | 'unavailable' | 'hang';
    key?: string;
    times?: number;
  }): Promise<void>;
  /** Starts the workers again after {@link stopWorkers} (crash and restart drills). */
  startWorkers(): Promise<void>;
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the stack on `env` and `pool`; `reference` options go to the reference services. */
export async function startSagaStack(
  env: TestWorkflowEnvironment,
  pool: Pool,
  options: {
    reference?: Omit<ReferenceServicesOptions, 'events' | 'faults'>;
    effectsConcurrency?: number;
    /** The Gateway publishes its events to the aggregate stream under `subjectPrefix` instead of ingesting them. */
    publishTo?: { nats: NatsConnection; subjectPrefix: string };
    /** Worker hosts polling the same task queues (default 1), like replicas of the worker process. */
    workerHosts?: number;
  } = {},
): Promise<SagaStack> {
  const logger = createLogger({ level: 'warn', name: 'saga-test' });
  const taskQueuePrefix = `${uniqueName('s')}-`;
  const temporal = createTemporalFacade({ address: env.address, namespace: env.namespace ?? 'default' });
  const ingress = createSagaIngress({ pool, logger, temporal: createSagaTemporal(temporal, { taskQueuePrefix }) });
  const emitted: Promise<unknown>[] = [];
  let closing = false;
  // Like the Gateway's own emitter: an event the ingress could not take (a slow Temporal under load) is offered
  // again with backoff, never dropped, so no saga waits for an event that was lost on the way.
  const ingestUntilTaken = async (event: AggregateEvent): Promise<void> => {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        await ingress.ingestEvents([event]);
        return;
      } catch (err) {
        if (closing) return logger.error({ err }, 'event not ingested');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };
  const reference = await startReferenceServices({
    host: '127.0.0.1',
    port: 0,
    ...options.reference,
    faults: true,
    events: options.publishTo ?? {
      emit: (event) => {
        emitted.push(ingestUntilTaken(event));
      },
      close: async () => {
        await Promise.allSettled(emitted);
      },
    },
  });
  const manifest = loadEffectsManifest({ referenceServicesUrl: reference.url });
  const activitiesByQueue = createActivitiesByQueue({
    pool,
    logger,
    policyEngineUrl: 'http://127.0.0.1:9',
    policyWebhook: loadWebhookConfig({}),
    effects: { manifest: createEffectsManifestSource(manifest), gatewayUrl: reference.url },
  });
  const bundle = await workflowBundle();
  let hosts: WorkerHost[] = [];
  let running: Promise<void>[] = [];
  // Workers of one queue need a connection each (the SDK refuses two on one), as replicas have.
  const connections: NativeConnection[] = [];
  const startHost = async (_: unknown, i: number) =>
    createWorkerHost({
      connection:
        i === 0
          ? env.nativeConnection
          : (connections[i - 1] ??= await NativeConnection.connect({ address: env.address })),
      namespace: env.namespace ?? 'default',
      queues: ['saga', 'effects'],
      activitiesByQueue,
      workflowBundle: bundle,
      logger,
      taskQueuePrefix,
      ...(options.effectsConcurrency ? { effectsConcurrency: options.effectsConcurrency } : {}),
      shutdownGraceSeconds: 1,
    });
  const startWorkers = async () => {
    hosts = await Promise.all(Array.from({ length: options.workerHosts ?? 1 }, startHost));
    running = hosts.map((host) => host.run());
  };
  const stopWorkers = async () => {
    for (const host of hosts) host.shutdown();
    await Promise.all(running);
  };
  const closeConnections = async () => {
    await Promise.all(connections.splice(0).map((connection) => connection.close()));
  };
  await startWorkers();
  const handle = (workflowId: string) => temporal.client.workflow.getHandle(workflowId);
  return {
    ingress,
    temporal,
    reference,
    taskQueuePrefix,
    post: (...events) => ingress.ingestEvents(events),
    view: (workflowId) => handle(workflowId).query(getSagaQuery),
    result: (workflowId) => handle(workflowId).result() as Promise<SagaView>,
    async fault(fault) {
      const res = await fetch(`${reference.url}/control/faults`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(fault),
      });
      if (!res.ok) throw new Error(`fault not set: ${res.status} ${await res.text()}`);
    },
    startWorkers,
    stopWorkers,
    async close() {
      closing = true;
      await stopWorkers();
      await closeConnections();
      await reference.close();
      await Promise.allSettled(emitted);
      await temporal.close();
    },
  };
}

/** A saga stack with a Temporal server and a test database of its own. */
export interface SagaStackWithServers {
  env: TestWorkflowEnvironment;
  db: TestDatabase;
  stack: SagaStack;
  /** Closes the stack, then drops the database and tears the server down. */
  close(): Promise<void>;
}

/**
 * Starts a server with `createEnv` (`createTimeSkippingEnv` for timers, `createDevServerEnv`) and a test database,
 * then a saga stack on them with `options`; what was started is stopped again when the stack does not start.
 */
export async function startSagaStackWithServers(
  createEnv: () => Promise<TestWorkflowEnvironment>,
  options: Parameters<typeof startSagaStack>[2] = {},
): Promise<SagaStackWithServers> {
  const [env, db] = await Promise.all([createEnv(), createTestDatabase()]);
  const teardown = async () => {
    await db.drop();
    await env.teardown();
  };
  let stack: SagaStack;
  try {
    stack = await startSagaStack(env, db.pool, options);
  } catch (error) {
    await teardown();
    throw error;
  }
  return {
    env,
    db,
    stack,
    async close() {
      await stack.close();
      await teardown();
    },
  };
}
