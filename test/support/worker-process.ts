/**
 * The worker as a real process (`tsx workers/main.ts`), for crash drills: each one runs in its own process group, so
 * a SIGKILL takes the `tsx` launcher and the Node process under it at once, as a machine that dies would. Every
 * process started here is killed when the test file ends, and when the test process exits however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** A started worker process. */
export interface WorkerProcess {
  child: ChildProcess;
  /** When it was spawned and when it logged that its workers were created (epoch ms). */
  spawnedAt: number;
  readyAt: number;
  /** The last part of what it wrote to stdout and stderr, for the message of a failing test. */
  output(): string;
}

/** What a worker process keeps of its own output: enough to show why it failed, bounded under a busy run. */
const OUTPUT_TAIL_CHARS = 20_000;
/** The line `workers/host.ts` logs once every Worker of the process exists, just before they poll. */
const READY_LINE = '"msg":"workers created"';

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

// A test that times out or a vitest fork that is torn down must not leave workers polling the next test's server.
process.once('exit', () => {
  for (const child of running) killGroup(child);
});

/**
 * Spawns `tsx workers/main.ts` with `env` over this process' environment, in its own process group; resolves once it
 * logged that its workers were created (its `LOG_LEVEL` must be `info` or lower), rejects when it exits before.
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const spawnedAt = Date.now();
  const child = spawn(join('node_modules', '.bin', 'tsx'), ['workers/main.ts'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  // Both pipes are read for the whole life of the process: a full pipe would block the worker's logging.
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stderr.on('data', append);
  const readyAt = await new Promise<number>((resolve, reject) => {
    // The ready line may arrive split over two chunks: look at the end of what came so far.
    let recent = '';
    child.stdout.on('data', (chunk: Buffer) => {
      append(chunk);
      const text = recent + chunk.toString();
      if (text.includes(READY_LINE)) resolve(Date.now());
      recent = text.slice(-READY_LINE.length);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`worker exited (${signal ?? code}) before its workers were created:\n${output}`)),
    );
  });
  return { child, spawnedAt, readyAt, output: () => output };
}

/** SIGKILLs the worker's whole process group and resolves once it has exited (epoch ms of the kill). */
export async function killWorkerProcess(worker: WorkerProcess): Promise<number> {
  const { child } = worker;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const at = Date.now();
  killGroup(child);
  await exited;
  return at;
}

/** SIGKILLs every worker process still running (afterAll: also when the test failed half-way). */
export async function killAllWorkerProcesses(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          killGroup(child);
        }),
    ),
  );
}
