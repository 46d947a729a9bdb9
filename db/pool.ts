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

/**
 * Runs `fn` in a transaction on one client; rolls back on error. When `fn` had effects outside Postgres, `undo`
 * reverts them if the commit itself fails (the connection lost after `fn` succeeded), before the error is rethrown.
 */
export async function withTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  undo?: () => Promise<unknown>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    try {
      await client.query('COMMIT');
    } catch (error) {
      broken = error as Error;
      if (undo) await undo().catch(() => undefined);
      throw error;
    }
    return result;
  } catch (error) {
    if (!broken) await client.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
    throw error;
  } finally {
    // A client whose connection failed is discarded instead of going back to the pool.
    client.release(broken);
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
