/** Pure transitions of an approval (unit-tested; used by the workflow). */
import type {
  AckApprovalArgs,
  AckResult,
  ApprovalState,
  ApprovalView,
  NotificationIntent,
  PackApprovalEvent,
} from './definitions.js';
import { ApprovalFailure } from './definitions.js';

/** States after which nothing changes any more. */
export const FINAL_STATES: readonly ApprovalState[] = ['approved', 'rejected', 'expired', 'cancelled', 'released'];
/** States of an approval that is still open (outstanding). */
export const OPEN_STATES: readonly ApprovalState[] = ['pending', 'held'];

/** True when the approval is over. */
export function isFinal(state: ApprovalState): boolean {
  return FINAL_STATES.includes(state);
}

/** A state change to persist and audit, and the notification it calls for. */
export interface Transition {
  from: ApprovalState | null;
  to: ApprovalState;
  reason: string;
  auditType: string;
  notify?: NotificationIntent['reason'];
}

/** The view created by the first Requested event. */
export function initialView(event: PackApprovalEvent, defaultTtlSeconds: number): ApprovalView {
  const expiresAt = event.expiresAt ?? new Date(Date.parse(event.requestedAt) + defaultTtlSeconds * 1000).toISOString();
  return {
    tenantId: event.tenantId,
    runId: event.runId,
    approvalId: event.approvalId,
    state: event.kind === 'pack.policy.gate' ? 'held' : 'pending',
    kind: event.kind,
    planHash: event.planHash,
    requiredGrants: event.requiredGrants,
    stepIds: event.stepIds,
    requestedBy: event.requestedBy,
    requestedAt: event.requestedAt,
    expiresAt,
    locale: event.locale ?? 'en-US',
    correlationId: event.correlationId,
    message: event.message,
    policyGate: event.policyGate ?? null,
    lastReason: null,
    decision: null,
    resume: { status: 'pending' },
    eventIds: [event.eventId],
  };
}

/** The first transition, from nothing to pending or held. */
export function requestedTransition(view: ApprovalView): Transition {
  return view.state === 'held'
    ? { from: null, to: 'held', reason: 'policy gate holds the run', auditType: 'pack.policy.hold', notify: 'hold' }
    : {
        from: null,
        to: 'pending',
        reason: 'approval requested',
        auditType: 'pack.approval.requested',
        notify: 'requested',
      };
}

/**
 * Applies a later event. Returns the new view and, when the state changes, the transition. Events after the final
 * state only record their id.
 */
export function applyEvent(
  view: ApprovalView,
  event: PackApprovalEvent,
): { view: ApprovalView; transition?: Transition } {
  const next: ApprovalView = {
    ...view,
    eventIds: [...view.eventIds, event.eventId],
    ...(event.reason ? { lastReason: event.reason } : {}),
    ...(event.policyGate ? { policyGate: event.policyGate } : {}),
  };
  if (isFinal(view.state) || event.type !== 'PackApprovalUpdated' || !event.status) return { view: next };
  const reason = event.reason ?? `Task Runner reported ${event.status}`;
  const to = (state: ApprovalState, auditType: string, notify?: NotificationIntent['reason']) => ({
    view: { ...next, state },
    transition: { from: view.state, to: state, reason, auditType, ...(notify ? { notify } : {}) },
  });
  switch (event.status) {
    case 'approved':
    case 'rejected':
      return to(event.status, 'pack.approval.decided-elsewhere', 'decided');
    case 'expired':
      return to('expired', 'pack.approval.expired', 'expired');
    case 'cancelled':
      return to('cancelled', 'pack.approval.cancelled');
    case 'held':
      return view.state === 'held'
        ? { view: { ...next, policyGate: event.policyGate ?? view.policyGate } }
        : to('held', 'pack.policy.hold', 'hold');
    case 'released':
      return view.state === 'held' ? to('released', 'pack.policy.released', 'released') : { view: next };
  }
}

/** Why an ack cannot be accepted, as a failure type and message; undefined when it can (or is a repeat). */
export function ackRejection(
  view: ApprovalView | undefined,
  args: AckApprovalArgs,
): { type: string; message: string } | undefined {
  if (!view)
    return { type: ApprovalFailure.NotRequested, message: 'No approval was requested for this run and approval id' };
  if (view.decision) {
    return view.decision.decision === args.decision
      ? undefined
      : { type: ApprovalFailure.AlreadyDecided, message: `Already decided: ${view.decision.decision}` };
  }
  if (view.state !== 'pending') return { type: ApprovalFailure.NotPending, message: `The approval is ${view.state}` };
  const missing = view.requiredGrants.filter((grant) => !args.grants.includes(grant));
  if (missing.length > 0)
    return { type: ApprovalFailure.GrantsMissing, message: `Approver lacks grants: ${missing.join(', ')}` };
  return undefined;
}

/** Records the decision. */
export function decide(
  view: ApprovalView,
  args: AckApprovalArgs,
  decidedAt: string,
): { view: ApprovalView; result: AckResult; transition: Transition } {
  const result: AckResult = {
    decision: args.decision,
    decidedBy: args.decidedBy,
    decidedAt,
    ...(args.comment ? { comment: args.comment } : {}),
    resumeStatus: 'pending',
  };
  const state: ApprovalState = args.decision === 'approve' ? 'approved' : 'rejected';
  return {
    view: { ...view, state, decision: result },
    result,
    transition: {
      from: view.state,
      to: state,
      reason: args.comment ?? `${state} by ${args.decidedBy}`,
      auditType: 'pack.approval.acknowledged',
      notify: 'decided',
    },
  };
}

/** The next timer of a pending approval: the next unsent reminder, else the expiry. */
export function nextTimer(
  view: ApprovalView,
  reminderOffsetsSeconds: number[],
  remindersSent: number,
): { at: number; kind: 'reminder' | 'expiry' } | undefined {
  if (view.state !== 'pending' || !view.expiresAt) return undefined;
  const expiry = Date.parse(view.expiresAt);
  const reminders = [...reminderOffsetsSeconds].sort((a, b) => b - a).map((s) => expiry - s * 1000);
  const reminder = reminders[remindersSent];
  if (reminder !== undefined) return { at: reminder, kind: 'reminder' };
  return { at: expiry, kind: 'expiry' };
}
