import { describe, expect, it } from 'vitest';
import { APPROVAL_STATES, type PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import {
  ackRejection,
  applyEvent,
  decide,
  FINAL_STATES,
  initialView,
  isFinal,
  nextTimer,
  OPEN_STATES,
  requestedTransition,
} from '../../workflows/pack-approval/state.js';
import { packApprovalEvent } from '../support/fixtures.js';

const requested = packApprovalEvent({
  eventId: 'e1',
  requiredGrants: ['deploy:prod'],
  requestedAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2026-01-01T10:00:00.000Z',
  resumeCallback: { url: 'https://runner.example/resume', token: 'tr-secret-token-123' },
});
const view = initialView(requested, 3600);
const ack = { decision: 'approve' as const, decidedBy: 'alice', grants: ['Packs.Approve', 'deploy:prod'] };

describe('pack approval state', () => {
  it('starts pending (or held for a policy gate) with the request’s data and no secret', () => {
    expect(view).toMatchObject({
      state: 'pending',
      expiresAt: '2026-01-01T10:00:00.000Z',
      locale: 'en-US',
      decision: null,
    });
    expect(JSON.stringify(view)).not.toContain('tr-secret-token-123');
    expect(requestedTransition(view)).toMatchObject({
      to: 'pending',
      auditType: 'pack.approval.requested',
      notify: 'requested',
    });
    const gate = initialView({ ...requested, kind: 'pack.policy.gate', expiresAt: undefined }, 3600);
    expect(gate).toMatchObject({ state: 'held', expiresAt: '2026-01-01T01:00:00.000Z' });
    expect(requestedTransition(gate)).toMatchObject({ to: 'held', auditType: 'pack.policy.hold', notify: 'hold' });
  });

  it('applies Task Runner updates and ignores events after the final state', () => {
    const expired = applyEvent(view, { ...requested, eventId: 'e2', type: 'PackApprovalUpdated', status: 'expired' });
    expect(expired.view.state).toBe('expired');
    expect(expired.transition).toMatchObject({ from: 'pending', to: 'expired', notify: 'expired' });
    const late = applyEvent(expired.view, {
      ...requested,
      eventId: 'e3',
      type: 'PackApprovalUpdated',
      status: 'approved',
    });
    expect(late.transition).toBeUndefined();
    expect(late.view.state).toBe('expired');
    expect(late.view.eventIds).toEqual(['e1', 'e2', 'e3']);
    const gate = initialView({ ...requested, kind: 'pack.policy.gate' }, 3600);
    const released = applyEvent(gate, {
      ...requested,
      eventId: 'e4',
      type: 'PackApprovalUpdated',
      status: 'released',
      reason: 'VEX published',
    });
    expect(released.view).toMatchObject({ state: 'released', lastReason: 'VEX published' });
    expect(released.transition?.notify).toBe('released');
    expect(isFinal(released.view.state)).toBe(true);
  });

  it('validates acks: grants, pending state, conflicting and repeated decisions', () => {
    expect(ackRejection(undefined, ack)?.type).toBe('ApprovalNotRequested');
    expect(ackRejection(view, { ...ack, grants: ['Packs.Approve'] })).toMatchObject({ type: 'ApprovalGrantsMissing' });
    expect(ackRejection(view, ack)).toBeUndefined();
    const decided = decide(view, ack, '2026-01-01T01:00:00.000Z');
    expect(decided.view.state).toBe('approved');
    expect(decided.transition).toMatchObject({ auditType: 'pack.approval.acknowledged', notify: 'decided' });
    expect(ackRejection(decided.view, ack)).toBeUndefined(); // same decision: answered with the original result
    expect(ackRejection(decided.view, { ...ack, decision: 'reject' })?.type).toBe('ApprovalAlreadyDecided');
    const held = initialView({ ...requested, kind: 'pack.policy.gate' }, 3600);
    expect(ackRejection(held, ack)?.type).toBe('ApprovalNotPending');
  });

  it('plans reminders before expiry, then the expiry', () => {
    expect(nextTimer(view, [3600, 600], 0)).toEqual({ at: Date.parse('2026-01-01T09:00:00.000Z'), kind: 'reminder' });
    expect(nextTimer(view, [3600, 600], 1)).toEqual({ at: Date.parse('2026-01-01T09:50:00.000Z'), kind: 'reminder' });
    expect(nextTimer(view, [3600, 600], 2)).toEqual({ at: Date.parse('2026-01-01T10:00:00.000Z'), kind: 'expiry' });
    expect(nextTimer({ ...view, state: 'approved' }, [3600], 0)).toBeUndefined();
  });
});

/** A Task Runner `PackApprovalUpdated` event for `requested`'s approval. */
const update = (eventId: string, overrides: Partial<PackApprovalEvent> = {}): PackApprovalEvent => ({
  ...requested,
  eventId,
  type: 'PackApprovalUpdated',
  ...overrides,
});
const gateView = initialView({ ...requested, kind: 'pack.policy.gate' }, 3600);
const gate = { gateId: 'vex-pending', parameters: { advisory: 'CVE-2025-0001' }, messages: ['waiting for VEX'] };

describe('pack approval state: decisions', () => {
  it('stores a rejection as rejected, with the decider in the audit reason', () => {
    const rejected = decide(view, { ...ack, decision: 'reject', decidedBy: 'bob' }, '2026-01-01T01:00:00.000Z');
    expect(rejected.view.state).toBe('rejected');
    expect(rejected.view.decision).toEqual({
      decision: 'reject',
      decidedBy: 'bob',
      decidedAt: '2026-01-01T01:00:00.000Z',
      resumeStatus: 'pending',
    });
    expect(rejected.result).toEqual(rejected.view.decision);
    expect(rejected.transition).toEqual({
      from: 'pending',
      to: 'rejected',
      reason: 'rejected by bob',
      auditType: 'pack.approval.acknowledged',
      notify: 'decided',
    });
    expect(isFinal(rejected.view.state)).toBe(true);
  });

  it('records an approval’s comment as the reason, and otherwise who approved', () => {
    const commented = decide(view, { ...ack, comment: 'ship it' }, '2026-01-01T01:00:00.000Z');
    expect(commented.result).toMatchObject({ decision: 'approve', comment: 'ship it', resumeStatus: 'pending' });
    expect(commented.transition).toMatchObject({ from: 'pending', to: 'approved', reason: 'ship it' });
    const plain = decide(view, ack, '2026-01-01T01:00:00.000Z');
    expect(plain.transition.reason).toBe('approved by alice');
    expect(plain.result).not.toHaveProperty('comment');
  });

  it('explains every refused ack in its message', () => {
    expect(ackRejection(undefined, ack)).toEqual({
      type: 'ApprovalNotRequested',
      message: 'No approval was requested for this run and approval id',
    });
    expect(ackRejection(view, { ...ack, grants: [] })).toEqual({
      type: 'ApprovalGrantsMissing',
      message: 'Approver lacks grants: deploy:prod',
    });
    const twoGrants = initialView(packApprovalEvent(), 3600);
    expect(ackRejection(twoGrants, { ...ack, grants: ['deploy:prod'] })?.message).toBe(
      'Approver lacks grants: packs:approve',
    );
    expect(ackRejection(twoGrants, { ...ack, grants: [] })?.message).toBe(
      'Approver lacks grants: deploy:prod, packs:approve',
    );
    const decided = decide(view, ack, '2026-01-01T01:00:00.000Z').view;
    expect(ackRejection(decided, { ...ack, decision: 'reject' })).toEqual({
      type: 'ApprovalAlreadyDecided',
      message: 'Already decided: approve',
    });
    expect(ackRejection(gateView, ack)).toEqual({ type: 'ApprovalNotPending', message: 'The approval is held' });
  });
});

describe('pack approval state: final and open states', () => {
  it('splits every state into open (pending, held) and final, never both', () => {
    expect(APPROVAL_STATES.filter((s) => !isFinal(s))).toEqual(['pending', 'held']);
    expect(APPROVAL_STATES.filter((s) => isFinal(s))).toEqual([
      'approved',
      'rejected',
      'expired',
      'cancelled',
      'released',
    ]);
    expect([...OPEN_STATES].sort()).toEqual(APPROVAL_STATES.filter((s) => !FINAL_STATES.includes(s)).sort());
  });

  it.each(['approved', 'rejected', 'cancelled', 'expired', 'released'] as const)(
    'changes nothing once %s: later Task Runner updates only record their event id',
    (state) => {
      const over = { ...view, state };
      for (const status of ['approved', 'rejected', 'expired', 'cancelled', 'held', 'released'] as const) {
        if (status === state) continue;
        const later = applyEvent(over, update('late', { status }));
        expect(later.transition, `${state} then ${status}`).toBeUndefined();
        expect(later.view.state).toBe(state);
        expect(later.view.eventIds).toEqual(['e1', 'late']);
      }
    },
  );
});

describe('pack approval state: Task Runner updates', () => {
  it('starts with the request’s policy gate (or none) and a pending resume', () => {
    expect(initialView({ ...requested, policyGate: gate }, 3600).policyGate).toEqual(gate);
    expect(view.policyGate).toBeNull();
    expect(view.resume).toEqual({ status: 'pending' });
    expect(requestedTransition(view)).toEqual({
      from: null,
      to: 'pending',
      reason: 'approval requested',
      auditType: 'pack.approval.requested',
      notify: 'requested',
    });
    expect(requestedTransition(gateView)).toEqual({
      from: null,
      to: 'held',
      reason: 'policy gate holds the run',
      auditType: 'pack.policy.hold',
      notify: 'hold',
    });
  });

  it.each(['approved', 'rejected'] as const)('takes a decision made elsewhere (%s) and notifies it', (status) => {
    const next = applyEvent(view, update('e2', { status, reason: 'decided in the Task Runner UI' }));
    expect(next.view).toMatchObject({ state: status, lastReason: 'decided in the Task Runner UI' });
    expect(next.transition).toEqual({
      from: 'pending',
      to: status,
      reason: 'decided in the Task Runner UI',
      auditType: 'pack.approval.decided-elsewhere',
      notify: 'decided',
    });
  });

  it('expires and cancels with the Task Runner’s status as the reason when it gives none', () => {
    expect(applyEvent(view, update('e2', { status: 'expired' })).transition).toEqual({
      from: 'pending',
      to: 'expired',
      reason: 'Task Runner reported expired',
      auditType: 'pack.approval.expired',
      notify: 'expired',
    });
    const cancelled = applyEvent(view, update('e2', { status: 'cancelled' }));
    expect(cancelled.view.state).toBe('cancelled');
    // A cancellation is audited but notifies nobody.
    expect(cancelled.transition).toEqual({
      from: 'pending',
      to: 'cancelled',
      reason: 'Task Runner reported cancelled',
      auditType: 'pack.approval.cancelled',
    });
  });

  it('holds a pending approval, and refreshes the gate of a held one without a transition', () => {
    const held = applyEvent(view, update('e2', { status: 'held', policyGate: gate }));
    expect(held.view).toMatchObject({ state: 'held', policyGate: gate });
    expect(held.transition).toEqual({
      from: 'pending',
      to: 'held',
      reason: 'Task Runner reported held',
      auditType: 'pack.policy.hold',
      notify: 'hold',
    });
    const refreshed = applyEvent(held.view, update('e3', { status: 'held', policyGate: { ...gate, messages: [] } }));
    expect(refreshed.transition).toBeUndefined();
    expect(refreshed.view).toMatchObject({ state: 'held', policyGate: { ...gate, messages: [] } });
    const again = applyEvent(held.view, update('e4', { status: 'held' }));
    expect(again.transition).toBeUndefined();
    expect(again.view.policyGate).toEqual(gate);
    expect(again.view.eventIds).toEqual(['e1', 'e2', 'e4']);
  });

  it('releases only a held gate', () => {
    const released = applyEvent(gateView, update('e2', { status: 'released' }));
    expect(released.transition).toEqual({
      from: 'held',
      to: 'released',
      reason: 'Task Runner reported released',
      auditType: 'pack.policy.released',
      notify: 'released',
    });
    const notHeld = applyEvent(view, update('e2', { status: 'released' }));
    expect(notHeld.transition).toBeUndefined();
    expect(notHeld.view.state).toBe('pending');
    expect(notHeld.view.eventIds).toEqual(['e1', 'e2']);
  });

  it('records but does not act on a repeated request or an update without a status', () => {
    const repeat = applyEvent(view, { ...requested, eventId: 'e2', status: 'expired', reason: 'again' });
    expect(repeat.transition).toBeUndefined();
    expect(repeat.view).toMatchObject({ state: 'pending', lastReason: 'again', eventIds: ['e1', 'e2'] });
    const bare = applyEvent(view, update('e3'));
    expect(bare.transition).toBeUndefined();
    expect(bare.view.state).toBe('pending');
  });
});

describe('pack approval state: timers', () => {
  it('sends the earliest reminder first whatever order the offsets are configured in', () => {
    expect(nextTimer(view, [600, 3600], 0)).toEqual({ at: Date.parse('2026-01-01T09:00:00.000Z'), kind: 'reminder' });
    expect(nextTimer(view, [600, 3600], 1)).toEqual({ at: Date.parse('2026-01-01T09:50:00.000Z'), kind: 'reminder' });
    expect(nextTimer(view, [], 0)).toEqual({ at: Date.parse('2026-01-01T10:00:00.000Z'), kind: 'expiry' });
    expect(nextTimer(gateView, [3600], 0)).toBeUndefined();
    expect(nextTimer({ ...view, expiresAt: null }, [3600], 0)).toBeUndefined();
  });
});
