/**
 * Completion payload of policy simulations: the body of the completion webhook and of the SSE `completed` event.
 * Pure functions only (no Node builtins, no I/O, no clock): bundled into workflow code and used by the API.
 */
import { TERMINAL_STATUSES, type CompletionPayload, type PolicyRunStatus } from './definitions.js';
import { isTerminalStatus } from './state.js';

/** Decimal places kept in `latencySeconds`. */
const LATENCY_DECIMALS = 4;
const LATENCY_SCALE = 10 ** LATENCY_DECIMALS;

/**
 * Parses an ISO-8601 timestamp into whole milliseconds plus the sub-millisecond remainder (in seconds), so that
 * microsecond (Postgres) and 100 ns (.NET) precision survives: `Date.parse` truncates to milliseconds.
 * Returns undefined for a missing or unparseable timestamp.
 */
function parseInstant(value: string | null | undefined): { ms: number; subMsSeconds: number } | undefined {
  if (!value) return undefined;
  const match = /^(.*T\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(.*)$/.exec(value.trim());
  if (!match) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : { ms, subMsSeconds: 0 };
  }
  const [, head = '', fraction = '', zone = ''] = match;
  const ms = Date.parse(`${head}.${fraction.slice(0, 3).padEnd(3, '0')}${zone}`);
  if (Number.isNaN(ms)) return undefined;
  const rest = fraction.slice(3);
  return { ms, subMsSeconds: rest ? Number(`0.${rest}`) / 1000 : 0 };
}

/** Seconds from `from` to `to`, or undefined when either is missing or unparseable. */
function secondsBetween(from: string | null | undefined, to: string | null | undefined): number | undefined {
  const start = parseInstant(from);
  const end = parseInstant(to);
  if (!start || !end) return undefined;
  return (end.ms - start.ms) / 1000 + (end.subMsSeconds - start.subMsSeconds);
}

/** Rounds to at most 4 decimal places; negative values (clock skew) become 0. */
function roundLatency(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0) return 0;
  return Math.round(seconds * LATENCY_SCALE) / LATENCY_SCALE;
}

/**
 * Latency of a run in seconds, rounded to at most 4 decimal places: `finishedAt − queuedAt` when both exist,
 * otherwise `observedAt − queuedAt`; 0 when `queuedAt` is missing (or nothing parses). Never negative.
 */
export function latencySeconds(
  sim: { queuedAt?: string | null; finishedAt?: string | null },
  observedAt: string,
): number {
  if (!sim.queuedAt) return 0;
  const seconds = secondsBetween(sim.queuedAt, sim.finishedAt) ?? secondsBetween(sim.queuedAt, observedAt);
  return seconds === undefined ? 0 : roundLatency(seconds);
}

/** The `reason` of a terminal run: the error of a failure, the cancellation reason of a cancellation. */
function reasonOf(sim: PolicyRunStatus): string | undefined {
  switch (sim.status) {
    case 'failed':
      return sim.error ?? undefined;
    case 'cancelled':
      return sim.cancellationReason ?? undefined;
    default:
      return undefined;
  }
}

/**
 * Builds the completion payload of a terminal run: `result` is its outcome (`succeeded`, `failed` or `cancelled`),
 * `observedAt` its `finishedAt`, so the webhook and the SSE `completed` event of a run carry the same document
 * whenever they are built. `reason` is present for failures (the error) and cancellations (the cancellation reason)
 * when known, and absent otherwise (the key is omitted, not undefined).
 * @param sim the terminal status document.
 * @param now the observation instant used only when the document has no `finishedAt`.
 * @throws Error when the run is not terminal (queued or running).
 */
export function buildCompletionPayload(sim: PolicyRunStatus, now: string): CompletionPayload {
  if (!isTerminalStatus(sim.status)) {
    throw new Error(
      `Policy run ${sim.runId} is ${sim.status}: completion payloads exist for terminal runs only (${TERMINAL_STATUSES.join(', ')})`,
    );
  }
  const observedAt = sim.finishedAt ?? now;
  const payload: CompletionPayload = {
    tenantId: sim.tenantId,
    simulation: sim,
    result: sim.status,
    observedAt,
    latencySeconds: latencySeconds(sim, observedAt),
  };
  const reason = reasonOf(sim);
  if (reason !== undefined) payload.reason = reason;
  return payload;
}
