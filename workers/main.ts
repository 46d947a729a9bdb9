/**
 * The worker process (the Runner's): one NativeConnection, the workflow bundle built once, one Worker per task queue
 * of its `WORKER_MODE` (narrowed by `WORKER_QUEUES`), the JetStream bridge when `config.nats.bridge` runs, and the
 * operations port (`workers/ops-server.ts`). SIGTERM/SIGINT drain it once, however often the signal arrives (see
 * `stack/shutdown.ts`): `/ready` answers 503, the bridge stops pulling and finishes its in-flight messages, the
 * Temporal workers stop polling and finish their tasks within `WORKER_SHUTDOWN_GRACE_SECONDS`, then the connections
 * close. `npm run worker` runs it standalone.
 */
import { pathToFileURL } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ensureRetentionSchedule } from './pack-approval-retention-schedule.js';
import { createActivitiesByQueue, type ActivityDeps } from '../activities/index.js';
import { createWorkflowEventPublisher, type WorkflowEventPublisher } from '../activities/sagas/egress.js';
import { packApprovalDepsFromConfig } from '../activities/pack-approval/deps.js';
import {
  assertSagaEffectsDeclared,
  createEffectsManifestSource,
  effectsManifestFromConfig,
  type EffectsManifest,
  type EffectsManifestSource,
} from '../activities/sagas/effects-manifest.js';
import { createVerifierFromConfig } from '../api/server.js';
import { createSagaIngress } from '../api/services/saga-ingress.js';
import { createTemporalFacade } from '../api/temporal/facade.js';
import { createSagaTemporal } from '../api/temporal/sagas.js';
import {
  databaseUrlOf,
  gatewayUrlOf,
  loadConfig,
  loadTenantPlacement,
  policyEngineUrlOf,
  temporalConnectionOf,
  WORKFLOW_TASK_QUEUES,
  type AppConfig,
} from '../core/config.js';
import { createLogger, type Logger } from '../core/logger.js';
import { dataConverterOf } from '../core/payload-codec.js';
import { currentTracing, startTracing, temporalTracingOf } from '../core/tracing.js';
import { VERSION } from '../core/version.js';
import { createPool } from '../db/pool.js';
import { installShutdown } from '../stack/shutdown.js';
import { SAGAS } from '../workflows/sagas/registry.js';
import { bundleWorkflows, createWorkerHost, installRuntime, type InstalledRuntime, type WorkerHost } from './host.js';
import { startOpsServer, type OpsInfoResponse, type OpsServer } from './ops-server.js';
import { createRunnerMetrics } from './runner-metrics.js';
import { startSagaBridge, type SagaBridge } from './saga-bridge.js';
import { connectNats, ensureSagaStreams } from './saga-streams.js';

/** Running workers with what they own. */
export interface RunningWorkers {
  host: WorkerHost;
  /** The operations port. */
  ops: OpsServer;
  /** The JetStream bridge, when this process runs it. */
  bridge: SagaBridge | undefined;
  /** Settles when every worker has stopped. */
  done: Promise<void>;
  /** Drains (as `POST /admin/drain` does), then closes the operations port and every connection. Idempotent. */
  stop(): Promise<void>;
}

/** The effects manifest in use and the Gateway, when the `effects` or `saga` queue is served. */
interface EffectsSetup {
  deps: NonNullable<ActivityDeps['effects']>;
  source: EffectsManifestSource;
}

/**
 * Loads the effects manifest the configuration names and checks that every effect of every registered saga is
 * declared in it (a saga calling an undeclared effect would fail at run time). The start and every reload use it.
 * @throws EffectsManifestError naming the file and each invalid field or undeclared effect.
 */
export function loadCheckedEffectsManifest(config: AppConfig): EffectsManifest {
  const manifest = effectsManifestFromConfig(config);
  assertSagaEffectsDeclared(manifest, SAGAS);
  return manifest;
}

/**
 * The effects manifest and the Gateway, when the `effects` or `saga` queue is served: loaded and validated before
 * anything connects.
 * @throws EffectsManifestError naming the file and each invalid field or undeclared effect.
 */
export function effectsDepsFromConfig(config: AppConfig, logger: Logger): ActivityDeps['effects'] {
  return effectsSetupOf(config, logger)?.deps;
}

