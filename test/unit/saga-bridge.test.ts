// The pure decisions of the JetStream bridge: how long a NAK waits, when a failing message is given up on, what a
// message is before it reaches the ingress, which subjects the consumer filters on, how headers are kept.
import { headers as natsHeaders } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import {
  afterFailure,
  bridgeFilterSubjects,
  checkMessage,
  flattenHeaders,
  NAK_MAX_DELAY_MS,
  nakDelayMs,
} from '../../workers/saga-bridge.js';
import { SAGAS } from '../../workflows/sagas/registry.js';
import { advisoryPublished, scanCompleted } from '../support/sagas.js';

const SUBJECTS = ['aggregate.>'];
const bytes = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

describe('NAK backoff', () => {
  it('doubles from one second per delivery and stops at a minute', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(nakDelayMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000,
    ]);
    expect(NAK_MAX_DELAY_MS).toBe(60_000);
    expect(nakDelayMs(1_000)).toBe(60_000);
  });

  it('treats a count below one as the first delivery', () => {
    expect(nakDelayMs(0)).toBe(1_000);
  });
});

describe('after a failed delivery', () => {
  it('NAKs with the backoff of its delivery count until the last delivery, then quarantines', () => {
    expect(afterFailure(1, 3)).toEqual({ action: 'nak', delayMs: 1_000 });
    expect(afterFailure(2, 3)).toEqual({ action: 'nak', delayMs: 2_000 });
    expect(afterFailure(3, 3)).toEqual({ action: 'quarantine' });
    // Deliveries go on past the limit when a quarantine record could not be written: still quarantined then.
    expect(afterFailure(7, 3)).toEqual({ action: 'quarantine' });
    expect(afterFailure(1, 1)).toEqual({ action: 'quarantine' });
  });
});

describe('classifying a message', () => {
  it('passes an event whose subject names its tenant, aggregate type and event type', () => {
    const event = scanCompleted('img-1', 'corr-1', { tenantId: 'eu.acme' });
    expect(checkMessage(SUBJECTS, 'aggregate.eu%2Eacme.Scan.Scan.Completed', bytes(event))).toEqual({
      kind: 'event',
      tenantId: 'eu.acme',
      event,
    });
  });

  it('keeps fields the contract does not know', () => {
    const event = { ...advisoryPublished('adv-1'), extra: { kept: true } };
    const check = checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(event));
    expect(check).toMatchObject({ kind: 'event', event: { extra: { kept: true } } });
  });

  it('calls a payload that is not UTF-8 JSON undecodable, with the subject tenant', () => {
    const cases: [Uint8Array, string][] = [
      [bytes('{"tenantId": "secret-7", oops'), 'payload of 29 bytes is not JSON'],
      [bytes(''), 'payload of 0 bytes is not JSON'],
      [new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), 'payload of 4 bytes is not UTF-8'],
    ];
    for (const [data, error] of cases) {
      const check = checkMessage(SUBJECTS, 'aggregate.eu%2Eacme.Scan.Scan.Completed', data);
      expect(check).toEqual({ kind: 'undecodable', tenantId: 'eu.acme', eventId: null, sagaNames: [], error });
    }
  });

  it('calls JSON that breaks the event contract invalid, naming each field and the event id when there is one', () => {
    const { sequence: _, ...noSequence } = advisoryPublished('adv-1', {}, { eventId: 'evt-7' });
    const check = checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(noSequence));
    expect(check).toMatchObject({ kind: 'invalid', tenantId: 'acme', eventId: 'evt-7', sagaNames: [] });
    expect(check.kind === 'invalid' && check.error).toContain('/sequence');
    for (const value of [42, null, [], '"text"']) {
      expect(checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(value))).toMatchObject({
        kind: 'invalid',
        eventId: null,
      });
    }
    const badSequence = { ...advisoryPublished('adv-1'), sequence: '3' };
    expect(checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(badSequence))).toMatchObject({
      kind: 'invalid',
    });
  });

  it('records a message on a subject outside the aggregate prefixes under no tenant when it has no event', () => {
    expect(checkMessage(SUBJECTS, 'elsewhere.acme.Scan.Done', bytes('nope'))).toMatchObject({
      kind: 'undecodable',
      tenantId: '',
    });
    expect(checkMessage(SUBJECTS, 'elsewhere.acme.Scan.Done', bytes({}))).toMatchObject({
      kind: 'invalid',
      tenantId: '',
    });
  });

  it('words the contract errors as pointer and message, the root as /', () => {
    const check = checkMessage(SUBJECTS, 'aggregate.acme.Scan.Scan.Completed', bytes(42));
    expect(check.kind === 'invalid' && check.error).toBe('/: must be object');
    const { sequence: _, occurredAt: __, ...partial } = advisoryPublished('adv-1');
    const two = checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(partial));
    expect(two.kind === 'invalid' && two.error.split('; ').sort()).toEqual([
      "/occurredAt: must have required property 'occurredAt'",
      "/sequence: must have required property 'sequence'",
    ]);
  });

  it('refuses an event of another tenant than its subject, recorded under the subject tenant', () => {
    const event = advisoryPublished('adv-1', {}, { tenantId: 'globex' });
    const check = checkMessage(SUBJECTS, 'aggregate.acme.Advisory.Advisory.Published', bytes(event));
    expect(check).toEqual({
      kind: 'tenant_mismatch',
      tenantId: 'acme',
      eventId: event.eventId,
      sagaNames: ['advisory-impact-rescan'],
      error: 'subject tenant "acme" differs from the event\'s tenantId "globex"',
    });
  });

  it('refuses an event whose subject names another aggregate or event type as invalid', () => {
    const event = advisoryPublished('adv-1');
    for (const subject of ['aggregate.acme.Scan.Advisory.Published', 'aggregate.acme.Advisory.Advisory.Withdrawn']) {
      const check = checkMessage(SUBJECTS, subject, bytes(event));
      expect(check).toMatchObject({ kind: 'invalid', tenantId: 'acme', eventId: event.eventId });
      expect(check.kind === 'invalid' && check.error).toContain('the event is Advisory/Advisory.Published');
    }
    expect(checkMessage(SUBJECTS, 'aggregate.acme.Scan.Advisory.Published', bytes(event))).toMatchObject({
      error:
        'subject aggregate.acme.Scan.Advisory.Published names Scan/Advisory.Published, the event is Advisory/Advisory.Published',
    });
  });

  it('refuses an event on a subject outside the aggregate prefixes, under the event tenant', () => {
    const event = advisoryPublished('adv-1');
    expect(checkMessage(SUBJECTS, 'elsewhere.acme.Advisory.Advisory.Published', bytes(event))).toMatchObject({
      kind: 'invalid',
      tenantId: 'acme',
      error: 'subject elsewhere.acme.Advisory.Advisory.Published is not an aggregate-event subject',
    });
  });

  it('names the sagas the event routes to', () => {
    const event = scanCompleted('img-1', 'corr-1', { tenantId: 'globex' });
    expect(checkMessage(SUBJECTS, 'aggregate.acme.Scan.Scan.Completed', bytes(event), SAGAS)).toMatchObject({
      kind: 'tenant_mismatch',
      sagaNames: ['advisory-impact-rescan'],
    });
  });
});

