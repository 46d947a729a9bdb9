/**
 * A fresh, migrated database per test file on the test run's embedded Postgres, with the roles of production: the
 * owner role owns the database and runs the migrations, the application role (what `pool` connects as) has only
 * the grants of `APPLICATION_PRIVILEGES`, so a query the product makes without a grant fails the test.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { EMBEDDED_PG_ROLES, type EmbeddedPgRole } from '../../core/config.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';

/** An isolated database. */
export interface TestDatabase {
  /** Connection string of the application role (what the API and the workers use). */
  url: string;
  /** A pool of the application role. */
  pool: Pool;
  /** Connection string of the owner role (migrations). */
  ownerUrl: string;
  /** Connection string of the bootstrap superuser (what no product process uses). */
  adminUrl: string;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.STELLAOPS_TEST_PG_ADMIN_URL;
  if (!url)
    throw new Error('STELLAOPS_TEST_PG_ADMIN_URL is not set: run the tests through `npm test` (vitest globalSetup).');
  return url;
}

/** The connection string of `database` on the test server as `role`. */
function urlOf(database: string, role: EmbeddedPgRole): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  if (role !== 'admin') {
    url.username = EMBEDDED_PG_ROLES[role].user;
    url.password = EMBEDDED_PG_ROLES[role].password;
  }
  return url.toString();
}

/**
 * Creates an empty database owned by the owner role; `migrated` (default true) applies the migrations as the owner
 * and grants the application role.
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} OWNER ${EMBEDDED_PG_ROLES.owner.user}`);
  } finally {
    await admin.end();
  }
  if (options.migrated !== false) {
    const owner = createPool({ connectionString: urlOf(name, 'owner'), applicationName: 'stellaops-test-migrate' });
    try {
      await migrate(owner, { applicationRole: EMBEDDED_PG_ROLES.application.user });
    } finally {
      await owner.end();
    }
  }
  const url = urlOf(name, 'application');
  const pool = createPool({ connectionString: url, applicationName: 'stellaops-test' });
  return {
    url,
    pool,
    ownerUrl: urlOf(name, 'owner'),
    adminUrl: urlOf(name, 'admin'),
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