function effectsSetupOf(config: AppConfig, logger: Logger): EffectsSetup | undefined {
  if (!config.worker.queues.some((queue) => queue === 'effects' || queue === 'saga')) return undefined;
  const manifest = loadCheckedEffectsManifest(config);
  logger.info({ manifest: manifest.source, effects: [...manifest.providers.keys()] }, 'effects manifest loaded');
  const gatewayUrl = gatewayUrlOf(config);
  const source = createEffectsManifestSource(manifest, { gatewayUrl });
  return { deps: { manifest: source, gatewayUrl }, source };
}

/** Connects, bundles and starts the workers of `config.worker.queues`, the bridge and the operations port. */
export async function startWorkers(
  config: AppConfig,
  logger: Logger,
  runtime: InstalledRuntime,
): Promise<RunningWorkers> {
  const effects = effectsSetupOf(config, logger);
  // Before anything connects: a token verifier that cannot be built (an unreadable key) stops the start.
  const verifyToken = await createVerifierFromConfig(config);
  // Every Temporal client and worker of the process encrypts and decrypts payloads with it.
  const dataConverter = await dataConverterOf(config);
  const metrics = createRunnerMetrics();
  const pool = createPool({
    connectionString: databaseUrlOf(config),
    applicationName: 'stellaops-worker',
    max: config.database.poolMax,
    logger,
  });
  const closers: (() => Promise<unknown>)[] = [() => pool.end()];
  // In reverse order of opening: what uses a connection stops before the connection closes.
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => logger.warn({ err }, 'close failed'));
  };
  try {
    const connection = await NativeConnection.connect(temporalConnectionOf(config));
    closers.push(() => connection.close());
    let nats: NatsConnection | undefined;
    let bridge: SagaBridge | undefined;
    let egress: WorkflowEventPublisher | undefined;
    let tenants = [...config.nats.bridge.tenants];
    const egressRuns = egressRunsIn(config);
    if (config.nats.bridge.enabled || egressRuns) {
      const natsConnection = await connectNats(config, { name: 'stellaops-worker' });
      nats = natsConnection;
      closers.push(() => natsConnection.close());
      // The consumer and the egress need their streams: created where configured to (local runs), else their
      // absence stops the start.
      await ensureSagaStreams(await jetstreamManager(natsConnection), config.nats, logger);
    }
    if (nats && egressRuns) {
      egress = createWorkflowEventPublisher({
        connection: nats,
        stream: config.nats.workflowStream,
        metrics,
        logger,
      });
    }
    const tracing = currentTracing();
    const temporalTracing = tracing && (await temporalTracingOf(tracing));
    if (nats && config.nats.bridge.enabled) {
      const temporal = createTemporalFacade({
        ...temporalConnectionOf(config),
        namespace: config.temporal.namespace,
        dataConverter,
        // A saga event's own trace context reaches its workflow through the client's signal, as over HTTP.
        interceptors: temporalTracing?.clientInterceptors,
      });
      closers.push(() => temporal.close());
      bridge = await startSagaBridge({
        connection: nats,
        nats: config.nats,
        ingress: createSagaIngress({ pool, logger, temporal: createSagaTemporal(temporal, { taskQueuePrefix: '' }) }),
        pool,
        logger,
        metrics,
      });
    }
    const host = await createWorkerHost({
      connection,
      namespace: config.temporal.namespace,
      queues: config.worker.queues,
      activitiesByQueue: createActivitiesByQueue({
        pool,
        logger,
        policyEngineUrl: policyEngineUrlOf(config),
        policyWebhook: config.simulations.webhook,
        packApprovals: await packApprovalDepsFromConfig(config, logger),
        ...(effects && { effects: effects.deps }),
        egress,
        metrics,
      }),
      effectsConcurrency: config.sagas.effectsConcurrency,
      // Bundling takes seconds: an `effect` worker, which hosts no workflows, starts without it.
      ...(config.worker.queues.some((queue) => (WORKFLOW_TASK_QUEUES as readonly string[]).includes(queue)) && {
        workflowBundle: await bundleWorkflows({ tracing: temporalTracing, dataConverter }),
      }),
      logger,
      shutdownGraceSeconds: config.worker.shutdownGraceSeconds,
      tracing: temporalTracing,
      dataConverter,
    });
    if (config.worker.queues.includes('pack-approval')) {
      const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter });
      const created = await ensureRetentionSchedule(client, {
        retentionDays: config.packApprovals.retentionDays,
        taskQueue: 'pack-approval',
      });
      logger.info({ created, retentionDays: config.packApprovals.retentionDays }, 'retention schedule ensured');
    }
    const done = host.run();
    done.catch((err: unknown) => logger.error({ err }, 'a worker failed'));
    closers.push(async () => {
      host.shutdown();
      await done.catch(() => undefined);
    });
    const ops = await startOpsServer({
      host: config.worker.opsHost,
      port: config.worker.opsPort,
      logger,
      verifyToken,
      registry: metrics.registry,
      sdkMetricsUrl: runtime.sdkMetricsUrl,
      pool,
      pingTemporal: () => connection.workflowService.getSystemInfo({}),
      pingNats: nats && (() => nats.flush()),
      workers: () => host.workers.map((worker) => ({ taskQueue: worker.options.taskQueue, state: worker.getState() })),
      info: () => infoOf(config, host, bridge, tenants, effects?.source.current()),
      async drain() {
        // Both stop taking work at once; each finishes what it holds (a bridge message is acked only once the
        // ingress accepted it, a Temporal task completes within the grace time or is cancelled).
        host.shutdown();
        await Promise.all([bridge?.drain(), done.catch(() => undefined)]);
      },
      effects: effects && { load: () => loadCheckedEffectsManifest(config), source: effects.source },
      tenants:
        bridge && config.nats.bridge.tenantsFile
          ? {
              load: () => loadTenantPlacement(config.nats.bridge.tenantsFile!),
              current: () => tenants,
              async apply(next) {
                await bridge.setTenants(next);
                tenants = next;
              },
            }
          : undefined,
    });
    closers.push(() => ops.close());
    logger.info({ url: ops.url, mode: config.worker.mode }, 'operations port listening');
    let stopping: Promise<void> | undefined;
    return {
      host,
      ops,
      bridge,
      done,
      stop() {
        stopping ??= (async () => {
          await ops.drain();
          await closeAll();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * Whether this process publishes to the workflow stream: `NATS_EGRESS` on and a queue served whose activities publish
 * (effect results and Gateway-command outcomes, saga facts, approval decisions).
 */
function egressRunsIn(config: AppConfig): boolean {
  return config.nats.egress && config.worker.queues.some((queue) => queue !== 'policy-simulation');
}

/** What `/info` shows. */
function infoOf(
  config: AppConfig,
  host: WorkerHost,
  bridge: SagaBridge | undefined,
  tenants: readonly string[],
  manifest: EffectsManifest | undefined,
): Omit<OpsInfoResponse, 'state'> {
  const status = bridge?.status();
  return {
    name: 'stellaops-workflows',
    version: VERSION,
    node: process.version,
    mode: config.worker.mode,
    temporal: { namespace: config.temporal.namespace },
    taskQueues: host.workers.map((worker) => worker.options.taskQueue),
    bridge:
      bridge && status
        ? {
            stream: status.stream,
            consumer: status.consumer,
            filterSubjects: status.filterSubjects,
            tenants: [...tenants],
            connected: bridge.connected(),
          }
        : null,
    egress: egressRunsIn(config) ? { stream: config.nats.workflowStream.name } : null,
    sagas: SAGAS.map((saga) => ({ name: saga.name, workflowType: saga.workflowType, effects: [...saga.effects] })),
    effects: manifest ? { source: manifest.source, providers: [...manifest.providers.keys()] } : null,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = loadConfig();
  // Before the logger: its lines carry trace ids only when tracing is on.
  const tracing = await startTracing(config.otel);
  const logger = createLogger({ level: config.logLevel, name: 'stellaops-worker', sync: true });
  let starting: Promise<RunningWorkers> | undefined;
  const shutdown = installShutdown({
    logger,
    // The grace time of in-flight work, plus the bridge's last acknowledgements and the connections' close.
    deadlineMs: (config.worker.shutdownGraceSeconds + 10) * 1000,
    steps: [
      { name: 'workers', done: 'workers drained', run: async () => (await starting?.catch(() => undefined))?.stop() },
      // Last, so the spans of the drained work are flushed too (a step only when tracing is on).
      ...(tracing ? [{ name: 'tracing', done: 'traces flushed', run: () => tracing.shutdown() }] : []),
    ],
  });
  try {
    const runtime = await installRuntime(logger, { sdkMetricsPort: config.worker.sdkMetricsPort });
    starting = startWorkers(config, logger, runtime);
    const workers = await starting;
    workers.done.catch((err: unknown) => void shutdown.begin({ err }));
  } catch (err) {
    await shutdown.begin({ err });
  }
}
