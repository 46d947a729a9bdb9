/**
 * Wires the API to real dependencies and listens; `npm run api` runs it standalone (SIGTERM/SIGINT close it once,
 * however often the signal arrives: see `stack/shutdown.ts`).
 */
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { databaseUrlOf, loadConfig, temporalConnectionOf, type AppConfig } from '../core/config.js';
import { loadOrCreateLocalKey } from '../core/local-keys.js';
import { createLogger, type Logger } from '../core/logger.js';
import { dataConverterOf } from '../core/payload-codec.js';
import { currentTracing, startTracing, temporalTracingOf } from '../core/tracing.js';
import { createPool, type Pool } from '../db/pool.js';
import { buildApp } from './app.js';
import { createTokenVerifier, type TokenVerifier } from './plugins/auth.js';
import { installShutdown } from '../stack/shutdown.js';
import { createTemporalFacade, type TemporalFacade } from './temporal/facade.js';

/** Builds the token verifier the configuration asks for (JWKS, public key, or the local key). */
export async function createVerifierFromConfig(config: AppConfig): Promise<TokenVerifier> {
  const { issuer, audience } = config.auth;
  const options = { issuer, audience, maxLifetimeSeconds: config.auth.maxTokenLifetimeSeconds };
  if (config.auth.jwksUrl) return createTokenVerifier({ jwksUrl: config.auth.jwksUrl }, options);
  if (config.auth.publicKeyPem) return createTokenVerifier({ publicKeyPem: config.auth.publicKeyPem }, options);
  const local = await loadOrCreateLocalKey(config.dataDir);
  return createTokenVerifier({ key: local.publicKey }, options);
}

/** A listening API with the dependencies it owns. */
export interface ApiServer {
  app: FastifyInstance;
  url: string;
  pool: Pool;
  temporal: TemporalFacade;
  close(): Promise<void>;
}

/** Starts the API on the configured host/port. */
export async function startApiServer(config: AppConfig, logger: Logger): Promise<ApiServer> {
  const pool = createPool({
    connectionString: databaseUrlOf(config),
    applicationName: 'stellaops-api',
    max: config.database.poolMax,
    logger,
  });
  const tracing = currentTracing();
  // One data converter: the client encrypts with it and the codec endpoint decodes for the Web UI with its codec.
  const dataConverter = await dataConverterOf(config);
  const temporal = createTemporalFacade({
    ...temporalConnectionOf(config),
    namespace: config.temporal.namespace,
    interceptors: tracing && (await temporalTracingOf(tracing)).clientInterceptors,
    dataConverter,
  });
  const app = await buildApp({
    config,
    logger,
    pool,
    temporal,
    verifyToken: await createVerifierFromConfig(config),
    payloadCodec: dataConverter.payloadCodecs?.[0],
  });
  const address = await app.listen({ host: config.api.host, port: config.api.port });
  return {
    app,
    url: address.replace('0.0.0.0', '127.0.0.1'),
    pool,
    temporal,
    async close() {
      await app.close();
      await Promise.allSettled([pool.end(), temporal.close()]);
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const config = loadConfig();
  // Before the logger: its lines carry trace ids only when tracing is on.
  const tracing = await startTracing(config.otel);
  const logger = createLogger({ level: config.logLevel, name: 'stellaops-api', sync: true });
  let starting: Promise<ApiServer> | undefined;
  const shutdown = installShutdown({
    logger,
    deadlineMs: 15_000,
    steps: [
      { name: 'API', done: 'API closed', run: async () => (await starting?.catch(() => undefined))?.close() },
      // Last, so the spans of the final requests are flushed too (a step only when tracing is on).
      ...(tracing ? [{ name: 'tracing', done: 'traces flushed', run: () => tracing.shutdown() }] : []),
    ],
  });
  try {
    starting = startApiServer(config, logger);
    await starting;
  } catch (err) {
    await shutdown.begin({ err });
  }
}
