/**
 * Forward-only SQL migrations: `db/migrations/NNNN_name.sql`, applied in order, each in its own transaction,
 * all under one Postgres advisory lock so replicas starting together never race. Applied files are
 * checksummed; editing an applied migration is refused.
 *
 * Migrations run as the owner role. Under the same lock, every run then gives the application role (the one the
 * API and the workers connect as) exactly the privileges of {@link APPLICATION_PRIVILEGES}, so a role added to an
 * existing database, or a table added by a later migration, is granted on the next run.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { applicationRoleOf, migrationDatabaseUrlOf, type AppConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { createPool, type Pool, type PoolClient } from './pool.js';

/** Default folder of the migration files. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Advisory lock key shared by every migrator of this product ("stellaop" as a 64-bit integer). */
export const MIGRATION_LOCK_KEY = 0x7374656c6c616f70n;

/** What the application role may do on a table. */
export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/**
 * The privileges of the application role, per table: what the queries of `db/queries/` need and nothing more
 * (`INSERT … ON CONFLICT DO UPDATE` needs UPDATE; a `DELETE … WHERE` needs SELECT). `audit.events` is append-only:
 * INSERT and SELECT, never UPDATE, DELETE or TRUNCATE. A table missing here is not usable by the application role;
 * a new table needs its entry.
 */
export const APPLICATION_PRIVILEGES: Readonly<Record<string, readonly TablePrivilege[]>> = {
  'audit.events': ['SELECT', 'INSERT'],
  'scheduler.policy_runs': ['SELECT', 'INSERT', 'UPDATE'],
  'scheduler.policy_run_events': ['SELECT', 'INSERT'],
  'notify.pack_approvals': ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'notify.pack_approval_transitions': ['SELECT', 'INSERT', 'DELETE'],
  'notify.deliveries': ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'notify.rules': ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'notify.templates': ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'notify.ingested_events': ['SELECT', 'INSERT', 'DELETE'],
  'notify.signature_ids': ['SELECT', 'INSERT', 'DELETE'],
  // The ingress rewrites an event's outcomes when a second look finds its instance started meanwhile.
  'runner.ingested_events': ['SELECT', 'INSERT', 'UPDATE'],
  'runner.unmatched_events': ['SELECT', 'INSERT', 'UPDATE'],
  'runner.saga_instances': ['SELECT', 'INSERT', 'UPDATE'],
  'runner.saga_event_log': ['SELECT', 'INSERT'],
  'runner.saga_compensations': ['SELECT', 'INSERT', 'UPDATE'],
  'runner.quarantined_events': ['SELECT', 'INSERT', 'UPDATE'],
};

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** Thrown when the database and the migration files disagree. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Reads and validates the migration files of a folder. */
export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new MigrationError(`Migration file ${file} must be named NNNN_name.sql`);
    const version = Number(match[1]);
    if (version !== migrations.length + 1) {
      throw new MigrationError(`Migration ${file} is out of sequence: expected version ${migrations.length + 1}`);
    }
    const sql = await readFile(`${dir}/${file}`, 'utf8');
    migrations.push({ version, name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

const label = (m: { version: number; name: string }) => `${String(m.version).padStart(4, '0')}_${m.name}`;

/** Result of a migration run. */
export interface MigrateResult {
  applied: number[];
  alreadyApplied: number;
  /** The application role granted by this run (when one was given). */
  applicationRole?: string;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Folder of the migration files (default {@link MIGRATIONS_DIR}). */
  dir?: string;
  logger?: Logger;
  /**
   * The role the API and the workers connect as, granted {@link APPLICATION_PRIVILEGES} after the migrations;
   * undefined when they connect as the migrating role itself (then warned about, with a logger).
   */
  applicationRole?: string;
}

/**
 * Applies pending migrations, then grants the application role. Safe to call from several processes at once: the
 * advisory lock serialises them and the later ones find nothing left to do.
 */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = await readMigrations(options.dir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS public.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM public.schema_migrations ORDER BY version',
      );
      const known = new Map(migrations.map((m) => [m.version, m]));
      for (const row of rows) {
        const file = known.get(row.version);
        if (!file) throw new MigrationError(`Database has migration ${label(row)}, which is not in the code`);
        if (file.checksum !== row.checksum) {
          throw new MigrationError(`Migration ${label(row)} was changed after it was applied (checksum mismatch)`);
        }
      }
      const applied: number[] = [];
      for (const migration of migrations.slice(rows.length)) {
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO public.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
            migration.version,
            migration.name,
            migration.checksum,
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new MigrationError(`Migration ${label(migration)} failed: ${(error as Error).message}`);
        }
        applied.push(migration.version);
        options.logger?.info({ version: migration.version, name: migration.name }, 'migration applied');
      }
      const result: MigrateResult = { applied, alreadyApplied: rows.length };
      if (options.applicationRole === undefined) {
        options.logger?.warn(
          'the API and the workers use the migrating role, which owns the tables: it can switch off the ' +
            'append-only triggers of audit.events. Give them their own role (DATABASE_URL) and run migrations ' +
            'as the owner (DATABASE_MIGRATION_URL).',
        );
      } else {
        await grantApplicationRole(client, options.applicationRole, options.logger);
        result.applicationRole = options.applicationRole;
      }
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    client.release();
  }
}

