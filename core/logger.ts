/** Structured JSON logging (pino) shared by every process. */
import { pino, type DestinationStream, type Logger } from 'pino';
import { activeTraceFields, currentTracing } from './tracing.js';

export type { Logger } from 'pino';

/**
 * Creates the process logger; secrets in well-known fields are redacted, and with tracing on (started before the
 * logger) each line inside a span carries its `traceId` and `spanId`. `sync` writes each line to stdout before
 * the call returns, for process loggers whose lines must keep their order and survive `process.exit` (a shutdown's
 * last lines); the default destination writes asynchronously.
 */
export function createLogger(
  options: { level?: string; name?: string; destination?: DestinationStream; sync?: boolean } = {},
): Logger {
  const pinoOptions = {
    name: options.name ?? 'stellaops-workflows',
    level: options.level ?? 'info',
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.password', '*.token', '*.secret'],
      censor: '[redacted]',
    },
    // `traceId`/`spanId` of the active span, so a line joins its trace; a logger created while tracing is off
    // (`startTracing` not called, or no endpoint) has no mixin at all.
    ...(currentTracing() && { mixin: activeTraceFields }),
  };
  const destination = options.destination ?? (options.sync ? pino.destination({ dest: 1, sync: true }) : undefined);
  return destination ? pino(pinoOptions, destination) : pino(pinoOptions);
}
