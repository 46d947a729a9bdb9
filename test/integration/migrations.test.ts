/**
 * Migrations on a real Postgres, run as the owner role: concurrent migrators, checksums, the append-only audit
 * table (the application role's view of it is test/integration/database-roles.test.ts).
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS_DIR, MigrationError, readMigrations } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createTestDatabase } from '../support/postgres.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
/** An empty database and a pool of its owner role (the role migrations run as). */
async function emptyDatabase(): Promise<{ url: string; pool: Pool }> {
  const db = await createTestDatabase({ migrated: false });
  const pool = createPool({ connectionString: db.ownerUrl, applicationName: 'stellaops-test-owner' });
  cleanups.push(async () => {
    await pool.end();
    await db.drop();
  });
  return { url: db.ownerUrl, pool };
}

describe('migrate', () => {
  it('lets several replicas migrate at once: each migration is applied exactly once', async () => {
    const db = await emptyDatabase();
    // A slow extra migration widens the race window: without the lock the others would run it concurrently.
    const dir = await mkdtemp(join(tmpdir(), 'stellaops-mig-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const next = String((await readMigrations()).length + 1).padStart(4, '0');
    await writeFile(
      join(dir, `${next}_slow.sql`),
      'SELECT pg_sleep(0.5); CREATE TABLE audit.race_probe (id int PRIMARY KEY);',
    );

    const pools = Array.from({ length: 4 }, (_, i) =>
      createPool({ connectionString: db.url, applicationName: `replica-${i}`, max: 1 }),
    );
    cleanups.push(async () => {
      await Promise.all(pools.map((p) => p.end()));
    });
    const results = await Promise.all(pools.map((pool) => migrate(pool, { dir })));

    const total = (await readMigrations(dir)).length;
    const appliedBy = results.filter((r) => r.applied.length > 0);
    expect(appliedBy).toHaveLength(1);
    expect(appliedBy[0]!.applied).toHaveLength(total);
    expect(results.filter((r) => r.applied.length === 0).every((r) => r.alreadyApplied === total)).toBe(true);
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM public.schema_migrations');
    expect(Number(rows[0]!.n)).toBe(total);
  });

  it('is a no-op the second time', async () => {
    const db = await emptyDatabase();
    const first = await migrate(db.pool);
    const second = await migrate(db.pool);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(second).toEqual({ applied: [], alreadyApplied: first.applied.length });
  });

  it('refuses to run when an applied migration was edited', async () => {
    const db = await emptyDatabase();
    await migrate(db.pool);
    const dir = await mkdtemp(join(tmpdir(), 'stellaops-mig-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const [first] = await readMigrations(dir);
    await writeFile(join(dir, `0001_${first!.name}.sql`), `${first!.sql}\n-- edited\n`);
    await expect(migrate(db.pool, { dir })).rejects.toThrow(MigrationError);
    await expect(migrate(db.pool, { dir })).rejects.toThrow(/checksum mismatch/);
  });

  it('rolls back a failing migration and records nothing for it', async () => {
    const db = await emptyDatabase();
    const dir = await mkdtemp(join(tmpdir(), 'stellaops-mig-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, '0001_ok.sql'), 'CREATE TABLE public.ok_table (id int);');
    await writeFile(join(dir, '0002_broken.sql'), 'CREATE TABLE public.half (id int); SELECT * FROM no_such_table;');
    await expect(migrate(db.pool, { dir })).rejects.toThrow(/0002_broken failed/);
    const { rows } = await db.pool.query<{ version: number }>('SELECT version FROM public.schema_migrations');
    expect(rows.map((r) => r.version)).toEqual([1]);
    const half = await db.pool.query("SELECT to_regclass('public.half') AS t");
    expect(half.rows[0]).toEqual({ t: null });
  });
});

describe('audit.events', () => {
  it('accepts inserts and refuses UPDATE, DELETE and TRUNCATE', async () => {
    const db = await emptyDatabase();
    await migrate(db.pool);
    await db.pool.query("INSERT INTO audit.events (tenant_id, event_type) VALUES ('t1', 'test.inserted')");
    await expect(db.pool.query("UPDATE audit.events SET event_type = 'x'")).rejects.toThrow(/append-only/);
    await expect(db.pool.query('DELETE FROM audit.events')).rejects.toThrow(/append-only/);
    await expect(db.pool.query('TRUNCATE audit.events')).rejects.toThrow(/append-only/);
    const { rows } = await db.pool.query<{ event_type: string }>('SELECT event_type FROM audit.events');
    expect(rows).toEqual([{ event_type: 'test.inserted' }]);
  });
});