/**
 * Sets the application role's privileges to exactly {@link APPLICATION_PRIVILEGES} on the tables that exist (USAGE on
 * their schemas, no CREATE), in one transaction; then warns when the role could still rewrite the audit trail
 * (a superuser, or a member of a table's owner).
 */
async function grantApplicationRole(client: PoolClient, role: string, logger: Logger | undefined): Promise<void> {
  const { rows: me } = await client.query<{ current_user: string }>('SELECT current_user');
  if (me[0]?.current_user === role) {
    throw new MigrationError(`The application role ${role} is the migrating role: grants would mean nothing`);
  }
  const { rows: existing } = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY ($1)`,
    [Object.keys(APPLICATION_PRIVILEGES)],
  );
  const tables = existing.map((row) => row.name).sort();
  const grantee = client.escapeIdentifier(role);
  const qualified = (name: string) =>
    name
      .split('.')
      .map((part) => client.escapeIdentifier(part))
      .join('.');
  await client.query('BEGIN');
  try {
    for (const schema of new Set(tables.map((name) => name.split('.')[0]!))) {
      await client.query(`REVOKE CREATE ON SCHEMA ${client.escapeIdentifier(schema)} FROM ${grantee}`);
      await client.query(`GRANT USAGE ON SCHEMA ${client.escapeIdentifier(schema)} TO ${grantee}`);
    }
    for (const table of tables) {
      await client.query(`REVOKE ALL ON TABLE ${qualified(table)} FROM ${grantee}`);
      await client.query(
        `GRANT ${APPLICATION_PRIVILEGES[table]!.join(', ')} ON TABLE ${qualified(table)} TO ${grantee}`,
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new MigrationError(`Granting the application role ${role} failed: ${(error as Error).message}`);
  }
  logger?.info({ role, tables: tables.length }, 'application role granted');

  const { rows } = await client.query<{ superuser: boolean; owns: string[] }>(
    `SELECT r.rolsuper AS superuser,
            ARRAY(SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname || '.' || c.relname = ANY ($2) AND pg_has_role(r.oid, c.relowner, 'USAGE')
                  ORDER BY 1) AS owns
     FROM pg_roles r WHERE r.rolname = $1`,
    [role, tables],
  );
  const found = rows[0];
  if (found && (found.superuser || found.owns.length > 0)) {
    logger?.warn(
      { role, superuser: found.superuser, owns: found.owns },
      'the application role can still rewrite the audit trail: it must be no superuser and own no table ' +
        '(REASSIGN OWNED BY it TO the owner role)',
    );
  }
}

/**
 * Migrates the database of `config`: connects as the owner role (`DATABASE_MIGRATION_URL`, else `DATABASE_URL`, else
 * the embedded owner) on a one-connection pool, applies pending migrations and grants the application role.
 */
export async function migrateConfigured(config: AppConfig, logger: Logger): Promise<MigrateResult> {
  const pool = createPool({
    connectionString: migrationDatabaseUrlOf(config),
    applicationName: 'stellaops-migrate',
    max: 1,
    logger,
  });
  try {
    return await migrate(pool, { logger, applicationRole: applicationRoleOf(config) });
  } finally {
    await pool.end();
  }
}
