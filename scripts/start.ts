/**
 * `npm start`: the whole product on embedded defaults — Postgres, the Temporal dev server with its Web UI,
 * migrations, the workers and the API in one process tree — then a deep readiness check and a local token.
 * Ctrl-C stops everything. `TEMPORAL_ADDRESS` / `DATABASE_URL` switch to external servers.
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { createLogger } from '../core/logger.js';
import { ALL_SCOPES } from '../core/scopes.js';
import { startApiServer, type ApiServer } from '../api/server.js';
import { startInfrastructure, type InfraHandle } from '../stack/index.js';
import { installRuntime } from '../workers/host.js';
import { startWorkers, type RunningWorkers } from '../workers/main.js';

const startedAt = Date.now();
let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
const logger = createLogger({ level: config.logLevel });

let infra: InfraHandle | undefined;
let workers: RunningWorkers | undefined;
let api: ApiServer | undefined;

const shutdown = async () => {
  logger.info('stopping: API, workers, Temporal, Postgres');
  await api?.close().catch((err: unknown) => logger.warn({ err }, 'API close failed'));
  await workers?.stop().catch((err: unknown) => logger.warn({ err }, 'worker stop failed'));
  await infra?.stop();
  logger.info('stopped');
};
closeWithGrace({ delay: 30_000, logger }, async ({ err, signal }) => {
  if (err) logger.error({ err }, 'stopping after an error');
  else logger.info({ signal }, 'signal received');
  await shutdown();
});

try {
  // Before anything touches Temporal: the runtime is a per-process singleton.
  installRuntime(logger);
  infra = await startInfrastructure(config, logger);
  workers = await startWorkers(config, logger);
  api = await startApiServer(config, logger);

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
  if (config.auth.useLocalKey) {
    const key = await loadOrCreateLocalKey(config.dataDir);
    const token = await mintToken(key, {
      tenant: 'local',
      scopes: [...ALL_SCOPES],
      issuer: config.auth.issuer,
      audience: config.auth.audience,
    });
    lines.push(
      '',
      'Local token (tenant "local", all scopes, valid 12 h; mint others with `npm run token -- --tenant T --scopes a,b`):',
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
    'Press Ctrl-C to stop.',
    '',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (error) {
  logger.error({ err: error }, 'start failed');
  await shutdown();
  process.exit(1);
}
