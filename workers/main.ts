/**
 * The worker process: one NativeConnection, the workflow bundle built once, one Worker per task queue
 * selected by `WORKER_QUEUES`. SIGTERM/SIGINT drain gracefully (once, however often the signal arrives: see
 * `stack/shutdown.ts`). `npm run worker` runs it standalone.
 */
import { pathToFileURL } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ensureRetentionSchedule } from './pack-approval-retention-schedule.js';
import { createActivitiesByQueue, type ActivityDeps } from '../activities/index.js';
import { packApprovalDepsFromConfig } from '../activities/pack-approval/deps.js';
import { assertSagaEffectsDeclared, effectsManifestFromConfig } from '../activities/sagas/effects-manifest.js';
import {
  databaseUrlOf,
  gatewayUrlOf,
  loadConfig,
  policyEngineUrlOf,
  temporalAddressOf,
  type AppConfig,
} from '../core/config.js';
import { createLogger, type Logger } from '../core/logger.js';
import { createPool } from '../db/pool.js';
import { installShutdown } from '../stack/shutdown.js';
import { SAGAS } from '../workflows/sagas/registry.js';
import { bundleWorkflows, createWorkerHost, installRuntime, type WorkerHost } from './host.js';

/** Running workers with what they own. */
export interface RunningWorkers {
  host: WorkerHost;
  /** Settles when every worker has stopped. */
  done: Promise<void>;
  /** Drains the workers, then closes the connection and the pool. */
  stop(): Promise<void>;
}

/**
 * The effects manifest and the Gateway, when the `effects` or `saga` queue is served: loaded and validated before
 * anything connects, and every effect of every registered saga must be declared in it.
 * @throws EffectsManifestError naming the file and each invalid field or undeclared effect.
 */
export function effectsDepsFromConfig(config: AppConfig, logger: Logger): ActivityDeps['effects'] {
  if (!config.worker.queues.some((queue) => queue === 'effects' || queue === 'saga')) return undefined;
  const manifest = effectsManifestFromConfig(config);
  assertSagaEffectsDeclared(manifest, SAGAS);
  logger.info({ manifest: manifest.source, effects: [...manifest.providers.keys()] }, 'effects manifest loaded');
  return { manifest, gatewayUrl: gatewayUrlOf(config) };
}

/** Connects, bundles and starts the workers of `config.worker.queues`. */
export async function startWorkers(config: AppConfig, logger: Logger): Promise<RunningWorkers> {
  const effects = effectsDepsFromConfig(config, logger);
  const pool = createPool({
    connectionString: databaseUrlOf(config),
    applicationName: 'stellaops-worker',
    max: config.database.poolMax,
    logger,
  });
  const connection = await NativeConnection.connect({ address: temporalAddressOf(config) });
  try {
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
        ...(effects && { effects }),
      }),
      effectsConcurrency: config.sagas.effectsConcurrency,
      workflowBundle: await bundleWorkflows(),
      logger,
    });
    if (config.worker.queues.includes('pack-approval')) {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      const created = await ensureRetentionSchedule(client, {
        retentionDays: config.packApprovals.retentionDays,
        taskQueue: 'pack-approval',
      });
      logger.info({ created, retentionDays: config.packApprovals.retentionDays }, 'retention schedule ensured');
    }
    const done = host.run();
    done.catch((err: unknown) => logger.error({ err }, 'a worker failed'));
    let stopping: Promise<void> | undefined;
    return {
      host,
      done,
      stop() {
        stopping ??= (async () => {
          host.shutdown();
          await done.catch(() => undefined);
          await Promise.allSettled([connection.close(), pool.end()]);
        })();
        return stopping;
      },
    };
  } catch (error) {
    await Promise.allSettled([connection.close(), pool.end()]);
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: 'stellaops-worker', sync: true });
  installRuntime(logger);
  let starting: Promise<RunningWorkers> | undefined;
  const shutdown = installShutdown({
    logger,
    deadlineMs: 30_000,
    steps: [
      { name: 'workers', done: 'workers drained', run: async () => (await starting?.catch(() => undefined))?.stop() },
    ],
  });
  try {
    starting = startWorkers(config, logger);
    const workers = await starting;
    workers.done.catch((err: unknown) => void shutdown.begin({ err }));
  } catch (err) {
    await shutdown.begin({ err });
  }
}
