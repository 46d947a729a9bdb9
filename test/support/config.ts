/** Configuration helpers: the refusals of core/config.ts, and the environment of in-process product entry points. */
import { expect } from 'vitest';
import { ConfigError, loadConfig, type ReadTextFile } from '../../core/config.js';

/**
 * The problems a `ConfigError` thrown by `load` reports: fails the test when `load` throws anything else or returns,
 * naming `what` was expected to be refused.
 */
export function refusedConfigProblems(load: () => unknown, what: string): string[] {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${what} to be refused`);
}

/** The problems `loadConfig(env, readFile)` reports for a configuration it must refuse. */
export function configProblems(env: NodeJS.ProcessEnv, readFile?: ReadTextFile): string[] {
  return refusedConfigProblems(() => loadConfig(env, readFile), JSON.stringify(env));
}

/**
 * The environment of the product's own entry points (`startApiServer`, `startWorkers`) run in a test's process on
 * `dataDir`, against the test's dev server and database: no NATS (bridge and egress off), free ports, no keys
 * configured (the local ones are generated under `dataDir`, as `npm start` does). `extra` adds or overrides.
 */
export function inProcessProductEnv(
  options: { dataDir: string; temporalAddress: string; namespace?: string | undefined; databaseUrl: string },
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    DATA_DIR: options.dataDir,
    TEMPORAL_ADDRESS: options.temporalAddress,
    TEMPORAL_NAMESPACE: options.namespace ?? 'default',
    DATABASE_URL: options.databaseUrl,
    WORKER_OPS_PORT: '0',
    NATS_BRIDGE: 'false',
    NATS_EGRESS: 'false',
    API_PORT: '0',
    ...extra,
  };
}
