/**
 * The production Temporal server on Postgres, as docker-compose.yml runs it (persistence and SQL visibility in two
 * databases, the product's dynamic configuration), started from the binaries `stack/binaries.ts` provisions: the
 * databases are created when missing, their schemas installed and upgraded with the server's own SQL tool from the
 * release's `schema/postgresql/v12`, a configuration rendered from the release's `development-postgres12.yaml` with
 * free loopback ports for the four services and their membership, and the server started in a process group of its
 * own (see `server-process.ts`) and waited for until its frontend reports SERVING — what the compose health check
 * asks. It runs no namespace setup: that is `docker/temporal/register-search-attributes.sh`, as in compose.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import type { Logger } from '../core/logger.js';
import {
  resolveTemporalServer,
  resolveTemporalServerModule,
  resolveTemporalSqlTool,
  type ResolveOptions,
} from './binaries.js';
import { bindablePort, randomFreePort } from './ports.js';
import { describeExit, startServerProcess } from './server-process.js';
import { logServerLine } from './temporal.js';

/** The Postgres the server keeps its state in, and the role it connects as. */
export interface TemporalPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The persistence database (default `temporal`). */
  database?: string;
  /** The SQL visibility database (default `temporal_visibility`). */
  visibilityDatabase?: string;
}

/** Options of {@link startTemporalServer}. */
export interface TemporalServerOptions {
  postgres: TemporalPostgres;
  /** Where the rendered configuration goes (`{dir}/config/stellaops.yaml`). */
  dir: string;
  /** The dynamic configuration file (docker/temporal/dynamicconfig.yaml for the compose stack); none by default. */
  dynamicConfigFile?: string;
  logger?: Logger;
  /** Milliseconds to wait for SERVING (default 120 s: the first start of a cluster creates its system namespace). */
  readyTimeoutMs?: number;
  /** Where to look for the binaries and the module (tests point it at a sandbox); the process environment by default. */
  env?: ResolveOptions['env'];
}

/** The ports of the four services, chosen free at start. */
export interface TemporalServerPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

/** A running production Temporal server. */
export interface TemporalServerHandle {
  /** `host:port` of the frontend (gRPC). */
  address: string;
  ports: TemporalServerPorts;
  /** The rendered configuration file. */
  configFile: string;
  pid: number | undefined;
  /** Stops it (SIGTERM: the services stop in order); idempotent. */
  stop(): Promise<void>;
}

const run = promisify(execFile);
/** Loopback only: the server runs without authorization (`--allow-no-auth`), as the compose stack's does. */
const HOST = '127.0.0.1';
const { SERVING } = proto.grpc.health.v1.HealthCheckResponse.ServingStatus;

/**
 * Membership ports are kept in a `smallint` column of the cluster membership table (a larger one stops the server:
 * "value out of range for type smallint"), and the kernel hands out ephemeral ports above 32767: these are picked
 * at random below that, skipping the well-known range.
 */
async function freeMembershipPort(): Promise<number> {
  const port = await randomFreePort(10_000, 32_766);
  if (port === undefined) throw new Error('no free membership port between 10000 and 32766 on 127.0.0.1');
  return port;
}

async function freePorts(): Promise<TemporalServerPorts> {
  const ports = new Set<number>();
  // Each port is released before the next is asked for, so one may come back twice: ask again then.
  const next = async (pick: () => Promise<number | undefined>): Promise<number> => {
    for (;;) {
      const port = await pick();
      if (port && !ports.has(port)) {
        ports.add(port);
        return port;
      }
    }
  };
  const any = () => next(() => bindablePort(0));
  const membership = () => next(freeMembershipPort);
  return {
    frontend: await any(),
    frontendHttp: await any(),
    frontendMembership: await membership(),
    history: await any(),
    historyMembership: await membership(),
    matching: await any(),
    matchingMembership: await membership(),
    worker: await any(),
    workerMembership: await membership(),
    metrics: await any(),
  };
}

