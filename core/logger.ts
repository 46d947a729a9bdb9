/** Structured JSON logging (pino) shared by every process. */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the process logger; secrets in well-known fields are redacted. */
export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const pinoOptions = {
    name: options.name ?? 'stellaops-workflows',
    level: options.level ?? 'info',
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', '*.password', '*.token', '*.secret'],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}
