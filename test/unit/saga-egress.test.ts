/**
 * The egress' pure parts: the prefix it publishes under, the subjects, headers and message ids of each kind of
 * message, and which facts a projection write stands for.
 */
import { describe, expect, it } from 'vitest';
import {
  approvalDecisionEvent,
  commandOutcomeEvent,
  effectResultEvent,
  egressPrefixOf,
  sagaFactEvent,
  sagaFactsOf,
  type ApprovalDecisionEvent,
  type CommandOutcomeEvent,
  type SagaFactEvent,
} from '../../activities/sagas/egress.js';
import type { EffectResult } from '../../workflows/sagas/definitions.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const result = (overrides: Partial<EffectResult> = {}): EffectResult => ({
  tenantId: 'acme.eu',
  commandId: 'acme.eu:rescan:adv-1:resolve',
  effectName: 'impact.v2',
  resultType: 'failed',
  payload: { message: 'down' },
  timestamp: '2026-03-01T10:00:00.000Z',
  ...overrides,
});

const outcome = (): CommandOutcomeEvent => ({
  tenantId: 'acme',
  commandId: 'acme:rescan:adv-1:rescan',
  commandType: 'RequestRescan',
  aggregateType: 'Scan',
  aggregateId: 'scan-1',
  correlationId: 'adv-1',
  causationId: 'evt-1',
  outcome: 'failed',
  httpStatus: null,
  body: { message: 'refused' },
  timestamp: '2026-03-01T10:00:00.000Z',
});

const fact = (): SagaFactEvent => ({
  tenantId: 'acme',
  sagaName: 'advisory-impact-rescan',
  correlationId: 'adv-1',
  workflowId: 'saga/acme/advisory-impact-rescan/adv-1',
  generation: 2,
  fact: 'compensation_failed',
  status: 'compensation_failed',
  reason: 'scan refused',
  startedAt: '2026-03-01T10:00:00.000Z',
  finishedAt: '2026-03-01T10:05:00.000Z',
  revision: 7,
  traceparent: TRACEPARENT,
});

const decision = (): ApprovalDecisionEvent => ({
  tenantId: 'acme',
  runId: 'run-1',
  approvalId: 'ap-1',
  workflowId: 'pack-approval/acme/run-1/ap-1',
  decision: 'reject',
  decidedBy: 'alice',
  decidedAt: '2026-03-01T10:00:00.000Z',
  correlationId: 'corr-1',
});

describe('egressPrefixOf', () => {
  it('is the prefix of the first {prefix}.> filter of the workflow stream', () => {
    expect(egressPrefixOf({ name: 'WORKFLOW_EVENTS', subjects: ['workflow.>'] })).toBe('workflow');
    expect(egressPrefixOf({ name: 'W', subjects: ['audit.one', 'runner.events.>', 'other.>'] })).toBe('runner.events');
  });

  it('refuses a stream without a literal {prefix}.> filter, naming it', () => {
    expect(() => egressPrefixOf({ name: 'W', subjects: ['workflow.*'] })).toThrow(
      'stream W has no {prefix}.> filter with a literal prefix for the egress to publish under (subjects: workflow.*)',
    );
    expect(() => egressPrefixOf({ name: 'W', subjects: ['workflow.*.>'] })).toThrow(/literal prefix/);
    expect(() => egressPrefixOf({ name: 'W', subjects: ['>'] })).toThrow(/literal prefix/);
    // An empty token is no literal prefix either: the prefix alone, or one between two dots.
    for (const subject of ['.>', 'workflow..events.>']) {
      expect(() => egressPrefixOf({ name: 'W', subjects: [subject] }), subject).toThrow(/literal prefix/);
    }
    expect(() => egressPrefixOf({ name: 'W', subjects: ['workflow.*', 'audit'] })).toThrow(
      '(subjects: workflow.*, audit)',
    );
  });
});

