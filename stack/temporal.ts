/** The embedded Temporal dev server (CLI `server start-dev`, SQLite file, Web UI) and search attribute setup. */
import { Connection } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import proto from '@temporalio/proto';
import type { Logger } from '../core/logger.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/shared/search-attributes.js';
import { resolveTemporalCli } from './binaries.js';
import { describeExit, startServerProcess, type ServerProcess } from './server-process.js';

/** A running dev server. */
export interface DevServerHandle {
  address: string;
  uiUrl: string | undefined;
  stop(): Promise<void>;
}

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  ip: string;
  port: number;
  uiPort?: number;
  /**
   * The codec endpoint the Web UI decodes payloads with (`--ui-codec-endpoint`, the URL the browser calls, without
   * `/decode`); only with `uiPort`.
   */
  uiCodecEndpoint?: string;
  namespace: string;
  /** SQLite file; the server keeps its data across restarts when set. */
  dbFilename?: string;
  logger?: Logger;
}

/**
 * Starts the Temporal dev server with the product's search attributes registered, in a process group of its own
 * (see `server-process.ts`) when the CLI is a local binary; when only the SDK's download is available, the SDK runs
 * it as a plain child process, which a terminal's Ctrl-C reaches directly.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServerHandle> {
  const cli = await resolveTemporalCli({ log: (message) => options.logger?.info(message) });
  options.logger?.info({ source: cli.source, path: cli.path }, 'starting Temporal dev server');
  const uiUrl = options.uiPort ? `http://${loopbackOf(options.ip)}:${options.uiPort}` : undefined;
  if (cli.path) {
    const server: ServerProcess = startServerProcess({
      name: 'temporal',
      command: cli.path,
      args: devServerArgs(options),
      // The CLI stops its services in order on SIGTERM, as on SIGINT (the SDK would SIGKILL it).
      stopSignal: 'SIGTERM',
      onLine: (line) => logServerLine(options.logger, line, server.stopping),
    });
    const address = `${loopbackOf(options.ip)}:${options.port}`;
    try {
      await waitForFrontend(server, address, options.namespace, 60_000);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return { address, uiUrl, stop: () => server.stop() };
  }
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: cli.executable,
      ip: options.ip,
      port: options.port,
      namespace: options.namespace,
      ...(options.uiPort ? { ui: true, uiPort: options.uiPort } : { ui: false }),
      ...(options.dbFilename ? { dbFilename: options.dbFilename } : {}),
      searchAttributes: [...SEARCH_ATTRIBUTE_KEYS],
      log: { format: 'json', level: 'warn' },
      extraArgs: [...FAIRNESS_ARGS, ...SINGLE_PARTITION_ARGS, ...uiCodecArgs(options)],
    },
  });
  let stopped = false;
  return {
    address: env.address,
    uiUrl,
    async stop() {
      if (stopped) return;
      stopped = true;
      await env.teardown();
    },
  };
}

const loopbackOf = (ip: string) => (ip === '0.0.0.0' ? '127.0.0.1' : ip);

/**
 * One partition per task queue. Matching orders tasks (by priority and fairness) within a partition, and pollers
 * pick partitions at random: on a single-node dev server more partitions buy no throughput and only blur that order.
 */
export const SINGLE_PARTITION_ARGS = [
  ...['--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1'],
  ...['--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1'],
] as const;

/**
 * Fair dispatch by fairness key (server 1.29's `matching.enableFairness`, off by default; it also turns on the
 * priority-aware matcher): the effect activities of sagas carry their tenant as fairness key, so one tenant's burst on
 * the `effects` queue does not starve the others (test/workflows/effects-fairness.dev-server.test.ts).
 */
export const FAIRNESS_ARGS = ['--dynamic-config-value', 'matching.enableFairness=true'] as const;

/** The Web UI's codec endpoint flag, when the UI is on and an endpoint is given. */
function uiCodecArgs(options: DevServerOptions): string[] {
  return options.uiPort && options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : [];
}

/**
 * The arguments of `temporal` for the dev server of `options`: the command line the SDK would use for the same
 * options, with the product's dynamic configuration, search attributes and, with the Web UI on, its codec endpoint.
 */
export function devServerArgs(options: DevServerOptions): string[] {
  return [
    ...['server', 'start-dev', '--ip', options.ip, '--port', String(options.port)],
    ...['--namespace', options.namespace, '--log-format', 'json', '--log-level', 'warn'],
    ...['--dynamic-config-value', 'frontend.enableServerVersionCheck=false'],
    ...['--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true'],
    ...['--dynamic-config-value', 'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true'],
    ...FAIRNESS_ARGS,
    ...SINGLE_PARTITION_ARGS,
    ...(options.dbFilename ? ['--db-filename', options.dbFilename] : []),
    ...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']),
    ...uiCodecArgs(options),
    ...SEARCH_ATTRIBUTE_KEYS.flatMap((key) => [
      '--search-attribute',
      `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`,
    ]),
  ];
}

/**
 * The CLI and the Temporal server log JSON lines (`{"level":"WARN","msg":…}`); anything else is passed on as it is.
 * While it stops, its internal workers log dial and poll errors against the frontend it has already closed: debug,
 * not warnings.
 */
export function logServerLine(logger: Logger | undefined, line: string, stopping: boolean): void {
  if (!logger || line.trim() === '') return;
  let entry: { level?: unknown; msg?: unknown } | undefined;
  try {
    entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
  } catch {
    entry = undefined;
  }
  const level = typeof entry?.level === 'string' ? entry.level.toLowerCase() : 'info';
  const fields = { component: 'temporal-server', ...(entry ? { server: entry } : {}) };
  const message = typeof entry?.msg === 'string' ? entry.msg : line;
  if (stopping) logger.debug(fields, message);
  else if (level === 'error' || level === 'fatal' || level === 'panic' || level === 'dpanic')
    logger.error(fields, message);
  else if (level === 'warn') logger.warn(fields, message);
  else logger.info(fields, message);
}

/** Waits until the frontend answers for `namespace` (the dev server creates it before serving). */
async function waitForFrontend(server: ServerProcess, address: string, namespace: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!server.running()) {
      const exit = await server.exited;
      throw new Error(
        `The Temporal dev server ${describeExit(exit)} (is port ${address} free? Set TEMPORAL_DEV_PORT):\n${server.recentOutput()}`,
      );
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`The Temporal dev server did not answer on ${address} within ${timeoutMs} ms: ${String(lastError)}`);
}

const { IndexedValueType } = proto.temporal.api.enums.v1;
const INDEXED_TYPE: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/**
 * Registers the product's custom search attributes in `namespace` if missing (idempotent; for external servers
 * where nothing registered them).
 * @returns the names that were added.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  let existing;
  try {
    existing = await connection.operatorService.listSearchAttributes({ namespace });
  } catch (error) {
    // The time-skipping test server implements adding but not listing: add everything, tolerating duplicates.
    if ((error as { code?: unknown }).code !== 12) throw error;
    existing = { customAttributes: {}, systemAttributes: {} };
  }
  const known = new Set([
    ...Object.keys(existing.customAttributes ?? {}),
    ...Object.keys(existing.systemAttributes ?? {}),
  ]);
  const missing = SEARCH_ATTRIBUTE_KEYS.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED_TYPE[key.type]!])),
    });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 6) throw error; // ALREADY_EXISTS: registered concurrently
    return [];
  }
  return missing.map((key) => key.name);
}
