/** Pure transitions of a simulation's status document (unit-tested; used by the workflow and its activities). */
import {
  TERMINAL_STATUSES,
  type PolicyRunStatus,
  type PolicyRunStatusValue,
  type PolicySimulationInput,
  type SimulationResultSummary,
  type SimulationStats,
} from './definitions.js';

/** Projection revisions: each state has its own so that late writes never overwrite newer ones. */
export const Revision = { queued: 1, running: 2, terminal: 3 } as const;

/** The statuses a run never leaves. */
export type TerminalStatusValue = Extract<PolicyRunStatusValue, 'succeeded' | 'failed' | 'cancelled'>;

/** Whether `status` is terminal (succeeded, failed or cancelled): the completion webhook is sent for these only. */
export function isTerminalStatus(status: string): status is TerminalStatusValue {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** The document of a run that was just accepted. */
export function queuedStatus(
  input: PolicySimulationInput,
  ids: { runId: string; workflowId: string },
  queuedAt: string,
): PolicyRunStatus {
  return {
    runId: ids.runId,
    tenantId: input.tenantId,
    policyId: input.policyId,
    policyVersion: input.policyVersion,
    mode: 'simulate',
    status: 'queued',
    priority: input.priority ?? 'normal',
    queuedAt,
    startedAt: null,
    finishedAt: null,
    attempts: 0,
    inputs: input.inputs,
    stats: null,
    result: null,
    error: null,
    cancellationRequested: false,
    cancellationReason: null,
    workflowId: ids.workflowId,
    metadata: input.metadata ?? {},
  };
}

/** The evaluation started (attempt `attempt`, 1-based). The first start time is kept across retries. */
export function runningStatus(doc: PolicyRunStatus, startedAt: string, attempt: number): PolicyRunStatus {
  if (isTerminalStatus(doc.status)) return doc;
  return {
    ...doc,
    status: 'running',
    startedAt: doc.startedAt ?? startedAt,
    attempts: Math.max(doc.attempts, attempt),
  };
}

/** The evaluation produced a result. */
export function succeededStatus(
  doc: PolicyRunStatus,
  outcome: { stats: SimulationStats; result: SimulationResultSummary; attempts: number },
  finishedAt: string,
): PolicyRunStatus {
  return {
    ...doc,
    attempts: Math.max(doc.attempts, outcome.attempts),
    status: 'succeeded',
    stats: outcome.stats,
    result: outcome.result,
    finishedAt,
  };
}

/** The evaluation failed for good (after `attempts` attempts, when known). */
export function failedStatus(
  doc: PolicyRunStatus,
  error: string,
  finishedAt: string,
  attempts?: number,
): PolicyRunStatus {
  return { ...doc, status: 'failed', error, finishedAt, attempts: Math.max(doc.attempts, attempts ?? 0) };
}

/** Someone asked to cancel; the run is not terminal yet. */
export function cancellationRequestedStatus(doc: PolicyRunStatus, reason: string): PolicyRunStatus {
  return { ...doc, cancellationRequested: true, cancellationReason: reason };
}

/** The run ended cancelled. */
export function cancelledStatus(doc: PolicyRunStatus, reason: string, finishedAt: string): PolicyRunStatus {
  return {
    ...doc,
    status: 'cancelled',
    cancellationRequested: true,
    cancellationReason: doc.cancellationReason ?? reason,
    finishedAt,
  };
}

/** Why an input cannot be simulated, or undefined when it can. */
export function invalidInputReason(input: PolicySimulationInput): string | undefined {
  if (!input.tenantId) return 'tenantId is required';
  if (!input.policyId) return 'policyId is required';
  if (!Number.isInteger(input.policyVersion) || input.policyVersion < 1)
    return 'policyVersion must be a positive integer';
  if (!Array.isArray(input.inputs?.sbomSet) || input.inputs.sbomSet.length === 0)
    return 'inputs.sbomSet must not be empty';
  return undefined;
}

/** The largest value of a Postgres `integer` column (policy versions are stored in one). */
const INT4_MAX = 2_147_483_647;

/** `value` with every NUL character removed from its strings (Postgres text and jsonb cannot hold them). */
function withoutNul<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('\u0000', '') as T;
  if (Array.isArray(value)) return value.map((item: unknown) => withoutNul(item)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [withoutNul(key), withoutNul(item)])) as T;
  }
  return value;
}

/**
 * The failed document of a run whose data Postgres refused (`reason` says what it refused): what can be stored of
 * it, so that the run still ends `failed` where operators look. NUL characters are removed from every string and
 * the policy version is brought into the column's range; the outcome of the evaluation, if any, is dropped.
 */
export function storableStatus(doc: PolicyRunStatus, reason: string, finishedAt: string): PolicyRunStatus {
  const stored = withoutNul({
    ...doc,
    status: 'failed' as const,
    error: reason,
    finishedAt: doc.finishedAt ?? finishedAt,
    stats: null,
    result: null,
  });
  const version = Number.isInteger(stored.policyVersion) ? stored.policyVersion : 1;
  return { ...stored, policyVersion: Math.min(Math.max(version, 1), INT4_MAX) };
}
