/**
 * An API on its own embedded Postgres and Temporal dev server, either of which a test stops and starts again: the
 * set-up of the outage tests. The API connects as the application role, like production.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { EMBEDDED_PG_ROLES, loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../stack/postgres.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from './auth.js';
import { freePort } from './ports.js';
import { createDevServerEnv } from './temporal.js';

/** The running stack; `postgres` and `temporalEnv` change when a test restarts them. */
export interface OutageStack {
  app: FastifyInstance;
  /** The API's pool (application role). */
  pool: Pool;
  temporal: TemporalFacade;
  signer: TestSigner;
  postgres: EmbeddedPostgresHandle;
  temporalEnv: TestWorkflowEnvironment | undefined;
  /** Starts Postgres again on the same port and data directory. */
  startPostgres(): Promise<void>;
  /** Starts the dev server again on the same port and database file. */
  startTemporal(): Promise<void>;
  /** Stops the dev server (a Temporal outage). */
  stopTemporal(): Promise<void>;
  close(): Promise<void>;
}

/** Starts Postgres (migrated, with its roles), a dev server and the API on them. */
export async function startOutageStack(name: string): Promise<OutageStack> {
  const dir = await mkdtemp(join(tmpdir(), `stellaops-${name}-`));
  await chmod(dir, 0o755); // the postgres system user must reach the data directory
  const [pgPort, temporalPort] = await Promise.all([freePort(), freePort()]);
  const runPostgres = () => startEmbeddedPostgres({ databaseDir: join(dir, 'pg'), port: pgPort });
  const runTemporal = () => createDevServerEnv({ port: temporalPort, dbFilename: join(dir, 'temporal.sqlite') });
  const [postgres, temporalEnv, signer] = await Promise.all([runPostgres(), runTemporal(), createTestSigner()]);

  const owner = createPool({ connectionString: postgres.ownerUrl, applicationName: `${name}-migrate` });
  try {
    await migrate(owner, { applicationRole: EMBEDDED_PG_ROLES.application.user });
  } finally {
    await owner.end();
  }
  const pool = createPool({ connectionString: postgres.applicationUrl, applicationName: `${name}-test` });
  const temporal = createTemporalFacade({ address: `127.0.0.1:${temporalPort}`, namespace: 'default' });
  const app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger: createLogger({ level: 'silent' }),
    pool,
    temporal,
    verifyToken: signer.verifier,
  });

  const stack: OutageStack = {
    app,
    pool,
    temporal,
    signer,
    postgres,
    temporalEnv,
    async startPostgres() {
      stack.postgres = await runPostgres();
    },
    async startTemporal() {
      stack.temporalEnv = await runTemporal();
    },
    async stopTemporal() {
      await stack.temporalEnv?.teardown();
      stack.temporalEnv = undefined;
    },
    async close() {
      await app.close();
      await pool.end();
      await temporal.close();
      await stack.temporalEnv?.teardown();
      await stack.postgres.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}
