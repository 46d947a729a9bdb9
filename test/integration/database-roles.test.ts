/**
 * The two database roles: the application role (what the API and the workers connect as) cannot rewrite the audit
 * trail by any route — not with UPDATE/DELETE/TRUNCATE, not by switching the triggers off, not in replica mode — and
 * has exactly the grants the product's queries need; the owner role runs migrations; the embedded stack creates
 * both, also on a data directory from before the roles existed.
 */
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PG, EMBEDDED_PG_ROLES } from '../../core/config.js';
import { APPLICATION_PRIVILEGES, migrate, MIGRATIONS_DIR, readMigrations } from '../../db/migrate.js';
import { createPool } from '../../db/pool.js';
import { startEmbeddedPostgres } from '../../stack/postgres.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const APP = EMBEDDED_PG_ROLES.application.user;
const OWNER = EMBEDDED_PG_ROLES.owner.user;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Runs `fn` on a fresh session of `url` (session settings do not leak into a pool). */
async function session<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function auditEvent(client: pg.Client | pg.Pool, eventType: string): Promise<void> {
  await client.query("INSERT INTO audit.events (tenant_id, event_type) VALUES ('roles', $1)", [eventType]);
}

async function auditEventTypes(): Promise<string[]> {
  const { rows } = await db.pool.query<{ event_type: string }>(
    "SELECT event_type FROM audit.events WHERE tenant_id = 'roles' ORDER BY id",
  );
  return rows.map((row) => row.event_type);
}

describe('the application role', () => {
  it('connects as a role that is no superuser and owns nothing', async () => {
    const { rows } = await db.pool.query<{ user: string; superuser: boolean; owned: number }>(
      `SELECT current_user AS user, r.rolsuper AS superuser,
              (SELECT count(*)::int FROM pg_class c WHERE pg_has_role(current_user, c.relowner, 'USAGE')
                 AND c.relnamespace::regnamespace::text IN ('audit', 'notify', 'scheduler', 'runner')) AS owned
       FROM pg_roles r WHERE r.rolname = current_user`,
    );
    expect(rows).toEqual([{ user: APP, superuser: false, owned: 0 }]);
  });

  it('inserts and reads audit events, and is refused UPDATE, DELETE and TRUNCATE', async () => {
    await auditEvent(db.pool, 'roles.inserted');
    expect(await auditEventTypes()).toEqual(['roles.inserted']);
    await expect(db.pool.query("UPDATE audit.events SET event_type = 'x'")).rejects.toThrow(/permission denied/);
    await expect(db.pool.query('DELETE FROM audit.events')).rejects.toThrow(/permission denied/);
    await expect(db.pool.query('TRUNCATE audit.events')).rejects.toThrow(/permission denied/);
    expect(await auditEventTypes()).toEqual(['roles.inserted']);
  });

  it('cannot switch the append-only triggers off and then delete', async () => {
    await auditEvent(db.pool, 'roles.before-disable');
    await session(db.url, async (client) => {
      await expect(client.query('ALTER TABLE audit.events DISABLE TRIGGER USER')).rejects.toThrow(/must be owner/);
      await expect(client.query('DELETE FROM audit.events')).rejects.toThrow(/permission denied/);
    });
    expect(await auditEventTypes()).toContain('roles.before-disable');
  });

  it('cannot enter replica mode (which skips ordinary triggers) and then delete or update', async () => {
    await auditEvent(db.pool, 'roles.before-replica');
    await session(db.url, async (client) => {
      await expect(client.query('SET session_replication_role = replica')).rejects.toThrow(/permission denied/);
      await expect(client.query('DELETE FROM audit.events')).rejects.toThrow(/permission denied/);
      await expect(client.query("UPDATE audit.events SET event_type = 'rewritten'")).rejects.toThrow(
        /permission denied/,
      );
    });
    const types = await auditEventTypes();
    expect(types).toContain('roles.before-replica');
    expect(types).not.toContain('rewritten');
  });

  it('has exactly the privileges of APPLICATION_PRIVILEGES, on every table of the product schemas', async () => {
    const { rows } = await db.pool.query<{ name: string; privileges: string[] }>(
      `SELECT n.nspname || '.' || c.relname AS name,
              ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                                               'TRIGGER']) AS p
                    WHERE has_table_privilege(current_user, c.oid, p)) AS privileges
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('audit', 'notify', 'scheduler', 'runner')
       ORDER BY 1`,
    );
    // A table a migration adds without an entry would show up here with no privileges.
    expect(Object.fromEntries(rows.map((row) => [row.name, row.privileges]))).toEqual(
      Object.fromEntries(
        Object.entries(APPLICATION_PRIVILEGES)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, privileges]) => [name, [...privileges]]),
      ),
    );
    const schemas = await db.pool.query<{ schema: string; create: boolean }>(
      `SELECT nspname AS schema, has_schema_privilege(current_user, oid, 'CREATE') AS create FROM pg_namespace
       WHERE nspname IN ('audit', 'notify', 'scheduler', 'runner', 'public')`,
    );
    expect(schemas.rows.filter((row) => row.create)).toEqual([]);
  });
});

