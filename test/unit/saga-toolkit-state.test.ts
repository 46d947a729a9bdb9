import { describe, expect, it } from 'vitest';
import type { EffectResult, GatewayResult, SagaEventDelivery } from '../../workflows/sagas/definitions.js';
import {
  compensationSucceeded,
  currentDetails,
  indexOfMatch,
  insertClaimed,
  shouldContinueAsNew,
  statusAfterCompensation,
} from '../../workflows/sagas/state.js';
import { advisoryPublished, scanCompleted } from '../support/sagas.js';

const isStart = (e: { eventType: string }) => e.eventType === 'Advisory.Published';
const ids = (inbox: SagaEventDelivery[]) => inbox.map((d) => `${d.event.eventId}/${d.via}`);

describe('insertClaimed', () => {
  const start: SagaEventDelivery = { event: advisoryPublished('a', {}, { eventId: 'start' }), via: 'ingress' };
  const later: SagaEventDelivery = {
    event: scanCompleted('i9', 'a', { eventId: 'later', sequence: 1 }),
    via: 'ingress',
  };
  const claimed = [
    scanCompleted('i1', 'a', { eventId: 's3', sequence: 3 }),
    scanCompleted('i1', 'a', { eventId: 's1', sequence: 1 }),
    scanCompleted('i1', 'a', { eventId: 's2', sequence: 2 }),
  ];

  it('places claimed events after the start events, before later arrivals, in sequence order', () => {
    expect(ids(insertClaimed([start, later], claimed, isStart))).toEqual([
      'start/ingress',
      's1/unmatched',
      's2/unmatched',
      's3/unmatched',
      'later/ingress',
    ]);
  });

  it('puts them first when no start event is in the inbox, and changes nothing without claims', () => {
    expect(ids(insertClaimed([later], claimed.slice(0, 1), isStart))).toEqual(['s3/unmatched', 'later/ingress']);
    expect(ids(insertClaimed([start, start, later], [], isStart))).toEqual([
      'start/ingress',
      'start/ingress',
      'later/ingress',
    ]);
    expect(ids(insertClaimed([], claimed.slice(1), isStart))).toEqual(['s1/unmatched', 's2/unmatched']);
  });

  it('leaves its inputs as they were', () => {
    const inbox = [start];
    const events = [...claimed];
    insertClaimed(inbox, events, isStart);
    expect(inbox).toEqual([start]);
    expect(events.map((e) => e.eventId)).toEqual(['s3', 's1', 's2']);
  });
});

describe('indexOfMatch', () => {
  it('finds the first matching delivery, or -1', () => {
    const inbox = [1, 2, 2].map((n, i): SagaEventDelivery => ({
      event: scanCompleted(`i${n}`, 'a', { eventId: `e${i}` }),
      via: 'ingress',
    }));
    expect(indexOfMatch(inbox, (e) => e.aggregateId === 'i2')).toBe(1);
    expect(indexOfMatch(inbox, (e) => e.aggregateId === 'i3')).toBe(-1);
  });
});

describe('compensationSucceeded', () => {
  const effect = (resultType: EffectResult['resultType'], payload: Record<string, unknown> = {}): EffectResult => ({
    tenantId: 't',
    commandId: 'c',
    effectName: 'mirror.release-quota',
    resultType,
    payload,
    timestamp: '2026-12-01T00:00:00.000Z',
  });
  const command = (outcome: GatewayResult['outcome'], body: Record<string, unknown> = {}): GatewayResult => ({
    commandId: 'c',
    outcome,
    httpStatus: outcome === 'accepted' ? 202 : 409,
    body,
  });

  it('accepts a succeeded effect and an accepted command', () => {
    expect(compensationSucceeded(effect('succeeded'), false)).toEqual({ ok: true });
    expect(compensationSucceeded(command('accepted'), false)).toEqual({ ok: true });
  });

  it('counts a refusal as done only when the step says a refusal means nothing is left to undo', () => {
    expect(compensationSucceeded(effect('rejected'), true)).toEqual({ ok: true });
    expect(compensationSucceeded(command('rejected'), true)).toEqual({ ok: true });
    expect(compensationSucceeded(effect('rejected', { message: 'no such quota' }), false)).toEqual({
      ok: false,
      error: 'mirror.release-quota rejected: no such quota',
    });
    expect(compensationSucceeded(command('rejected', { error: 'scan finished' }), false)).toEqual({
      ok: false,
      error: 'command rejected (HTTP 409): scan finished',
    });
  });

  it('never counts a failed effect as done, and describes an answer without a message by its body', () => {
    expect(compensationSucceeded(effect('failed', { status: 503 }), true)).toEqual({
      ok: false,
      error: 'mirror.release-quota failed: {"status":503}',
    });
  });
});

describe('statusAfterCompensation', () => {
  const at = '2026-12-01T00:00:00.000Z';
  it('keeps the cause when nothing was compensated', () => {
    expect(statusAfterCompensation('cancelled', [])).toBe('cancelled');
    expect(statusAfterCompensation('failed', [])).toBe('failed');
  });
  it('is compensated when every compensation ran, compensation_failed when any failed', () => {
    const ok = { step: 'a', status: 'compensated', at } as const;
    const failed = { step: 'b', status: 'failed', error: 'x', at } as const;
    expect(statusAfterCompensation('failed', [ok, ok])).toBe('compensated');
    expect(statusAfterCompensation('cancelled', [ok, failed])).toBe('compensation_failed');
    expect(statusAfterCompensation('failed', [failed, ok])).toBe('compensation_failed');
  });
});

describe('shouldContinueAsNew', () => {
  it('follows the server suggestion, or the event limit when one is set', () => {
    expect(shouldContinueAsNew(true, 0, undefined)).toBe(true);
    expect(shouldContinueAsNew(false, 1000, undefined)).toBe(false);
    expect(shouldContinueAsNew(false, 3, 3)).toBe(true);
    expect(shouldContinueAsNew(false, 2, 3)).toBe(false);
    expect(shouldContinueAsNew(false, 5, 0)).toBe(false);
  });
});

describe('currentDetails', () => {
  it('says status, wait and events received', () => {
    expect(currentDetails('running', 'Scan.Completed of 2 image(s)', 1)).toBe(
      'running · waiting for Scan.Completed of 2 image(s) · 1 event received',
    );
    expect(currentDetails('completed', null, 3)).toBe('completed · 3 events received');
    expect(currentDetails('running', null, 0)).toBe('running · 0 events received');
  });
});
