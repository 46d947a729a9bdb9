/**
 * `npm start`: the whole product on embedded defaults — Postgres, the Temporal dev server with its Web UI,
 * migrations, the workers and the API in one process tree — then a deep readiness check and a local token.
 * Ctrl-C stops everything, in order: the workers drain, the API closes, then the servers stop (they run in process
 * groups of their own, so the terminal's signal does not reach them; see `stack/server-process.ts`).
 * `TEMPORAL_ADDRESS` / `DATABASE_URL` switch to external servers; `POLICY_ENGINE_URL` / `GATEWAY_URL` to external
 * peers instead of the reference services.
 */
import { ConfigError, loadConfig, type AppConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { createLogger } from '../core/logger.js';
import { ALL_SCOPES } from '../core/scopes.js';
import { startTracing } from '../core/tracing.js';
import { startApiServer, type ApiServer } from '../api/server.js';
import { startInfrastructure, type InfraHandle } from '../stack/index.js';
import { stopServerProcesses } from '../stack/server-process.js';
import { installShutdown } from '../stack/shutdown.js';
import { installRuntime } from '../workers/host.js';
import { startWorkers, type RunningWorkers } from '../workers/main.js';

/**
 * `config` with the codec endpoint trusting the embedded Web UI (`CODEC_TRUST_LOCAL_UI`), when this start runs the dev
 * server and its UI: that UI has no login, so it cannot pass a token (see `api/routes/codec.ts`). Never with
 * `NODE_ENV=production`, which refuses the setting, nor against an external Temporal, whose UI is not ours, nor with
 * `CODEC_TRUST_LOCAL_UI=false`.
 */
function trustingEmbeddedUi(config: AppConfig): AppConfig {
  if (config.env === 'production' || config.temporal.address || config.payloadCodec.trustLocalUi === false)
    return config;
  return { ...config, payloadCodec: { ...config.payloadCodec, trustLocalUi: true } };
}

const startedAt = Date.now();
let config: AppConfig;
try {
  config = trustingEmbeddedUi(loadConfig());
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
// Before the logger (its lines carry trace ids only when tracing is on) and before the API and workers, which pick
// up the started tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, the whole product sends its traces.
const tracing = await startTracing(config.otel);
// Synchronous writes: the shutdown ends in process.exit(), which would drop or reorder a line still being written.
const logger = createLogger({ level: config.logLevel, sync: true });

let infra: InfraHandle | undefined;
let workers: Promise<RunningWorkers> | undefined;
let api: Promise<ApiServer> | undefined;
const started = async <T>(starting: Promise<T> | undefined) => starting?.catch(() => undefined);

// Workers first, while Temporal and Postgres still serve their last tasks; the API keeps answering meanwhile (new
// work waits in Temporal for the next start). A signal during start-up stops what has started so far: a component
// still starting is awaited, a server still starting is stopped at once.
const shutdown = installShutdown({
  logger,
  deadlineMs: 60_000,
  steps: [
    { name: 'workers', done: 'workers drained', run: async () => (await started(workers))?.stop() },
    { name: 'API', done: 'API closed', run: async () => (await started(api))?.close() },
    // After the workers and the API, so the spans of their last work are flushed too (a step only when tracing is on).
    ...(tracing ? [{ name: 'tracing', done: 'traces flushed', run: () => tracing.shutdown() }] : []),
    {
      name: 'servers',
      done: 'servers stopped',
      run: async () => {
        await infra?.stop();
        await stopServerProcesses();
      },
    },
  ],
});

async function main(): Promise<void> {
  // Before anything touches Temporal: the runtime is a per-process singleton.
  const runtime = await installRuntime(logger, { sdkMetricsPort: config.worker.sdkMetricsPort });
  infra = await startInfrastructure(config, logger);
  if (shutdown.started) return;
  workers = startWorkers(config, logger, runtime);
  const running = await workers;
  if (shutdown.started) return;
  api = startApiServer(config, logger);
  await printBanner(infra, await api, running);
}

async function printBanner(infra: InfraHandle, api: ApiServer, workers: RunningWorkers): Promise<void> {
  const ready = await fetch(`${api.url}/ready?deep=true`);
  const readyBody: unknown = await ready.json();
  if (ready.status !== 200) {
    logger.error({ ready: readyBody }, 'deep readiness check failed');
  }

  const lines = [
    '',
    `StellaOps Workflows is ${ready.status === 200 ? 'ready' : 'NOT ready'} (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`,
    `  API            ${api.url}`,
    `  API docs       ${api.url}/docs   (OpenAPI: ${api.url}/openapi.json)`,
    `  Readiness      ${api.url}/ready?deep=true`,
    `  Worker ops     ${workers.ops.url}   (/health, /ready, /metrics, /info; POST /admin/drain, /admin/reload need system:admin)`,
    `  Temporal       ${infra.temporalAddress} (namespace ${config.temporal.namespace})`,
  ];
  if (infra.temporalUiUrl) {
    const query = encodeURIComponent(`TenantId="${config.selfCheck.tenantId}"`);
    lines.push(
      `  Temporal UI    ${infra.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${query}`,
    );
  }
  lines.push(
    `  Policy Engine  ${infra.policyEngineUrl}${infra.policyEngine ? ' (reference engine, sample data)' : ''}`,
  );
  lines.push(
    `  Postgres       ${infra.postgres ? `embedded on 127.0.0.1:${infra.postgres.port} (data in ${infra.postgres.databaseDir})` : 'external (DATABASE_URL)'}`,
  );
  lines.push(
    `  NATS           ${infra.natsServers.join(', ')} (${infra.nats ? `embedded, JetStream store in ${infra.nats.storeDir}` : 'NATS_URL'}; streams ${infra.streams.map((stream) => stream.name).join(', ')})`,
  );
  if (config.auth.useLocalKey) {
    const key = await loadOrCreateLocalKey(config.dataDir);
    // 12 h, or less when AUTH_JWT_MAX_LIFETIME_SECONDS allows less (the API would refuse a longer token).
    const max = config.auth.maxTokenLifetimeSeconds;
    const lifetimeSeconds = max === 0 ? 12 * 3600 : Math.min(12 * 3600, max);
    const token = await mintToken(key, {
      tenant: 'local',
      scopes: [...ALL_SCOPES],
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      expiresIn: `${lifetimeSeconds}s`,
    });
    lines.push(
      '',
      `Local token (tenant "local", all scopes, valid ${lifetimeSeconds % 3600 === 0 ? `${lifetimeSeconds / 3600} h` : `${Math.floor(lifetimeSeconds / 60)} min`}; mint others with \`npm run token -- --tenant T --scopes a,b\`):`,
      `  ${token}`,
      '',
      'Try (with TOKEN set to the token above):',
      `  curl -s -X POST ${api.url}/api/v1/scheduler/policies/simulations -H "Authorization: Bearer $TOKEN" \\`,
      `    -H 'content-type: application/json' -d '{"policyId":"baseline-security","policyVersion":3,"inputs":{"sbomSet":["sbom-payments-api"]}}'`,
      `  curl -N ${api.url}/api/v1/scheduler/policies/simulations/<runId>/stream -H "Authorization: Bearer $TOKEN"`,
    );
  }
  lines.push(
    '',
    'Pack approvals:',
    `  Event signing   ${config.packApprovals.eventSecrets ? 'PACK_EVENTS_SIGNING_SECRETS' : `${config.dataDir}/auth/pack-events-secret`} (Standard Webhooks secret shared with the Task Runner)`,
    `  Mail            ${config.packApprovals.smtpUrl ? config.packApprovals.smtpUrl : `local inbox ${config.packApprovals.inboxDir}/*.eml`}`,
    '  Try:            npm run pack-event -- samples/pack-approvals/pack-approval-requested.json --fresh',
    '',
    'Sagas:',
    ...sagaLines(infra, api),
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  if (!shutdown.started) process.stdout.write(`${lines.join('\n')}\n`);
}

/** The banner's sagas section: where commands go, whether the reference Gateway's events reach the API, what to try. */
function sagaLines(infra: InfraHandle, api: ApiServer): string[] {
  const reference = infra.referenceServices;
  const delivery = infra.referenceEvents;
  const lines = [
    reference
      ? `  Gateway         ${infra.gatewayUrl} (reference Gateway and the sample sagas' providers)`
      : `  Gateway         ${infra.gatewayUrl} (GATEWAY_URL)`,
  ];
  if (reference) {
    lines.push(
      !delivery || delivery.target === undefined
        ? `  Its events      NONE: ${delivery?.reason ?? 'not started'}`
        : `  Its events      ${delivery.description}`,
    );
    if (config.sagas.referenceServicesFaults) {
      lines.push(`  Faults          PUT ${reference.url}/control/faults (REFERENCE_SERVICES_FAULTS=true)`);
    }
  }
  lines.push('  Try:            npm run saga-event -- samples/sagas/advisory-published.json --fresh');
  if (config.auth.useLocalKey) {
    lines.push(`                  curl -s ${api.url}/api/v1/sagas -H "Authorization: Bearer $TOKEN"`);
  }
  if (infra.temporalUiUrl) {
    const query = encodeURIComponent('SagaName="advisory-impact-rescan"');
    lines.push(
      `                  ${infra.temporalUiUrl}/namespaces/${config.temporal.namespace}/workflows?query=${query}`,
    );
  }
  return lines;
}

try {
  await main();
} catch (error) {
  // A shutdown that began during start-up makes the start fail; that is not an error of its own.
  if (!shutdown.started) {
    logger.error({ err: error }, 'start failed');
    await shutdown.begin({ err: error });
  }
}
