/** Heartbeats for activities that wait on something slow, so a dead worker is noticed within the heartbeat timeout. */
import { Context } from '@temporalio/activity';

/** Interval of the heartbeats; well inside the workflows' heartbeat timeout (workflows/shared/activity-options.ts). */
export const HEARTBEAT_INTERVAL_MS = 2_000;

/** Runs `fn`, heartbeating `details` every {@link HEARTBEAT_INTERVAL_MS} until it settles. */
export async function whileHeartbeating<T>(fn: () => Promise<T>, details?: unknown): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details), HEARTBEAT_INTERVAL_MS);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
