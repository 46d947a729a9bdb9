/**
 * The local stack behind `npm start`: embedded Postgres, the Temporal dev server, nats-server with JetStream, the
 * reference Policy Engine and the reference services of sagas (Gateway and sample providers) unless `DATABASE_URL` /
 * `TEMPORAL_ADDRESS` / `NATS_URL` / `POLICY_ENGINE_URL` / `GATEWAY_URL` point elsewhere; then migrations, search
 * attributes and the JetStream streams of sagas.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectTemporalClient } from '../core/temporal-connection.js';
import {
  databaseUrlOf,
  gatewayUrlOf,
  natsServersOf,
  policyEngineUrlOf,
  temporalAddressOf,
  temporalConnectionOf,
  type AppConfig,
} from '../core/config.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../policy-engine/server.js';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  eventDeliveryOf,
  referenceServicesOptionsOf,
  type EventDelivery,
  startReferenceServices,
  type RunningReferenceServices,
} from '../reference-services/server.js';
import type { Logger } from '../core/logger.js';
import { migrateConfigured } from '../db/migrate.js';
import { connectNats, prepareSagaStreams, type SagaStreamStatus } from '../workers/saga-streams.js';
import { startEmbeddedNats, type EmbeddedNatsHandle } from './nats.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './postgres.js';
import { ensureSearchAttributes, startDevServer, type DevServerHandle } from './temporal.js';

/** Infrastructure started (or found) for this process. */
export interface InfraHandle {
  databaseUrl: string;
  temporalAddress: string;
  temporalUiUrl: string | undefined;
  /** URL of the Policy Engine the workers call. */
  policyEngineUrl: string;
  postgres?: EmbeddedPostgresHandle;
  temporal?: DevServerHandle;
  /** The NATS servers the product talks to: `NATS_URL`'s, or the embedded one's. */
  natsServers: string[];
  /** The embedded nats-server, when no NATS_URL is configured. */
  nats?: EmbeddedNatsHandle;
  /** The JetStream streams of sagas, as found or created. */
  streams: SagaStreamStatus[];
  /** The reference Policy Engine, when no POLICY_ENGINE_URL is configured. */
  policyEngine?: RunningPolicyEngine;
  /** URL of the Gateway saga commands go to. */
  gatewayUrl: string;
  /** The reference services of sagas (Gateway and sample providers), when no GATEWAY_URL is configured. */
  referenceServices?: RunningReferenceServices;
  /** Where the reference Gateway's events go (the aggregate stream, the API), or why nowhere. */
  referenceEvents?: EventDelivery;
  /**
   * Stops whatever was started: the reference services and the Policy Engine, then Temporal, Postgres and NATS
   * together.
   */
  stop(): Promise<void>;
}

/**
 * The API's codec endpoint as the embedded Web UI's browser calls it: on this machine, so a wildcard or loopback bind
 * address is reached at 127.0.0.1 (the address the codec trusts the embedded UI from). Undefined with `API_PORT=0`:
 * the port is chosen after the dev server has started.
 */
