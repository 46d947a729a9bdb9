/**
 * The API on real dependencies for `app.inject` tests: a dev server, workers on isolated task queues, a fresh
 * migrated database, and tokens from a throwaway key.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { createActivities } from '../../activities/index.js';
import type { PackApprovalDeps } from '../../activities/pack-approval/index.js';
import { loadWebhookConfig, type WebhookConfig } from '../../core/config.js';
import { startPolicyEngine } from '../../policy-engine/server.js';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig, TASK_QUEUES } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import { createWorkerHost, type WorkerHost } from '../../workers/host.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from './auth.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { createDevServerEnv, uniqueName, workflowBundle } from './temporal.js';

/** A running API with its real dependencies. */
export interface ApiHarness {
  app: FastifyInstance;
  signer: TestSigner;
  db: TestDatabase;
  env: TestWorkflowEnvironment;
  temporal: TemporalFacade;
  taskQueuePrefix: string;
  close(): Promise<void>;
}

/** Options of {@link startApiHarness}. */
export interface ApiHarnessOptions {
  /** False leaves the task queues unserved. */
  workers?: boolean;
  /** Policy Engine the workers call (default: a reference engine started for the harness). */
  policyEngineUrl?: string;
  webhook?: WebhookConfig;
  /** Extra environment for the API's configuration. */
  env?: NodeJS.ProcessEnv;
  sseKeepAliveMs?: number;
  /** Channels of the pack-approval activities (not registered without them). */
  packApprovals?: Omit<PackApprovalDeps, 'pool' | 'logger'>;
  packApprovalSecrets?: { eventSecrets: string[]; linkSecret: string };
}

/** Starts the harness. */
export async function startApiHarness(options: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const logger = createLogger({ level: 'warn', name: 'api-test' });
  const [env, db, signer] = await Promise.all([createDevServerEnv(), createTestDatabase(), createTestSigner()]);
  const taskQueuePrefix = `${uniqueName('t')}-`;
  const config = loadConfig({
    AUTH_JWT_ISSUER: TEST_ISSUER,
    AUTH_JWT_AUDIENCE: TEST_AUDIENCE,
    SELF_CHECK_TENANT: 'system',
    ...options.env,
  });
  const engine = options.policyEngineUrl ? undefined : await startPolicyEngine({ host: '127.0.0.1', port: 0 });
  const temporal = createTemporalFacade({ address: env.address, namespace: env.namespace ?? 'default' });

  let host: WorkerHost | undefined;
  let running: Promise<void> | undefined;
  if (options.workers !== false) {
    host = await createWorkerHost({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      queues: TASK_QUEUES,
      activities: createActivities({
        pool: db.pool,
        logger,
        policyEngineUrl: options.policyEngineUrl ?? engine!.url,
        policyWebhook: options.webhook ?? loadWebhookConfig({}),
        ...(options.packApprovals ? { packApprovals: options.packApprovals } : {}),
      }),
      workflowBundle: await workflowBundle(),
      logger,
      taskQueuePrefix,
    });
    running = host.run();
  }
  const app = await buildApp({
    config,
    logger,
    pool: db.pool,
    temporal,
    verifyToken: signer.verifier,
    taskQueuePrefix,
    ...(options.sseKeepAliveMs ? { sseKeepAliveMs: options.sseKeepAliveMs } : {}),
    packApprovalSecrets: options.packApprovalSecrets ?? {
      eventSecrets: [generateWebhookSecret()],
      linkSecret: generateSecret(),
    },
  });
  return {
    app,
    signer,
    db,
    env,
    temporal,
    taskQueuePrefix,
    async close() {
      await app.close();
      host?.shutdown();
      await running;
      await temporal.close();
      await engine?.close();
      await db.drop();
      await env.teardown();
    },
  };
}
