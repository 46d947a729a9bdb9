/**
 * Metrics endpoint latency with 1k vs 1M historical runs in `scheduler.policy_runs` (same tenant, worst case).
 * Requests go through the real route (`app.inject`), so validation, auth and serialisation are included.
 * Reports p50/p99 of each and the ratio p99(1M) / p99(1k); the goal is ≤ 1.5.
 */
import { buildApp } from '../api/app.js';
import { createTemporalFacade } from '../api/temporal/facade.js';
import { loadBenchConfig, loadConfig } from '../core/config.js';
import { Scope } from '../core/scopes.js';
import type { Pool } from '../db/pool.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../test/support/auth.js';
import { benchPostgres, logger, quantile } from './support.js';

const { requests: REQUESTS, largeRows: LARGE } = loadBenchConfig().metrics;

/** Inserts `count` terminal runs (and a few active ones) for tenant `bench`, starting at sequence `from`. */
async function seed(pool: Pool, from: number, count: number): Promise<void> {
  const chunk = 100_000;
  for (let start = from; start < from + count; start += chunk) {
    const end = Math.min(from + count, start + chunk) - 1;
    await pool.query(
      `INSERT INTO scheduler.policy_runs
         (tenant_id, run_id, policy_id, policy_version, status, priority, queued_at, started_at, finished_at, revision, document)
       SELECT 'bench', 'run-' || g, 'policy-' || (g % 20), 1 + g % 5,
              (ARRAY['succeeded','succeeded','succeeded','failed','cancelled'])[1 + g % 5], 'normal',
              t, t + interval '1 second', t + (1 + g % 90) * interval '1 second', 3, '{}'::jsonb
       FROM generate_series($1::int, $2::int) AS g,
            LATERAL (SELECT timestamptz '2026-01-01' + g * interval '2 seconds' AS t) AS ts`,
      [start, end],
    );
  }
  await pool.query(`ANALYZE scheduler.policy_runs`);
}

async function measure(app: Awaited<ReturnType<typeof buildApp>>, token: string): Promise<number[]> {
  const url = '/api/v1/scheduler/policies/simulations/metrics';
  const headers = { authorization: `Bearer ${token}` };
  for (let i = 0; i < 30; i++) await app.inject({ method: 'GET', url, headers }); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = process.hrtime.bigint();
    const res = await app.inject({ method: 'GET', url, headers });
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (res.statusCode !== 200) throw new Error(`metrics answered ${res.statusCode}: ${res.body}`);
  }
  return samples;
}

export async function benchMetricsLatency(): Promise<Record<string, number>> {
  const pg = await benchPostgres();
  const signer = await createTestSigner();
  // The metrics route never calls Temporal; the lazy connection is never opened.
  const temporal = createTemporalFacade({ address: '127.0.0.1:1', namespace: 'default' });
  const app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger,
    pool: pg.pool,
    temporal,
    verifyToken: signer.verifier,
  });
  const token = await signer.token({ tenant: 'bench', scopes: [Scope.PolicySimulate] });
  try {
    await seed(pg.pool, 0, 1_000);
    const small = await measure(app, token);
    const seedStarted = Date.now();
    await seed(pg.pool, 1_000, LARGE - 1_000);
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    const large = await measure(app, token);
    const result = {
      p50_1k_ms: quantile(small, 0.5),
      p99_1k_ms: quantile(small, 0.99),
      p50_large_ms: quantile(large, 0.5),
      p99_large_ms: quantile(large, 0.99),
      rows_large: LARGE,
      seed_seconds: seedSeconds,
      ratio_p99: quantile(large, 0.99) / quantile(small, 0.99),
    };
    return result;
  } finally {
    await app.close();
    await temporal.close();
    await pg.close();
  }
}
