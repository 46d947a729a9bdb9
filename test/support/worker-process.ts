/**
 * The worker as a real process (`node --import tsx workers/main.ts`), for crash drills and the operations port's
 * tests: each one runs in its own process group, so a SIGKILL takes the worker and whatever it started at once, as a
 * machine that dies would. Each gets a free operations port, and neither the JetStream bridge nor the egress unless
 * its environment asks for them (then it needs `NATS_URL`). Every process started here is killed when the test file
 * ends, and when the test process exits however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { DataConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../core/config.js';
import { dataConverterOf } from '../../core/payload-codec.js';
import type { TestDatabase } from './postgres.js';
import { createProcessGroups, killProcessGroup } from './process-groups.js';

/** A started worker process. */
export interface WorkerProcess {
  child: ChildProcess;
  /** When it was spawned and when it logged that its workers were created and its operations port listens (epoch ms). */
  spawnedAt: number;
  readyAt: number;
  /** Its operations port, `http://127.0.0.1:{port}`. */
  opsUrl: string;
  /** The last part of what it wrote to stdout and stderr, for the message of a failing test. */
  output(): string;
}

/** What a worker process keeps of its own output: enough to show why it failed, bounded under a busy run. */
const OUTPUT_TAIL_CHARS = 20_000;
/** The line `workers/main.ts` logs once its Workers run and its operations port listens. */
const READY_LINE = '"msg":"operations port listening"';
/** What a worker process runs unless the test's environment says otherwise. */
const DEFAULT_ENV = { WORKER_OPS_PORT: '0', NATS_BRIDGE: 'false', NATS_EGRESS: 'false' };

const groups = createProcessGroups();

/**
 * What every worker process of a test needs: the test's Temporal server and database, a data folder, and logging at
 * `info` (the ready line is logged at `info`).
 */
export function workerProcessEnv(servers: {
  dataDir: string;
  env: TestWorkflowEnvironment;
  db: TestDatabase;
}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATA_DIR: servers.dataDir,
    TEMPORAL_ADDRESS: servers.env.address,
    TEMPORAL_NAMESPACE: servers.env.namespace ?? 'default',
    DATABASE_URL: servers.db.url,
  };
}

/**
 * The data converter of the worker processes on `dataDir`: the payload codec of the key they generate there, so a
 * test's client reads what they encrypt (results, queries, failures), as the API of the same data directory does.
 */
export function workerProcessDataConverter(dataDir: string): Promise<DataConverter> {
  return dataConverterOf(loadConfig({ DATA_DIR: dataDir }));
}

/**
 * Spawns `node --import tsx workers/main.ts` with `env` over this process' environment, in its own process group; resolves once it
 * logged that its workers were created (its `LOG_LEVEL` must be `info` or lower), rejects when it exits before.
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const spawnedAt = Date.now();
  // One process, as the image runs it: a launcher in between would relay signals and may kill a worker that answers
  // them late, where a drill needs the worker's own orderly shutdown.
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...DEFAULT_ENV, ...env },
  });
  groups.add(child);
  let output = '';
  // Both pipes are read for the whole life of the process: a full pipe would block the worker's logging.
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stderr.on('data', append);
  const { readyAt, opsUrl } = await new Promise<{ readyAt: number; opsUrl: string }>((resolve, reject) => {
    // The ready line may arrive split over chunks: look at the lines completed so far.
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      append(chunk);
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.includes(READY_LINE))
          resolve({ readyAt: Date.now(), opsUrl: (JSON.parse(line) as { url: string }).url });
      }
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`worker exited (${signal ?? code}) before its workers were created:\n${output}`)),
    );
  });
  return { child, spawnedAt, readyAt, opsUrl, output: () => output };
}

/** Sends `signal` (SIGTERM by default) to the worker's process group and resolves with its exit code. */
export async function signalWorkerProcess(
  worker: WorkerProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.kill(-child.pid!, signal);
  return exited;
}

/** SIGKILLs the worker's whole process group and resolves once it has exited (epoch ms of the kill). */
export async function killWorkerProcess(worker: WorkerProcess): Promise<number> {
  const { child } = worker;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const at = Date.now();
  killProcessGroup(child);
  await exited;
  return at;
}

/** SIGKILLs every worker process still running (afterAll: also when the test failed half-way). */
export function killAllWorkerProcesses(): Promise<void> {
  return groups.killAll();
}