describe('the owner role', () => {
  it('runs the migrations: the tables are its own and the audit triggers still refuse it', async () => {
    await session(db.ownerUrl, async (client) => {
      const { rows } = await client.query<{ owner: string }>(
        "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'audit.events'::regclass",
      );
      expect(rows).toEqual([{ owner: OWNER }]);
      await auditEvent(client, 'roles.by-owner');
      await expect(client.query("UPDATE audit.events SET event_type = 'x'")).rejects.toThrow(/append-only/);
      await expect(client.query('DELETE FROM audit.events')).rejects.toThrow(/append-only/);
      await expect(client.query('TRUNCATE audit.events')).rejects.toThrow(/append-only/);
      await expect(client.query('SET session_replication_role = replica')).rejects.toThrow(/permission denied/);
    });
    expect(await auditEventTypes()).toContain('roles.by-owner');
  });

  it('keeps the append-only triggers firing even in replica mode (a superuser session)', async () => {
    await session(db.adminUrl, async (client) => {
      await client.query('SET session_replication_role = replica');
      await expect(client.query('DELETE FROM audit.events')).rejects.toThrow(/append-only/);
      await client.query(
        `INSERT INTO notify.pack_approval_transitions (tenant_id, run_id, approval_id, seq, to_state, actor, correlation_id)
         VALUES ('roles', 'r', 'a', 1, 'pending', 'test', 'c')`,
      );
      await expect(client.query("UPDATE notify.pack_approval_transitions SET actor = 'x'")).rejects.toThrow(
        /append-only/,
      );
    });
  });

  it('grants idempotently when several replicas migrate at once', async () => {
    const pools = Array.from({ length: 4 }, (_, i) =>
      createPool({ connectionString: db.ownerUrl, applicationName: `replica-${i}`, max: 1 }),
    );
    try {
      const results = await Promise.all(pools.map((pool) => migrate(pool, { applicationRole: APP })));
      const total = (await readMigrations()).length;
      expect(results).toEqual(Array(4).fill({ applied: [], alreadyApplied: total, applicationRole: APP }));
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
    await auditEvent(db.pool, 'roles.after-regrant');
    await expect(db.pool.query('DELETE FROM audit.events')).rejects.toThrow(/permission denied/);
  });
});

describe('the embedded Postgres', () => {
  it('hands a database from before the roles over to the owner role, and the application role cannot bypass', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stellaops-roles-pg-'));
    await chmod(dir, 0o755); // the postgres system user must reach the data directory
    try {
      const port = await freePort();
      const options = { databaseDir: join(dir, 'data'), port, database: 'stellaops' };
      // A data directory as older versions left it: database, tables and migrations all owned by the superuser.
      const first = await startEmbeddedPostgres(options);
      try {
        await session(first.url, (client) => client.query(`ALTER DATABASE stellaops OWNER TO ${EMBEDDED_PG.user}`));
        const legacy = createPool({ connectionString: first.url, applicationName: 'legacy-migrate', max: 1 });
        try {
          // The migrations of that time: 0001-0004.
          const dir4 = await mkdtemp(join(tmpdir(), 'stellaops-roles-mig-'));
          try {
            for (const m of (await readMigrations()).slice(0, 4)) {
              const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`;
              await cp(join(MIGRATIONS_DIR, file), join(dir4, file));
            }
            await migrate(legacy, { dir: dir4 });
          } finally {
            await rm(dir4, { recursive: true, force: true });
          }
        } finally {
          await legacy.end();
        }
      } finally {
        await first.stop();
      }

      const second = await startEmbeddedPostgres(options);
      try {
        const owner = createPool({ connectionString: second.ownerUrl, applicationName: 'owner-migrate', max: 1 });
        try {
          const result = await migrate(owner, { applicationRole: APP });
          // Every migration after that time.
          expect(result.applied).toEqual((await readMigrations()).slice(4).map((m) => m.version));
        } finally {
          await owner.end();
        }
        await session(second.applicationUrl, async (client) => {
          await auditEvent(client, 'roles.upgraded');
          await expect(client.query('ALTER TABLE audit.events DISABLE TRIGGER USER')).rejects.toThrow(/must be owner/);
          await expect(client.query('SET session_replication_role = replica')).rejects.toThrow(/permission denied/);
          await expect(client.query('DELETE FROM audit.events')).rejects.toThrow(/permission denied/);
          const { rows } = await client.query<{ event_type: string }>('SELECT event_type FROM audit.events');
          expect(rows).toEqual([{ event_type: 'roles.upgraded' }]);
        });
        const { rows } = await session(second.url, (client) =>
          client.query<{ name: string }>(
            `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('audit', 'notify', 'scheduler', 'runner', 'public') AND c.relkind IN ('r', 'S')
               AND pg_get_userbyid(c.relowner) <> $1`,
            [OWNER],
          ),
        );
        expect(rows).toEqual([]);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
