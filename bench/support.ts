/** Shared set-up of the benchmarks: a throwaway embedded Postgres and Temporal dev server on free ports. */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { createTemporalFacade } from '../api/temporal/facade.js';
import { TASK_QUEUES } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { migrate } from '../db/migrate.js';
import { createPool, type Pool } from '../db/pool.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../stack/postgres.js';
import { startDevServer } from '../stack/temporal.js';
import { bundleWorkflows, createWorkerHost } from '../workers/host.js';
import { freePort } from '../test/support/ports.js';

export { freePort };

export const logger = createLogger({ level: 'warn', name: 'bench' });

/** A migrated Postgres in a temporary directory. */
export async function benchPostgres(): Promise<{ pool: Pool; server: EmbeddedPostgresHandle; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stellaops-bench-'));
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({
    databaseDir: join(dir, 'pg'),
    port: await freePort(),
    persistent: false,
  });
  const pool = createPool({ connectionString: server.url, applicationName: 'bench', max: 20 });
  await migrate(pool);
  return {
    pool,
    server,
    async close() {
      await pool.end();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The q-quantile (0–1) of `values` (nearest rank). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Runs `one` `count` times with `concurrency` in flight (closed loop); returns completions per second. */
export async function closedLoop(count: number, concurrency: number, one: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  return count / ((Date.now() - started) / 1000);
}

/** Postgres, a dev server and workers on every queue, as the benchmarks need them. */
export async function startBenchStack(activities: Omit<ActivityDeps, 'pool' | 'logger'>) {
  const pg = await benchPostgres();
  const server = await startDevServer({ ip: '127.0.0.1', port: await freePort(), namespace: 'default' });
  const connection = await NativeConnection.connect({ address: server.address });
  const temporal = createTemporalFacade({ address: server.address, namespace: 'default' });
  const host = await createWorkerHost({
    connection,
    namespace: 'default',
    queues: TASK_QUEUES,
    activities: createActivities({ pool: pg.pool, logger, ...activities }),
    workflowBundle: await bundleWorkflows(),
    logger,
  });
  const running = host.run();
  return {
    pool: pg.pool,
    temporal,
    async close() {
      host.shutdown();
      await running;
      await connection.close();
      await temporal.close();
      await server.stop();
      await pg.close();
    },
  };
}
