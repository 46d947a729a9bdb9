/**
 * `npm run db:migrate`: applies pending migrations as the owner role (DATABASE_MIGRATION_URL, else DATABASE_URL) and
 * grants the application role (the user of DATABASE_URL); or does both on the embedded Postgres (started and stopped).
 */
import { join } from 'node:path';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { migrateConfigured } from '../db/migrate.js';
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
try {
  const result = await migrateConfigured(config, logger);
  logger.info(result, result.applied.length ? 'migrations applied' : 'database is up to date');
} finally {
  await embedded?.stop();
}
