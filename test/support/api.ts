/**
 * The API on real dependencies for `app.inject` tests: a dev server, workers on isolated task queues with the
 * activities of each queue, a fresh migrated database, and tokens from a throwaway key. With `sagas`, the effects
 * queue calls the reference services (Gateway and providers) through the bundled effects manifest, and the events
 * the Gateway emits are posted to the API's own ingress, as the reference services do over HTTP.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { createActivitiesByQueue } from '../../activities/index.js';
import type { PackApprovalDeps } from '../../activities/pack-approval/index.js';
import { createEffectsManifestSource, loadEffectsManifest } from '../../activities/sagas/effects-manifest.js';
import { loadWebhookConfig, type WebhookConfig } from '../../core/config.js';
import { startPolicyEngine } from '../../policy-engine/server.js';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig, TASK_QUEUES } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { startReferenceServices, type RunningReferenceServices } from '../../reference-services/server.js';
import type { AggregateEvent } from '../../workflows/sagas/definitions.js';
import { createWorkerHost, type WorkerHost } from '../../workers/host.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from './auth.js';
import { freePort } from './ports.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { createDevServerEnv, uniqueName, workflowBundle } from './temporal.js';

/** The sagas' outside world of a harness started with `sagas`. */
export interface SagaServices {
  /** The reference Gateway and providers the effects queue calls, with their counters. */
  reference: RunningReferenceServices;
  /** Every event the reference Gateway emitted, in the order it emitted them; each is posted to the ingress. */
  emitted: readonly AggregateEvent[];
}

/** A running API with its real dependencies. */
export interface ApiHarness {
  app: FastifyInstance;
  signer: TestSigner;
  db: TestDatabase;
  env: TestWorkflowEnvironment;
  temporal: TemporalFacade;
  taskQueuePrefix: string;
  /** Present when the harness was started with `sagas`. */
  sagas: SagaServices | undefined;
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
  /**
   * Serve the effects queue with the real effect and Gateway activities against the reference services, started for
   * the harness (without it the effects queue hosts only the self-check, as a worker without a manifest does).
   */
  sagas?: {
    /** Delay before a requested rescan completes (the reference Gateway's default when undefined). */
    scanDelayMs?: number;
    /** Images whose rescans never complete: sagas that must stay waiting (cancel, compensation). */
    neverCompleteImages?: readonly string[];
  };
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

  // The Gateway's events reach the ingress one after the other in emission order, as the reference services' own
  // emitter posts them, each with a token of the event's tenant.
  const emitted: AggregateEvent[] = [];
  let delivered: Promise<void> = Promise.resolve();
  const deliver = async (event: AggregateEvent) => {
    const token = await signer.token({
      tenant: event.tenantId,
      scopes: [Scope.RunnerEventsWrite],
      subject: 'reference-gateway',
    });
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/events',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(event),
    });
    if (res.statusCode >= 300) logger.error({ event, status: res.statusCode, body: res.body }, 'event not ingested');
  };
  const reference = options.sagas
    ? await startReferenceServices({
        host: '127.0.0.1',
        port: 0,
        ...(options.sagas.scanDelayMs !== undefined && { scanDelayMs: options.sagas.scanDelayMs }),
        ...(options.sagas.neverCompleteImages && { neverCompleteImages: options.sagas.neverCompleteImages }),
        events: {
          emit: (event) => {
            emitted.push(event);
            delivered = delivered
              .then(() => deliver(event))
              .catch((err: unknown) => logger.error({ err }, 'event not ingested'));
          },
          close: () => delivered,
        },
      })
    : undefined;

  let host: WorkerHost | undefined;
  let running: Promise<void> | undefined;
  if (options.workers !== false) {
    host = await createWorkerHost({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      queues: TASK_QUEUES,
      activitiesByQueue: createActivitiesByQueue({
        pool: db.pool,
        logger,
        policyEngineUrl: options.policyEngineUrl ?? engine!.url,
        policyWebhook: options.webhook ?? loadWebhookConfig({}),
        ...(options.packApprovals ? { packApprovals: options.packApprovals } : {}),
        ...(reference
          ? {
              effects: {
                manifest: createEffectsManifestSource(loadEffectsManifest({ referenceServicesUrl: reference.url })),
                gatewayUrl: reference.url,
              },
            }
          : {}),
      }),
      workflowBundle: await workflowBundle(),
      logger,
      taskQueuePrefix,
    });
    running = host.run();
  }
  return {
    app,
    signer,
    db,
    env,
    temporal,
    taskQueuePrefix,
    sagas: reference ? { reference, emitted } : undefined,
    async close() {
      // Workers first, so that no command reaches the closed Gateway; then the events it emitted, into the API.
      host?.shutdown();
      await running;
      await reference?.close();
      await delivered;
      await app.close();
      await temporal.close();
      await engine?.close();
      await db.drop();
      await env.teardown();
    },
  };
}

/** The HTTP methods the tests send with {@link injectAs}. */
export type InjectMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * Injects `method url` into `app` with the bearer token `bearer` (no `authorization` header when it is undefined or
 * null) and, when `payload` is given, `payload` as its JSON body.
 */
export function injectAs(
  app: FastifyInstance,
  method: InjectMethod,
  url: string,
  bearer: string | null | undefined,
  payload?: unknown,
) {
  return app.inject({
    method,
    url,
    headers: {
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
}

/** An app of {@link startAppWithoutTemporal}. */
export interface AppWithoutTemporal {
  app: FastifyInstance;
  /** Closes the app and its Temporal client. */
  close: () => Promise<void>;
}

/**
 * A second app on the harness' database, tokens and task queues whose Temporal is a free loopback port nothing
 * listens on: what the API answers while Temporal is unreachable.
 */
export async function startAppWithoutTemporal(
  h: ApiHarness,
  options: Pick<ApiHarnessOptions, 'packApprovalSecrets'> = {},
): Promise<AppWithoutTemporal> {
  const temporal = createTemporalFacade({ address: `127.0.0.1:${await freePort()}`, namespace: 'default' });
  try {
    const app = await buildApp({
      config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
      logger: createLogger({ level: 'silent' }),
      pool: h.db.pool,
      temporal,
      verifyToken: h.signer.verifier,
      taskQueuePrefix: h.taskQueuePrefix,
      ...(options.packApprovalSecrets && { packApprovalSecrets: options.packApprovalSecrets }),
    });
    return {
      app,
      close: async () => {
        await app.close();
        await temporal.close();
      },
    };
  } catch (error) {
    await temporal.close();
    throw error;
  }
}
