/**
 * Runs once per `npm test`: provisions the Temporal binaries (the production server and its SQL tool included) and
 * nats-server (building them into the cache when needed) and
 * starts one embedded Postgres in a temporary directory. Test files get them through environment variables,
 * which the forked test workers inherit, and create their own database each.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedDatabaseUrl } from '../../core/config.js';
import { provisionAll } from '../../stack/binaries.js';
import { startEmbeddedPostgres } from '../../stack/postgres.js';
import { freePort } from './ports.js';

export default async function setup(): Promise<() => Promise<void>> {
  const log = (message: string) => console.log(`[setup] ${message}`);
  const { cli, testServer, nats, server, sqlTool, serverModule, chromium } = await provisionAll({ log });
  if (cli.path) process.env.TEMPORAL_CLI_PATH = cli.path;
  if (testServer.path) process.env.TEMPORAL_TEST_SERVER_PATH = testServer.path;
  process.env.NATS_SERVER_PATH = nats.path;
  process.env.TEMPORAL_SERVER_PATH = server.path;
  process.env.TEMPORAL_SQL_TOOL_PATH = sqlTool.path;
  process.env.TEMPORAL_SERVER_MODULE_DIR = serverModule.dir;
  log(
    `Temporal CLI: ${cli.path ?? 'SDK download'}; time-skipping server: ${testServer.path ?? 'SDK download'}; ` +
      `nats-server: ${nats.path}; Temporal server: ${server.path}`,
  );
  process.env.CHROMIUM_PATH = chromium;

  const dir = await mkdtemp(join(tmpdir(), 'stellaops-test-pg-'));
  await chmod(dir, 0o755); // the postgres system user must reach the data directory
  const port = await freePort();
  const postgres = await startEmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    database: 'postgres',
    persistent: false,
  });
  process.env.STELLAOPS_TEST_PG_ADMIN_URL = embeddedDatabaseUrl(port, 'postgres');
  log(`embedded Postgres for tests on 127.0.0.1:${port}`);

  return async () => {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
