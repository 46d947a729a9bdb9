/**
 * The worker host: one connection, the workflow bundle built once, one Worker per task queue.
 * Used by `workers/main.ts`, by `npm start` and by tests.
 */
import { fileURLToPath } from 'node:url';
import {
  bundleWorkflowCode,
  DefaultLogger,
  makeTelemetryFilterString,
  Runtime,
  Worker,
  type LogLevel,
  type LogMetadata,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { freePort } from '../stack/ports.js';
import { WORKFLOW_TASK_QUEUES, type TaskQueueName } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { ActivitiesByQueue } from '../activities/index.js';
import type { TemporalTracing } from '../core/tracing.js';

/** Path of the only workflow bundle entry. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/** The installed Temporal runtime. */
export interface InstalledRuntime {
  /** The SDK's Prometheus exporter (loopback): what the operations port's `/metrics` reads and serves. */
  sdkMetricsUrl: string;
}

/**
 * Installs the Temporal runtime once per process with its logs (SDK and Rust core) forwarded to pino and its metrics
 * on a Prometheus exporter bound to loopback (`sdkMetricsPort`, else a free port): never exposed itself, the
 * operations port serves it beside the Runner's own metrics. The runtime does not shut workers down on signals
 * itself: the process's one orderly shutdown (`stack/shutdown.ts`) stops them in its own order, after the bridge.
 * Must run before the first connection is created.
 */
export async function installRuntime(
  logger: Logger,
  options: { sdkMetricsPort?: number | undefined } = {},
): Promise<InstalledRuntime> {
  const temporalLogger = logger.child({ component: 'temporal' });
  const port = options.sdkMetricsPort || (await freePort());
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger(
      'INFO',
      ({ level, message, meta }: { level: LogLevel; message: string; meta?: LogMetadata }) => {
        temporalLogger[PINO_LEVEL[level]](meta ?? {}, message);
      },
    ),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
      metrics: { prometheus: { bindAddress: `127.0.0.1:${port}` } },
    },
  });
  return { sdkMetricsUrl: `http://127.0.0.1:${port}/metrics` };
}

/**
 * Bundles the workflow code (webpack); do it once per process and share the result. With `tracing`, the bundle
 * includes the tracing workflow interceptors; with `dataConverter`, its payload and failure converter modules, which
 * the workflow sandbox only gets from its bundle (give the same `tracing` and `dataConverter` to `createWorkerHost`).
 */
export async function bundleWorkflows(
  options: { tracing?: TemporalTracing | undefined; dataConverter?: DataConverter | undefined } = {},
): Promise<WorkflowBundleWithSourceMap> {
  const { payloadConverterPath, failureConverterPath } = options.dataConverter ?? {};
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: new DefaultLogger('WARN'),
    // The bundle is built once per process: with tracing on, its workflows start and carry spans.
    ...(options.tracing && { workflowInterceptorModules: options.tracing.workflowInterceptorModules }),
    ...(payloadConverterPath && { payloadConverterPath }),
    ...(failureConverterPath && { failureConverterPath }),
  });
}

/** Options of {@link createWorkerHost}. */
export interface WorkerHostOptions {
  connection: NativeConnection;
  namespace: string;
  queues: readonly TaskQueueName[];
  /** What each queue hosts (`createActivitiesByQueue`): a queue without an entry here is refused. */
  activitiesByQueue: Partial<ActivitiesByQueue>;
  /** Activities the `effects` worker runs at once (`EFFECTS_CONCURRENCY`); the SDK's default when undefined. */
  effectsConcurrency?: number;
  /** The workflow bundle; needed only when a queue hosts workflows (an `effect` worker does without). */
  workflowBundle?: WorkflowBundleWithSourceMap;
  logger: Logger;
  /** Prefix for task queue names (tests use it to isolate runs). */
  taskQueuePrefix?: string;
  /** Seconds given to in-flight activities on shutdown before they are cancelled. */
  shutdownGraceSeconds?: number;
  /** Tracing's activity interceptors and workflow span sink, when tracing is on (the bundle built with it too). */
  tracing?: TemporalTracing | undefined;
  /**
   * The payload codec and failure converter of every worker (`dataConverterOf`; the bundle built with it too); the
   * SDK's plain JSON when undefined.
   */
  dataConverter?: DataConverter | undefined;
}

/** A running set of workers. */
export interface WorkerHost {
  workers: Worker[];
  /** Resolves when every worker has stopped; rejects if one fails. */
  run(): Promise<void>;
  /** Starts a graceful drain: pollers stop, in-flight tasks finish (within the grace time). */
  shutdown(): void;
}

/**
 * Creates one Worker per task queue, each with the activities of its own queue; the workflow queues also host the
 * workflow bundle, the `effects` queue hosts activities only (at most `effectsConcurrency` at once).
 * @throws Error when a queue has no activities, or hosts workflows and no bundle was given.
 */
export async function createWorkerHost(options: WorkerHostOptions): Promise<WorkerHost> {
  const prefix = options.taskQueuePrefix ?? '';
  const activitiesOf = (queue: TaskQueueName): object => {
    const activities = options.activitiesByQueue[queue];
    if (!activities) throw new Error(`No activities for the task queue ${queue}`);
    return activities;
  };
  const workers = await Promise.all(
    options.queues.map((queue) => {
      const hostsWorkflows = (WORKFLOW_TASK_QUEUES as readonly string[]).includes(queue);
      if (hostsWorkflows && !options.workflowBundle)
        throw new Error(`The task queue ${queue} needs the workflow bundle`);
      return Worker.create({
        connection: options.connection,
        namespace: options.namespace,
        taskQueue: `${prefix}${queue}`,
        activities: activitiesOf(queue),
        ...(hostsWorkflows ? { workflowBundle: options.workflowBundle } : {}),
        ...(queue === 'effects' && options.effectsConcurrency !== undefined
          ? { maxConcurrentActivityTaskExecutions: options.effectsConcurrency }
          : {}),
        shutdownGraceTime: `${options.shutdownGraceSeconds ?? 10}s`,
        ...(options.dataConverter && { dataConverter: options.dataConverter }),
        ...(options.tracing && {
          interceptors: { activity: options.tracing.activityInterceptors },
          ...(hostsWorkflows && { sinks: options.tracing.sinks }),
        }),
      });
    }),
  );
  options.logger.info({ queues: options.queues.map((q) => `${prefix}${q}`) }, 'workers created');
  return {
    workers,
    async run() {
      await Promise.all(workers.map((worker) => worker.run()));
    },
    shutdown() {
      for (const worker of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
    },
  };
}
