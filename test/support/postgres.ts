/** A fresh, migrated database per test file on the test run's embedded Postgres. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';

/** An isolated database. */
export interface TestDatabase {
  url: string;
  pool: Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.STELLAOPS_TEST_PG_ADMIN_URL;
  if (!url)
    throw new Error('STELLAOPS_TEST_PG_ADMIN_URL is not set: run the tests through `npm test` (vitest globalSetup).');
  return url;
}

/** Creates an empty database; `migrated` (default true) applies the migrations. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const pool = createPool({ connectionString: url.toString(), applicationName: 'stellaops-test' });
  if (options.migrated !== false) await migrate(pool);
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: adminUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
