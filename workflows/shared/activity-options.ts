/**
 * Activity option presets. After a worker dies, Temporal retries its in-flight activities only once their
 * start-to-close or heartbeat timeout expires: these presets bound that wait to seconds, so work resumes on another
 * worker within 30 s (measured by test/integration/worker-crash.test.ts).
 */
import type { ActivityOptions } from '@temporalio/workflow';

/** How long a silent activity counts as alive; activities that can take longer heartbeat every 2 s. */
export const HEARTBEAT_TIMEOUT = '10 seconds';

/** A Postgres write of a few rows: seconds at most, retried until the database is back. */
export const databaseWrite = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
} as const satisfies ActivityOptions;

/**
 * One outbound HTTP call that heartbeats while it waits: the start-to-close bound only needs to exceed the call's own
 * timeout (at most 5 minutes, the longest configurable webhook timeout); a crash is noticed by the heartbeat.
 */
export const outboundCall = {
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
} as const satisfies ActivityOptions;
