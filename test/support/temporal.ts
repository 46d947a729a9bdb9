/**
 * Temporal test environments on real servers: the Java time-skipping test server and the CLI dev server,
 * both provisioned by the project and handed to `@temporalio/testing` as existing paths.
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment, type MockActivityEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import {
  BinaryUnavailableError,
  resolveTemporalCli,
  resolveTestServer,
  type ResolvedBinary,
} from '../../stack/binaries.js';
import { ensureSearchAttributes, FAIRNESS_ARGS, SINGLE_PARTITION_ARGS } from '../../stack/temporal.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/shared/search-attributes.js';
import { bundleWorkflows } from '../../workers/host.js';

const HOW_TO_PROVIDE =
  'Provide the binaries with TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH, or install Go (CLI) and Java 17 + Maven ' +
  '(test server) so the project can build them (`npm run provision`).';

async function withClearError<T>(binary: ResolvedBinary, what: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (binary.source === 'sdk-download') {
      throw new BinaryUnavailableError(
        `No local ${what} and the SDK could not download one (${(error as Error).message}). ${HOW_TO_PROVIDE}`,
      );
    }
    throw error;
  }
}

/** Starts the time-skipping test server with the product's search attributes registered. */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const binary = await resolveTestServer({ build: false });
  const env = await withClearError(binary, 'time-skipping test server', () =>
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable: binary.executable } }),
  );
  await ensureSearchAttributes(env.connection, env.namespace ?? 'default');
  return env;
}

/**
 * Starts a dev server (in-memory) with the product's search attributes and, as `npm start` runs it, one partition
 * per task queue and fair dispatch by fairness key (`fairness: false` leaves fairness off, for a control run).
 */
export async function createDevServerEnv(
  options: { port?: number; dbFilename?: string; fairness?: boolean } = {},
): Promise<TestWorkflowEnvironment> {
  const binary = await resolveTemporalCli({ build: false });
  return withClearError(binary, 'Temporal CLI', () =>
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: binary.executable,
        searchAttributes: [...SEARCH_ATTRIBUTE_KEYS],
        ...(options.port ? { port: options.port } : {}),
        ...(options.dbFilename ? { dbFilename: options.dbFilename } : {}),
        extraArgs: [...(options.fairness === false ? [] : FAIRNESS_ARGS), ...SINGLE_PARTITION_ARGS],
      },
    }),
  );
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The product's workflow bundle, built once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflows();
  return bundle;
}

/** A task queue (or prefix) no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Runs `activity` with `input` in `env` (a `MockActivityEnvironment`), typed by the activity's own signature: `run`
 * infers its types from the arguments, which widens literal inputs and loses the result type.
 */
export function runActivity<I, O>(
  env: MockActivityEnvironment,
  activity: (input: I) => Promise<O>,
  input: I,
): Promise<O> {
  return env.run(activity, input);
}
