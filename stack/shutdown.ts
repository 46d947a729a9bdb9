/**
 * One orderly shutdown per process, however many signals arrive.
 *
 * A terminal's Ctrl-C reaches every process of the foreground group, and the `tsx` launcher (`npm start`,
 * `npm run worker`) forwards the signal to its child again when the child has not acknowledged it within 30 ms —
 * so one Ctrl-C often arrives twice. `close-with-grace` treats a second signal as "exit now" (code 1, nothing
 * drained). Here the first SIGINT, SIGTERM or SIGHUP starts the shutdown and later ones are logged and ignored; an
 * overall deadline bounds it instead (exit code 1, naming the step that did not finish). Ctrl-\ (SIGQUIT) is left
 * alone and still ends the process at once; the servers' watchdogs then stop them.
 *
 * Each step logs a stable message when it is done (`workers drained`, `API closed`, `servers stopped`, then
 * `stopped`), so that operators and tests can read the order.
 */
import type { Logger } from '../core/logger.js';

/** One step of a shutdown, run after the previous one has finished (or failed). */
export interface ShutdownStep {
  /** What is being stopped, for the deadline message (`workers`, `API`, `servers`). */
  name: string;
  /** Logged (info) when the step has succeeded. */
  done: string;
  run: () => Promise<void> | void;
}

/** Options of {@link installShutdown}. */
export interface ShutdownOptions {
  logger: Logger;
  /** Run in order; a failing step is logged and the next one still runs. */
  steps: readonly ShutdownStep[];
  /** Milliseconds after the shutdown started when the process exits with code 1 anyway. */
  deadlineMs: number;
}

/** Why a shutdown starts. */
export type ShutdownCause = { signal: NodeJS.Signals } | { err: unknown };

/** The installed handler. */
export interface Shutdown {
  /** True once a shutdown has started. */
  readonly started: boolean;
  /**
   * Starts the shutdown (or joins the one under way) and exits the process when it is over: code 0 after a signal
   * when every step succeeded, 1 after an error, a failed step or the deadline.
   */
  begin(cause: ShutdownCause): Promise<never>;
}

/** Signals that start an orderly shutdown. */
export const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const satisfies readonly NodeJS.Signals[];

/**
 * Installs the process's signal and fatal-error handlers. Install it once, before starting anything; the steps
 * must cope with what has not been started yet.
 */
export function installShutdown(options: ShutdownOptions): Shutdown {
  const { logger } = options;
  let running: Promise<never> | undefined;
  let current = 'nothing';

  const begin = (cause: ShutdownCause): Promise<never> => {
    if (running) {
      if ('signal' in cause) logger.info({ signal: cause.signal, step: current }, 'already stopping, signal ignored');
      else logger.error({ err: cause.err, step: current }, 'error while stopping');
      return running;
    }
    running = run(cause);
    return running;
  };

  const run = async (cause: ShutdownCause): Promise<never> => {
    const startedAt = Date.now();
    if ('signal' in cause) {
      logger.info(
        { signal: cause.signal, deadlineMs: options.deadlineMs },
        'stopping (repeated signals are ignored; Ctrl-\\ forces an exit)',
      );
    } else {
      logger.error({ err: cause.err }, 'stopping after an error');
    }
    // Deliberately not unref'd: a step that hangs without holding the event loop must still end in this exit.
    setTimeout(() => {
      logger.error(
        { step: current, deadlineMs: options.deadlineMs },
        `shutdown did not finish within ${options.deadlineMs} ms (still stopping the ${current}), exiting`,
      );
      process.exit(1);
    }, options.deadlineMs);
    let failed = 'err' in cause;
    for (const step of options.steps) {
      current = step.name;
      const stepStartedAt = Date.now();
      try {
        await step.run();
        logger.info({ step: step.name, durationMs: Date.now() - stepStartedAt }, step.done);
      } catch (err) {
        failed = true;
        logger.error({ err, step: step.name }, `stopping the ${step.name} failed`);
      }
    }
    current = 'nothing';
    logger.info({ durationMs: Date.now() - startedAt }, 'stopped');
    // Flushes a buffering destination; with pino's default (asynchronous, unbuffered) one, a line still being written
    // can be dropped or overtaken by the exit: give the logger a synchronous destination where the last lines matter.
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.exit(failed ? 1 : 0);
  };

  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, () => void begin({ signal }));
  process.on('uncaughtException', (err) => void begin({ err }));
  process.on('unhandledRejection', (err) => void begin({ err }));

  return {
    get started() {
      return running !== undefined;
    },
    begin,
  };
}