export function codecEndpointOf(config: AppConfig): string | undefined {
  const { host, port } = config.api;
  if (port === 0) return undefined;
  const reachable = ['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(host) ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}/codec`;
}

/** Starts (or connects to) Postgres and Temporal, applies migrations and registers search attributes. */
export async function startInfrastructure(config: AppConfig, logger: Logger): Promise<InfraHandle> {
  await mkdir(config.dataDir, { recursive: true });
  let postgres: EmbeddedPostgresHandle | undefined;
  let temporal: DevServerHandle | undefined;
  let nats: EmbeddedNatsHandle | undefined;
  let policyEngine: RunningPolicyEngine | undefined;
  let referenceServices: RunningReferenceServices | undefined;
  let referenceNats: NatsConnection | undefined;
  const stop = async () => {
    await Promise.all([
      referenceServices
        ?.close()
        .catch((err: unknown) => logger.warn({ err }, 'stopping the reference services failed')),
      policyEngine?.close().catch((err: unknown) => logger.warn({ err }, 'stopping the Policy Engine failed')),
    ]);
    // The reference services' outbox publishes on this connection until they are closed.
    await referenceNats?.close().catch((err: unknown) => logger.warn({ err }, 'closing the NATS connection failed'));
    // Temporal keeps its data in SQLite, not in Postgres, and NATS in its own store: none waits for another. A closed
    // pool has asked its connections to end but not waited for it; Postgres lets them finish instead of terminating
    // them.
    await Promise.all([
      temporal?.stop().catch((err: unknown) => logger.warn({ err }, 'stopping Temporal failed')),
      nats?.stop().catch((err: unknown) => logger.warn({ err }, 'stopping nats-server failed')),
      postgres
        ?.stop({ sessionsGraceMs: 5_000 })
        .catch((err: unknown) => logger.warn({ err }, 'stopping Postgres failed')),
    ]);
  };
  try {
    const [pg, tmp, nt] = await Promise.allSettled([
      config.database.url
        ? Promise.resolve(undefined)
        : startEmbeddedPostgres({
            databaseDir: join(config.dataDir, 'postgres'),
            port: config.database.embeddedPort,
            logger,
          }),
      config.temporal.address
        ? Promise.resolve(undefined)
        : (async () => {
            await mkdir(join(config.dataDir, 'temporal'), { recursive: true });
            return startDevServer({
              ip: config.temporal.devIp,
              port: config.temporal.devPort,
              uiPort: config.temporal.uiPort,
              uiCodecEndpoint: codecEndpointOf(config),
              namespace: config.temporal.namespace,
              dbFilename: join(config.dataDir, 'temporal', 'dev-server.sqlite'),
              logger,
            });
          })(),
      config.nats.url
        ? Promise.resolve(undefined)
        : startEmbeddedNats({ storeDir: join(config.dataDir, 'nats'), port: config.nats.embeddedPort, logger }),
    ]);
    postgres = pg.status === 'fulfilled' ? pg.value : undefined;
    temporal = tmp.status === 'fulfilled' ? tmp.value : undefined;
    nats = nt.status === 'fulfilled' ? nt.value : undefined;
    if (pg.status === 'rejected') throw pg.reason;
    if (tmp.status === 'rejected') throw tmp.reason;
    if (nt.status === 'rejected') throw nt.reason;

    const databaseUrl = databaseUrlOf(config);
    await migrateConfigured(config, logger);

    const temporalAddress = temporalAddressOf(config);
    const connection = await connectTemporalClient(temporalConnectionOf(config));
    try {
      const added = await ensureSearchAttributes(connection, config.temporal.namespace);
      if (added.length > 0) logger.info({ added }, 'search attributes registered');
    } finally {
      await connection.close();
    }
    const streams = await prepareSagaStreams(config, logger);
    if (!config.policyEngine.url) {
      policyEngine = await startPolicyEngine({ host: '127.0.0.1', port: config.policyEngine.embeddedPort });
      logger.info({ url: policyEngine.url }, 'reference Policy Engine started');
    }
    let referenceEvents: EventDelivery | undefined;
    if (!config.sagas.gatewayUrl) {
      // The reference Gateway publishes its events to the aggregate stream, as the platform's aggregates do.
      referenceNats = await connectNats(config, { name: 'stellaops-reference-services' });
      referenceServices = await startReferenceServices(
        referenceServicesOptionsOf(config, logger, { nats: referenceNats }),
      );
      const delivery = eventDeliveryOf(config, { nats: referenceNats });
      referenceEvents = delivery;
      logger.info(
        { url: referenceServices.url, events: delivery.target ? delivery.description : 'none' },
        'reference services of sagas started (Gateway and sample providers)',
      );
    }
    return {
      databaseUrl,
      temporalAddress,
      temporalUiUrl: temporal?.uiUrl,
      policyEngineUrl: policyEngineUrlOf(config),
      postgres,
      temporal,
      natsServers: natsServersOf(config),
      nats,
      streams,
      policyEngine,
      gatewayUrl: gatewayUrlOf(config),
      referenceServices,
      ...(referenceEvents && { referenceEvents }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
