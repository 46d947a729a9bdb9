/**
 * Forward-only SQL migrations: `db/migrations/NNNN_name.sql`, applied in order, each in its own transaction,
 * all under one Postgres advisory lock so replicas starting together never race. Applied files are
 * checksummed; editing an applied migration is refused.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/logger.js';
import type { Pool } from './pool.js';

/** Default folder of the migration files. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Advisory lock key shared by every migrator of this product ("stellaop" as a 64-bit integer). */
export const MIGRATION_LOCK_KEY = 0x7374656c6c616f70n;

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
}

/**
 * Applies pending migrations. Safe to call from several processes at once: the advisory lock serialises them
 * and the later ones find nothing left to do.
 */
export async function migrate(pool: Pool, options: { dir?: string; logger?: Logger } = {}): Promise<MigrateResult> {
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
      return { applied, alreadyApplied: rows.length };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    client.release();
  }
}
