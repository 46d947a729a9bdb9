import { describe, expect, it } from 'vitest';
import {
  ackRejection,
  applyEvent,
  decide,
  initialView,
  isFinal,
  nextTimer,
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