/** Creates the databases the role lacks (it needs CREATEDB then; compose's postgres init creates them instead). */
async function ensureDatabases(postgres: Required<TemporalPostgres>): Promise<void> {
  const client = new pg.Client({
    host: postgres.host,
    port: postgres.port,
    user: postgres.user,
    password: postgres.password,
    database: 'postgres',
  });
  await client.connect();
  try {
    for (const database of [postgres.database, postgres.visibilityDatabase]) {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } finally {
    await client.end();
  }
}

/**
 * Installs (first run) and upgrades the schema of `database` from `versionedDir` with the server's SQL tool, as the
 * server's own auto-setup does: `setup-schema -v 0.0` creates the version table, `update-schema` applies every
 * version above the installed one. The password goes through the environment, never the command line.
 */
async function installSchema(
  sqlTool: string,
  postgres: Required<TemporalPostgres>,
  database: string,
  versionedDir: string,
): Promise<void> {
  const connection = ['--plugin', 'postgres12', '--endpoint', postgres.host, '--port', String(postgres.port)];
  const args = [...connection, '--user', postgres.user, '--database', database];
  const env = { ...process.env, SQL_PASSWORD: postgres.password };
  for (const command of [
    ['setup-schema', '-v', '0.0'],
    ['update-schema', '-d', versionedDir],
  ]) {
    try {
      await run(sqlTool, [...args, ...command], { env, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(
        `temporal-sql-tool ${command[0]} of ${database} failed:\n${`${stdout}\n${stderr}`.trim().slice(-4000)}`,
      );
    }
  }
}

/** The parts of the release's configuration template that are rendered per server. */
interface ServerConfigTemplate {
  log: unknown;
  persistence: { datastores: Record<'postgres-default' | 'postgres-visibility', { sql: Record<string, unknown> }> };
  global: {
    membership: { broadcastAddress: string };
    pprof: unknown;
    metrics: { prometheus: { listenAddress: string } };
  };
  services: unknown;
  clusterMetadata: { clusterInformation: { active: { rpcAddress: string } } };
  dynamicConfigClient: unknown;
}

/**
 * The release's Postgres configuration with this server's databases, credentials, ports and dynamic configuration.
 * Nothing else of the template changes (archival stays available to namespaces, off by default, as in compose).
 */
function renderConfig(
  template: string,
  options: {
    postgres: Required<TemporalPostgres>;
    ports: TemporalServerPorts;
    dynamicConfigFile: string;
  },
): string {
  const config = parse(template) as ServerConfigTemplate;
  const { postgres, ports } = options;
  const datastores = config.persistence.datastores;
  for (const [store, database] of [
    ['postgres-default', postgres.database],
    ['postgres-visibility', postgres.visibilityDatabase],
  ] as const) {
    Object.assign(datastores[store].sql, {
      databaseName: database,
      connectAddr: `${postgres.host}:${postgres.port}`,
      user: postgres.user,
      password: postgres.password,
    });
  }
  config.log = { stdout: true, level: 'warn', format: 'json' };
  config.global.membership.broadcastAddress = HOST;
  // No profiler port: nothing here reads it.
  config.global.pprof = { port: 0 };
  config.global.metrics.prometheus.listenAddress = `${HOST}:${ports.metrics}`;
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, number> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: HOST, ...extra },
  });
  config.services = {
    frontend: rpc(ports.frontend, ports.frontendMembership, { httpPort: ports.frontendHttp }),
    history: rpc(ports.history, ports.historyMembership),
    matching: rpc(ports.matching, ports.matchingMembership),
    worker: rpc(ports.worker, ports.workerMembership),
  };
  config.clusterMetadata.clusterInformation.active.rpcAddress = `${HOST}:${ports.frontend}`;
  config.dynamicConfigClient = { filepath: options.dynamicConfigFile, pollInterval: '10s' };
  return stringify(config);
}

/** Waits until the frontend's gRPC health check reports SERVING (what `temporal operator cluster health` asks). */
async function waitForServing(
  server: ReturnType<typeof startServerProcess>,
  address: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!server.running()) {
      throw new Error(`The Temporal server ${describeExit(await server.exited)}:\n${server.recentOutput()}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        const { status } = await connection.healthService.check({});
        if (status === SERVING) return;
        lastError = new Error(`health status ${status}`);
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `The Temporal server did not report SERVING on ${address} within ${timeoutMs} ms (${String(lastError)}):\n` +
      server.recentOutput(),
  );
}

/**
 * Starts the production Temporal server on `options.postgres`: databases, schemas, configuration, process, health.
 * @throws BinaryUnavailableError when the server, its SQL tool or the release's files cannot be provisioned; Error
 *   quoting the tool's or the server's output when the schema setup fails or the server does not become SERVING.
 */
export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServerHandle> {
  const resolveOptions = {
    ...(options.env && { env: options.env }),
    log: (message: string) => options.logger?.info(message),
  };
  const [server, sqlTool, module] = await Promise.all([
    resolveTemporalServer(resolveOptions),
    resolveTemporalSqlTool(resolveOptions),
    resolveTemporalServerModule(resolveOptions),
  ]);
  const postgres: Required<TemporalPostgres> = {
    database: 'temporal',
    visibilityDatabase: 'temporal_visibility',
    ...options.postgres,
  };

  await ensureDatabases(postgres);
  await installSchema(sqlTool.path, postgres, postgres.database, module.postgresSchemaDir);
  await installSchema(sqlTool.path, postgres, postgres.visibilityDatabase, module.postgresVisibilitySchemaDir);

  const configDir = join(options.dir, 'config');
  await mkdir(configDir, { recursive: true });
  let dynamicConfigFile = options.dynamicConfigFile;
  if (!dynamicConfigFile) {
    dynamicConfigFile = join(configDir, 'dynamicconfig.yaml');
    await writeFile(dynamicConfigFile, '{}\n');
  }
  const ports = await freePorts();
  const configFile = join(configDir, 'stellaops.yaml');
  await writeFile(
    configFile,
    renderConfig(await readFile(module.postgresConfigTemplate, 'utf8'), { postgres, ports, dynamicConfigFile }),
    { mode: 0o600 }, // it holds the database password
  );

  options.logger?.info({ path: server.path, ports }, 'starting the Temporal server');
  const temporal = startServerProcess({
    name: 'temporal-server',
    command: server.path,
    args: ['--root', options.dir, '--config', 'config', '--env', 'stellaops', '--allow-no-auth', 'start'],
    stopSignal: 'SIGTERM',
    onLine: (line) => logServerLine(options.logger, line, temporal.stopping),
  });
  const address = `${HOST}:${ports.frontend}`;
  try {
    await waitForServing(temporal, address, options.readyTimeoutMs ?? 120_000);
  } catch (error) {
    await temporal.stop();
    throw error;
  }
  return { address, ports, configFile, pid: temporal.pid, stop: () => temporal.stop() };
}