describe('the message builders', () => {
  it('put an effect result under its tenant, effect and result type, dots written %2E, the body as it is', () => {
    const event = effectResultEvent('workflow', result(), { correlationId: 'adv-1', traceparent: TRACEPARENT });
    expect(event).toEqual({
      kind: 'effect',
      subject: 'workflow.acme%2Eeu.effect.impact%2Ev2.failed',
      msgId: 'acme.eu:rescan:adv-1:resolve',
      headers: {
        'tenant-id': 'acme.eu',
        'command-id': 'acme.eu:rescan:adv-1:resolve',
        'effect-name': 'impact.v2',
        'x-correlation-id': 'adv-1',
        traceparent: TRACEPARENT,
        'Nats-Msg-Id': 'acme.eu:rescan:adv-1:resolve',
      },
      body: result(),
    });
  });

  it('leave out the correlation and trace headers they do not know', () => {
    expect(Object.keys(effectResultEvent('workflow', result()).headers)).toEqual([
      'tenant-id',
      'command-id',
      'effect-name',
      'Nats-Msg-Id',
    ]);
    expect(Object.keys(effectResultEvent('workflow', result(), { correlationId: '' }).headers)).not.toContain(
      'x-correlation-id',
    );
  });

  it('refuse a tenant or name no subject token can carry, and a header value with a line break', () => {
    expect(() => effectResultEvent('workflow', result({ tenantId: 'a*b' }))).toThrow(
      'tenantId "a*b" cannot be a subject token',
    );
    expect(() => effectResultEvent('workflow', result({ effectName: 'a b' }))).toThrow(
      'effectName "a b" cannot be a subject token',
    );
    expect(() => effectResultEvent('workflow', result(), { correlationId: 'a\r\nb' })).toThrow(
      'header x-correlation-id cannot carry a line break',
    );
  });

  it('put a command outcome under its command type and outcome, with the command id as message id', () => {
    expect(commandOutcomeEvent('workflow', outcome())).toEqual({
      kind: 'command',
      subject: 'workflow.acme.command.RequestRescan.failed',
      msgId: 'acme:rescan:adv-1:rescan',
      headers: {
        'tenant-id': 'acme',
        'command-id': 'acme:rescan:adv-1:rescan',
        'x-correlation-id': 'adv-1',
        'Nats-Msg-Id': 'acme:rescan:adv-1:rescan',
      },
      body: outcome(),
    });
  });

  it('name the part a subject token cannot carry, for every kind of message', () => {
    expect(() => commandOutcomeEvent('workflow', { ...outcome(), tenantId: 'a b' })).toThrow(
      'tenantId "a b" cannot be a subject token',
    );
    expect(() => commandOutcomeEvent('workflow', { ...outcome(), commandType: 'Request*' })).toThrow(
      'commandType "Request*" cannot be a subject token',
    );
    expect(() => sagaFactEvent('workflow', { ...fact(), tenantId: 'a>' })).toThrow(
      'tenantId "a>" cannot be a subject token',
    );
    expect(() => sagaFactEvent('workflow', { ...fact(), sagaName: 'rescan %' })).toThrow(
      'sagaName "rescan %" cannot be a subject token',
    );
    expect(() => approvalDecisionEvent('workflow', { ...decision(), tenantId: '' })).toThrow(
      'tenantId "" cannot be a subject token',
    );
  });

  it('give a saga fact the id of its instance, generation and fact, and no command id', () => {
    const event = sagaFactEvent('workflow', fact());
    expect(event.kind).toBe('saga');
    expect(event.subject).toBe('workflow.acme.saga.advisory-impact-rescan.compensation_failed');
    expect(event.msgId).toBe('saga/acme/advisory-impact-rescan/adv-1:2:compensation_failed');
    expect(event.headers).toEqual({
      'tenant-id': 'acme',
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
      'Nats-Msg-Id': 'saga/acme/advisory-impact-rescan/adv-1:2:compensation_failed',
    });
    expect(event.body).toEqual(fact());
  });

  it('give an approval decision the id of the approval and the decision', () => {
    const event = approvalDecisionEvent('workflow', decision());
    expect(event.kind).toBe('approval');
    expect(event.subject).toBe('workflow.acme.approval.reject');
    expect(event.msgId).toBe('pack-approval/acme/run-1/ap-1:decision:reject');
    expect(event.headers).toEqual({
      'tenant-id': 'acme',
      'x-correlation-id': 'corr-1',
      'Nats-Msg-Id': 'pack-approval/acme/run-1/ap-1:decision:reject',
    });
    expect(event.body).toEqual(decision());
  });
});

describe('sagaFactsOf', () => {
  const start = '2026-03-01T10:00:00.000Z';
  const later = '2026-03-02T10:00:00.000Z';
  const at = (status: SagaFactEvent['status'], revision: number, startedAt = start) => ({
    status,
    revision,
    startedAt,
  });

  it('tells a new instance started, and its status when it is already past running', () => {
    expect(sagaFactsOf(undefined, at('running', 1))).toEqual(['started']);
    expect(sagaFactsOf(undefined, at('completed', 1))).toEqual(['started', 'completed']);
    // A new generation over the row of the finished one.
    expect(sagaFactsOf(at('completed', 9), at('running', 1, later))).toEqual(['started']);
  });

  it('tells a change of status once: a newer write with another status', () => {
    expect(sagaFactsOf(at('running', 1), at('compensating', 2))).toEqual(['compensating']);
    expect(sagaFactsOf(at('compensating', 2), at('compensated', 5))).toEqual(['compensated']);
  });

  it('tells nothing for a write without a change, a retry of a stored write, or an older write', () => {
    expect(sagaFactsOf(at('running', 1), at('running', 2))).toEqual([]);
    expect(sagaFactsOf(at('completed', 3), at('completed', 3))).toEqual([]);
    // A write at the stored revision stands for nothing even with another status: the stored row is as new as it.
    expect(sagaFactsOf(at('running', 3), at('completed', 3))).toEqual([]);
    expect(sagaFactsOf(at('compensating', 2), at('compensating', 3))).toEqual([]);
    expect(sagaFactsOf(at('completed', 4), at('failed', 3))).toEqual([]);
    expect(sagaFactsOf(at('running', 1, later), at('completed', 8))).toEqual([]);
  });
});
