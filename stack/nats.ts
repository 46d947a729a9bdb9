/**
 * The embedded nats-server of `npm start`: JetStream on, loopback only, its store under `DATA_DIR/nats`, in a
 * process group of its own with a watchdog (see `server-process.ts`), so that a terminal's Ctrl-C reaches it only
 * through the orderly stop, after the workers have drained.
 */
import { mkdir } from 'node:fs/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Logger } from '../core/logger.js';
import { resolveNatsServer, type ResolveOptions } from './binaries.js';
import { describeExit, startServerProcess } from './server-process.js';

/** Options of {@link startEmbeddedNats}. */
export interface EmbeddedNatsOptions {
  /** The JetStream store; kept across restarts (`DATA_DIR/nats` for `npm start`). */
  storeDir: string;
  /** Client port on 127.0.0.1. */
  port: number;
  logger?: Logger;
  /** Milliseconds to wait for the server to accept connections (default 30 s). */
  readyTimeoutMs?: number;
  /** Where to look for the binary (tests point it at a sandbox); the process environment by default. */
  env?: ResolveOptions['env'];
}

/** A running embedded nats-server. */
export interface EmbeddedNatsHandle {
  /** `nats://127.0.0.1:{port}`. */
  url: string;
  port: number;
  storeDir: string;
  /** The server's process id, for operators and tests. */
  pid: number | undefined;
  /** Stops it (JetStream flushes its store first); idempotent. */
  stop(): Promise<void>;
}

/** Loopback only: the embedded server has no authentication. */
const HOST = '127.0.0.1';

/**
 * Starts nats-server with JetStream and waits until it accepts connections and answers JetStream requests.
 * @throws Error quoting the server's last lines when it exits first (a busy port, an unusable store) or does not
 *   become ready in time; BinaryUnavailableError when no nats-server can be provisioned.
 */
export async function startEmbeddedNats(options: EmbeddedNatsOptions): Promise<EmbeddedNatsHandle> {
  const binary = await resolveNatsServer({
    ...(options.env && { env: options.env }),
    log: (message) => options.logger?.info(message),
  });
  await mkdir(options.storeDir, { recursive: true });
  options.logger?.info({ source: binary.source, path: binary.path }, 'starting nats-server');
  const server = startServerProcess({
    name: 'nats-server',
    command: binary.path,
    args: [
      ...['--addr', HOST, '--port', String(options.port)],
      ...['--jetstream', '--store_dir', options.storeDir],
      ...['--server_name', 'stellaops-embedded'],
      // No HTTP monitoring port: nothing here reads it, and it would be one more port to keep free.
    ],
    // nats-server shuts down in order on SIGTERM as on SIGINT: JetStream syncs its store, then it exits.
    stopSignal: 'SIGTERM',
    onLine: (line) => logServerLine(options.logger, line, server.stopping),
  });
  const url = `nats://${HOST}:${options.port}`;
  try {
    // Its own "ready" line first: another server on the same port would otherwise answer the probe below.
    await server.waitForLine(/\[INF\] Server is ready/, options.readyTimeoutMs ?? 30_000);
    await probe(url);
  } catch (error) {
    const exit = server.running() ? undefined : await server.exited;
    await server.stop();
    throw new Error(
      exit
        ? `nats-server ${describeExit(exit)} (is port ${options.port} free? Set NATS_EMBEDDED_PORT):\n${server.recentOutput()}`
        : `nats-server did not become ready on ${url}: ${(error as Error).message}`,
    );
  }
  return { url, port: options.port, storeDir: options.storeDir, pid: server.pid, stop: () => server.stop() };
}

/** One connection and a JetStream account request: the server accepts clients and JetStream is on. */
async function probe(url: string): Promise<void> {
  const connection = await connect({ servers: url, timeout: 2_000, reconnect: false, name: 'stellaops-probe' });
  try {
    await jetstreamManager(connection, { timeout: 2_000 });
  } finally {
    await connection.close();
  }
}

/**
 * nats-server logs `[pid] date time [LVL] message`. Its start-up banner is information for debugging, not for the
 * product's log; warnings and errors are passed on. While it stops, everything is debug.
 */
function logServerLine(logger: Logger | undefined, line: string, stopping: boolean): void {
  if (!logger) return;
  const match = /^\[\d+\] \S+ \S+ \[([A-Z]{3})\] (.*)$/.exec(line);
  const level = match?.[1];
  const message = match?.[2] ?? line;
  if (message.trim() === '') return;
  const fields = { component: 'nats-server' };
  if (stopping) logger.debug(fields, message);
  else if (level === 'ERR' || level === 'FTL') logger.error(fields, message);
  else if (level === 'WRN') logger.warn(fields, message);
  else logger.debug(fields, message);
}
