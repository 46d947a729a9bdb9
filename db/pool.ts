/** The one Postgres pool of a process. */
import pg from 'pg';
import type { Logger } from '../core/logger.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** Creates a pool tagged with `application_name`; idle-client errors are logged instead of crashing the process. */
export function createPool(options: {
  connectionString: string;
  applicationName: string;
  max?: number;
  logger?: Logger;
}): Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    application_name: options.applicationName,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // A server restart kills idle connections; pg emits 'error' on the pool, which would otherwise crash the process.
  pool.on('error', (error) => options.logger?.warn({ err: error }, 'postgres idle client error'));
  return pool;
}

/** Runs `fn` in a transaction on one client; rolls back on error. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * A constant list of identifiers-like strings (statuses, states) as SQL literals (`'a', 'b'`), for predicates that
 * must stay literal so the planner matches them with partial indexes; anything but `[a-z_-]` is refused.
 */
export function sqlLiterals(values: readonly string[]): string {
  for (const value of values) {
    if (!/^[a-z_-]+$/.test(value)) throw new Error(`not a plain SQL literal: ${JSON.stringify(value)}`);
  }
  return values.map((value) => `'${value}'`).join(', ');
}
