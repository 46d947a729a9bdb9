/**
 * `node --import tsx scripts/saga-streams.ts`: makes sure the JetStream streams of sagas exist and capture the
 * configured subjects (`workers/saga-streams.ts`), creating a missing one when `NATS_CREATE_STREAMS` is on, then
 * exits: the one-shot that provisions them before the workers and the API start with `NATS_CREATE_STREAMS` off
 * (docker-compose.yml's `nats-streams`). Exits 1 naming each stream that is missing or captures too little.
 */
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { prepareSagaStreams } from '../workers/saga-streams.js';

const config = loadConfig();
const logger = createLogger({ level: config.logLevel, name: 'stellaops-saga-streams', sync: true });
try {
  // Each stream it creates is logged as it is created; this line says the job is done.
  const streams = await prepareSagaStreams(config, logger);
  logger.info(
    { streams: streams.map(({ name, subjects, created }) => ({ name, subjects, created })) },
    'streams ready',
  );
} catch (err) {
  logger.error({ err }, 'the JetStream streams of sagas are not usable');
  process.exitCode = 1;
}
