/**
 * Test processes that each run in a process group of their own (spawned `detached`): a SIGKILL of the group takes the
 * process and whatever it started at once, as a machine that dies would. Every group still running is killed when
 * the test process exits, however it exits.
 */
import type { ChildProcess } from 'node:child_process';

/** SIGKILLs the process group led by `child` (or by the process `pid`); nothing when it is gone. */
export function killProcessGroup(child: ChildProcess | number): void {
  try {
    process.kill(-(typeof child === 'number' ? child : child.pid!), 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The process groups one kind of test process started and that still run. */
export interface ProcessGroups {
  /** Tracks `child`, spawned `detached`, until it exits. */
  add(child: ChildProcess): void;
  /** SIGKILLs every group still running and resolves once each has exited (afterAll: also after a failure). */
  killAll(): Promise<void>;
}

/** A set of process groups, killed at the latest when this process exits. */
export function createProcessGroups(): ProcessGroups {
  const running = new Set<ChildProcess>();
  // A test that times out or a vitest fork that is torn down must not leave processes on the next test's servers.
  process.once('exit', () => {
    for (const child of running) killProcessGroup(child);
  });
  return {
    add(child) {
      running.add(child);
      child.once('exit', () => running.delete(child));
    },
    async killAll() {
      await Promise.all(
        [...running].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              killProcessGroup(child);
            }),
        ),
      );
    },
  };
}
