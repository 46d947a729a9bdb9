/** `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded Postgres (started and stopped). */
import { join } from 'node:path';
import { databaseUrlOf, loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { startEmbeddedPostgres } from '../stack/postgres.js';

const config = loadConfig();
const logger = createLogger({ level: config.logLevel, name: 'stellaops-migrate' });
const embedded = config.database.url
  ? undefined
  : await startEmbeddedPostgres({
      databaseDir: join(config.dataDir, 'postgres'),
      port: config.database.embeddedPort,
      logger,
    });
const pool = createPool({
  connectionString: databaseUrlOf(config),
  applicationName: 'stellaops-migrate',
  max: 1,
  logger,
});
try {
  const result = await migrate(pool, { logger });
  logger.info(result, result.applied.length ? 'migrations applied' : 'database is up to date');
} finally {
  await pool.end();
  await embedded?.stop();
}