describe('the consumer filters', () => {
  it('are the trigger subjects for every tenant, or for each tenant of a shard', () => {
    expect(bridgeFilterSubjects(SUBJECTS, [])).toEqual([
      'aggregate.*.Advisory.Advisory.Published',
      'aggregate.*.Scan.Scan.Completed',
      'aggregate.*.MirrorBundle.MirrorBundle.ExportRequested',
    ]);
    expect(bridgeFilterSubjects(SUBJECTS, ['acme', 'eu.globex'])).toEqual([
      'aggregate.acme.Advisory.Advisory.Published',
      'aggregate.acme.Scan.Scan.Completed',
      'aggregate.acme.MirrorBundle.MirrorBundle.ExportRequested',
      'aggregate.eu%2Eglobex.Advisory.Advisory.Published',
      'aggregate.eu%2Eglobex.Scan.Scan.Completed',
      'aggregate.eu%2Eglobex.MirrorBundle.MirrorBundle.ExportRequested',
    ]);
  });

  it('list a tenant named twice once, and follow the given sagas', () => {
    const sagas = [{ ...SAGAS[0]!, triggers: [{ aggregateType: 'Vex', eventType: 'Issued', starts: true }] }];
    expect(bridgeFilterSubjects(SUBJECTS, ['acme', 'acme'], sagas)).toEqual(['aggregate.acme.Vex.Issued']);
    expect(bridgeFilterSubjects(SUBJECTS, [], sagas)).toEqual(['aggregate.*.Vex.Issued']);
  });

  it('refuse a tenant that cannot be a subject token', () => {
    expect(() => bridgeFilterSubjects(SUBJECTS, ['acme', 'a*'])).toThrow('tenantId "a*" cannot be a subject token');
  });
});

describe('headers in quarantine', () => {
  it('keep each header with all its values', () => {
    const h = natsHeaders();
    h.set('Nats-Msg-Id', 'evt-1');
    h.append('X-Trace', 'a');
    h.append('X-Trace', 'b');
    expect(flattenHeaders(h)).toEqual({ 'Nats-Msg-Id': ['evt-1'], 'X-Trace': ['a', 'b'] });
  });

  it('are empty for a message without headers', () => {
    expect(flattenHeaders(undefined)).toEqual({});
  });
});
