/**
 * Pure decisions of the saga toolkit (unit-tested): inbox order, the outcome of a compensation, the final status,
 * when to continue as new.
 */
import type {
  AggregateEvent,
  CompensationRecord,
  EffectResult,
  GatewayResult,
  SagaEventDelivery,
  SagaStatus,
} from './definitions.js';

/**
 * The inbox after events recorded as unmatched were claimed at the start: they overtook the start event, so they go
 * right after the start events already received and before anything that arrived later, in sequence order (events of
 * one aggregate carry increasing sequences).
 */
export function insertClaimed(
  inbox: readonly SagaEventDelivery[],
  claimed: readonly AggregateEvent[],
  isStart: (event: AggregateEvent) => boolean,
): SagaEventDelivery[] {
  const ordered = [...claimed]
    .sort((a, b) => a.sequence - b.sequence)
    .map((event): SagaEventDelivery => ({ event, via: 'unmatched' }));
  let at = 0;
  while (at < inbox.length && isStart(inbox[at]!.event)) at++;
  return [...inbox.slice(0, at), ...ordered, ...inbox.slice(at)];
}

/** Index of the first delivery whose event satisfies `match`, or -1. */
export function indexOfMatch(inbox: readonly SagaEventDelivery[], match: (event: AggregateEvent) => boolean): number {
  return inbox.findIndex((delivery) => match(delivery.event));
}

/** What a compensation's answer means: a provider's success, or a rejection the step declared as "nothing to undo". */
export function compensationSucceeded(
  answer: EffectResult | GatewayResult,
  rejectionMeansUndone: boolean,
): { ok: true } | { ok: false; error: string } {
  if ('resultType' in answer) {
    if (answer.resultType === 'succeeded') return { ok: true };
    if (answer.resultType === 'rejected' && rejectionMeansUndone) return { ok: true };
    return { ok: false, error: `${answer.effectName} ${answer.resultType}: ${describePayload(answer.payload)}` };
  }
  if (answer.outcome === 'accepted') return { ok: true };
  if (rejectionMeansUndone) return { ok: true };
  return { ok: false, error: `command rejected (HTTP ${answer.httpStatus}): ${describePayload(answer.body)}` };
}

function describePayload(payload: Record<string, unknown>): string {
  const message = payload['message'] ?? payload['error'];
  return typeof message === 'string' ? message : JSON.stringify(payload);
}

/**
 * The final status after the saga's code ended abnormally: `cancelled` / `failed` when there was nothing to
 * compensate, else `compensated`, or `compensation_failed` when any compensation still failed after its retries.
 */
export function statusAfterCompensation(
  cause: 'cancelled' | 'failed',
  compensations: readonly CompensationRecord[],
): SagaStatus {
  if (compensations.length === 0) return cause;
  return compensations.some((c) => c.status === 'failed') ? 'compensation_failed' : 'compensated';
}

/**
 * Whether to continue as new before blocking: when Temporal suggests it (the history grows large), or — for tests
 * and small histories by choice — after `limit` events received in this run.
 */
export function shouldContinueAsNew(suggested: boolean, receivedThisRun: number, limit: number | undefined): boolean {
  return suggested || (limit !== undefined && limit > 0 && receivedThisRun >= limit);
}

/** The Web UI's one-line "current details" of an instance. */
export function currentDetails(status: SagaStatus, waitingFor: string | null, appliedEvents: number): string {
  const waiting = waitingFor ? ` · waiting for ${waitingFor}` : '';
  return `${status}${waiting} · ${appliedEvents} event${appliedEvents === 1 ? '' : 's'} received`;
}
