/**
 * Server child processes (embedded Postgres, the Temporal dev server) in a session and process group of their own.
 *
 * Ctrl-C in a terminal signals the whole foreground process group. A server in that group would stop at once, before
 * the workers have drained and the API has closed; in its own group it sees nothing, and the process that started it
 * stops it explicitly, last ({@link ServerProcess.stop}).
 *
 * A server must not outlive its parent either. Each one gets a watchdog: a `sh` in a session of its own, blocked
 * reading a pipe whose other end only this process holds. Whenever this process ends without stopping the server —
 * `process.exit()`, an uncaught exception, SIGKILL, the OOM killer — the kernel closes the pipe, `read` returns, and
 * the watchdog sends the server its stop signal (SIGKILL if it is still running after the stop timeout). An orderly
 * stop disarms the watchdog first. Only a SIGKILL of the watchdog itself leaves a server running; Postgres then
 * refuses to start on the same data directory and names the process to stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** For logs and error messages (`postgres`, `temporal`). */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group (Postgres refuses to run as root). */
  uid?: number;
  gid?: number;
  /** The signal that asks the server for a prompt, clean stop. */
  stopSignal: NodeJS.Signals;
  /** Milliseconds between the stop signal and SIGKILL (default 15 s). */
  stopTimeoutMs?: number;
  /** Each line the server writes to stdout or stderr. */
  onLine?: (line: string) => void;
}

/** How a server process ended. */
export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: Error;
}

/** A running server process. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Settles (never rejects) when the process has ended. */
  readonly exited: Promise<ServerExit>;
  /** The last lines it wrote, for error messages. */
  recentOutput(): string;
  /**
   * Resolves when the server writes a line matching `pattern`.
   * @throws Error naming the server and quoting its last lines when it exits first or `timeoutMs` passes.
   */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<void>;
  running(): boolean;
  /** True once {@link ServerProcess.stop} has been called (by its owner or by {@link stopServerProcesses}). */
  readonly stopping: boolean;
  /**
   * Disarms the watchdog, sends the stop signal, waits for the exit (SIGKILL after the stop timeout). Idempotent.
   * @param gentle a signal to try first, waiting up to `waitMs` for the exit before the stop signal.
   */
  stop(gentle?: { signal: NodeJS.Signals; waitMs: number }): Promise<void>;
}

const WATCHDOG_SCRIPT = [
  'read _',
  'kill -s "$1" "$2" 2>/dev/null || exit 0',
  'i=0',
  'while [ "$i" -lt "$3" ] && kill -0 "$2" 2>/dev/null; do sleep 1; i=$((i + 1)); done',
  'kill -s KILL "$2" 2>/dev/null',
  'exit 0',
].join('\n');

interface Tracked {
  child: ChildProcess;
  stopSignal: NodeJS.Signals;
  stop: () => Promise<void>;
}
/** Servers started by this process and not stopped yet. */
const running = new Set<Tracked>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Exit paths that skipped the orderly stop: ask the servers to stop now (the armed watchdogs escalate if needed).
  process.on('exit', () => {
    for (const { child, stopSignal } of running) {
      if (child.exitCode === null && child.signalCode === null) child.kill(stopSignal);
    }
  });
}

function startWatchdog(pid: number, stopSignal: NodeJS.Signals, stopTimeoutMs: number): ChildProcess | undefined {
  const watchdog = spawn(
    '/bin/sh',
    [
      '-c',
      WATCHDOG_SCRIPT,
      'stellaops-watchdog',
      stopSignal.slice(3),
      String(pid),
      String(Math.ceil(stopTimeoutMs / 1000)),
    ],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.on('error', () => undefined);
  watchdog.stdin?.on('error', () => undefined);
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return watchdog;
}

/**
 * Starts `command` detached (new session, new process group) with its output piped to `onLine`, and arms its
 * watchdog. The caller waits for readiness its own way, racing {@link ServerProcess.exited}.
 */
export function startServerProcess(options: ServerProcessOptions): ServerProcess {
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  const child = spawn(options.command, options.args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  const recent: string[] = [];
  const lineListeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      options.onLine?.(line);
      for (const listener of lineListeners) listener(line);
    });
  }
  const tracked: Tracked = { child, stopSignal: options.stopSignal, stop: () => handle.stop() };
  const exited = new Promise<ServerExit>((resolve) => {
    child.once('error', (error) => {
      running.delete(tracked);
      resolve({ code: null, signal: null, error });
    });
    child.once('exit', (code, signal) => {
      running.delete(tracked);
      resolve({ code, signal });
    });
  });
  let watchdog: ChildProcess | undefined;
  if (child.pid !== undefined) {
    running.add(tracked);
    installExitHook();
    watchdog = startWatchdog(child.pid, options.stopSignal, stopTimeoutMs);
  }
  const disarm = () => {
    if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
    watchdog = undefined;
  };
  void exited.then(disarm);
  const isRunning = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;

  let stopping: Promise<void> | undefined;
  const handle: ServerProcess = {
    name: options.name,
    pid: child.pid,
    exited,
    recentOutput: () => recent.join('\n'),
    waitForLine(pattern, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const done = (error?: Error) => {
          lineListeners.delete(listener);
          clearTimeout(timer);
          if (error) reject(error);
          else resolve();
        };
        const listener = (line: string) => pattern.test(line) && done();
        const timer = setTimeout(
          () => done(new Error(`${options.name} not ready after ${timeoutMs} ms:\n${recent.join('\n')}`)),
          timeoutMs,
        );
        lineListeners.add(listener);
        void exited.then((exit) => done(new Error(`${options.name} ${describeExit(exit)}:\n${recent.join('\n')}`)));
      });
    },
    running: isRunning,
    get stopping() {
      return stopping !== undefined;
    },
    stop(gentle) {
      stopping ??= (async () => {
        disarm();
        if (!isRunning()) return;
        if (gentle) {
          child.kill(gentle.signal);
          let timer: NodeJS.Timeout | undefined;
          const waited = new Promise((resolve) => (timer = setTimeout(resolve, gentle.waitMs)));
          await Promise.race([exited, waited]);
          clearTimeout(timer);
          if (!isRunning()) return;
        }
        child.kill(options.stopSignal);
        const kill = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
        await exited;
        clearTimeout(kill);
      })();
      return stopping;
    },
  };
  return handle;
}

/**
 * Stops every server this process started and has not stopped yet, together — also those whose start is still
 * under way (a shutdown that begins during start-up).
 */
export async function stopServerProcesses(): Promise<void> {
  await Promise.all([...running].map((tracked) => tracked.stop()));
}

/** Describes an exit for error messages: `exited with code 1`, `was killed by SIGKILL`, `could not start: …`. */
export function describeExit(exit: ServerExit): string {
  if (exit.error) return `could not start: ${exit.error.message}`;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}
