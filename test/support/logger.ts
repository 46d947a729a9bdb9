/** The product's logger writing to memory, so tests can read what a component logged (and what it did not). */
import { createLogger, type Logger } from '../../core/logger.js';

/** A logger at `debug` and everything it wrote so far. */
export interface MemoryLogger {
  logger: Logger;
  /** Each log line as written (JSON text), for "never logs the secret" checks over the raw output. */
  lines: string[];
  /** The same lines parsed, for assertions on level, message and fields. */
  records: Record<string, unknown>[];
}

/** A `createLogger` logger (redaction included, as in production) at `debug` level that keeps its output. */
export function memoryLogger(): MemoryLogger {
  const lines: string[] = [];
  const records: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write(line: string) {
        lines.push(line);
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  return { logger, lines, records };
}
