/** The embedded Temporal dev server (CLI `server start-dev`, SQLite file, Web UI) and search attribute setup. */
import { type Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import proto from '@temporalio/proto';
import type { Logger } from '../core/logger.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../workflows/shared/search-attributes.js';
import { resolveTemporalCli } from './binaries.js';

/** A running dev server. */
export interface DevServerHandle {
  address: string;
  uiUrl: string | undefined;
  stop(): Promise<void>;
}

/**
 * Starts the Temporal dev server with the product's search attributes registered.
 * @param dbFilename SQLite file; the server keeps its data across restarts when set.
 */
export async function startDevServer(options: {
  ip: string;
  port: number;
  uiPort?: number;
  namespace: string;
  dbFilename?: string;
  logger?: Logger;
}): Promise<DevServerHandle> {
  const cli = await resolveTemporalCli({ log: (message) => options.logger?.info(message) });
  options.logger?.info({ source: cli.source, path: cli.path }, 'starting Temporal dev server');
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
    },
  });
  let stopped = false;
  return {
    address: env.address,
    uiUrl: options.uiPort
      ? `http://${options.ip === '0.0.0.0' ? '127.0.0.1' : options.ip}:${options.uiPort}`
      : undefined,
    async stop() {
      if (stopped) return;
      stopped = true;
      await env.teardown();
    },
  };
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
