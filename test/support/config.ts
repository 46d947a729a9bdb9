/** Configuration helpers shared by the tests of core/config.ts. */
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
