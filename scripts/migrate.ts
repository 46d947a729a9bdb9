/**
 * `npm run db:migrate`: applies pending migrations as the owner role (DATABASE_MIGRATION_URL, else DATABASE_URL) and
 * grants the application role (the user of DATABASE_URL); or does both on the embedded Postgres (started and stopped).
 */
import { join } from 'node:path';
import { applicationRoleOf, loadConfig, migrationDatabaseUrlOf } from '../core/config.js';
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
  connectionString: migrationDatabaseUrlOf(config),
  applicationName: 'stellaops-migrate',
  max: 1,
  logger,
});
try {
  const result = await migrate(pool, { logger, applicationRole: applicationRoleOf(config) });
  logger.info(result, result.applied.length ? 'migrations applied' : 'database is up to date');
} finally {
  await pool.end();
  await embedded?.stop();
}
