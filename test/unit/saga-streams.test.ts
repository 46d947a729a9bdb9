// The subjects of the sagas' JetStream streams: what aggregates publish on, what the bridge filters on, and whether an
// existing stream captures what the configuration asks for.
import { describe, expect, it } from 'vitest';
import type { SagaDefinition } from '../../workflows/sagas/definitions.js';
import { SAGAS } from '../../workflows/sagas/registry.js';
import {
  aggregateEventSubject,
  aggregatePublishPrefix,
  parseAggregateSubject,
  sagaTriggerSubjects,
  subjectCovers,
  tenantOfSubjectToken,
  tenantSubjectToken,
} from '../../workers/saga-streams.js';

const saga = (name: string, triggers: [aggregateType: string, eventType: string][]): SagaDefinition => ({
  ...SAGAS[0]!,
  name,
  triggers: triggers.map(([aggregateType, eventType]) => ({ aggregateType, eventType, starts: true })),
});

describe('trigger subjects of the sagas', () => {
  it('filters the aggregate stream to exactly the triggers of the registered sagas, for every tenant', () => {
    expect(sagaTriggerSubjects(['aggregate.>'])).toEqual([
      'aggregate.*.Advisory.Advisory.Published',
      'aggregate.*.Scan.Scan.Completed',
      'aggregate.*.MirrorBundle.MirrorBundle.ExportRequested',
    ]);
  });

  it('follows every configured prefix, a tenant shard, and lists a trigger two sagas share once', () => {
    const sagas = [
      saga('a', [['Scan', 'Scan.Completed']]),
      saga('b', [
        ['Scan', 'Scan.Completed'],
        ['Vex', 'Issued'],
      ]),
    ];
    expect(sagaTriggerSubjects(['eu.aggregate.>', '*.agg.>'], { sagas, tenant: 'acme' })).toEqual([
      'eu.aggregate.acme.Scan.Scan.Completed',
      '*.agg.acme.Scan.Scan.Completed',
      'eu.aggregate.acme.Vex.Issued',
      '*.agg.acme.Vex.Issued',
    ]);
  });

  it('yields filters the aggregate stream captures and that match the subjects events are published on', () => {
    const filters = sagaTriggerSubjects(['aggregate.>']);
    for (const filter of filters) expect(subjectCovers('aggregate.>', filter), filter).toBe(true);
    const published = aggregateEventSubject('aggregate', {
      tenantId: 'acme',
      aggregateType: 'Advisory',
      eventType: 'Advisory.Published',
    });
    expect(published).toBe('aggregate.acme.Advisory.Advisory.Published');
    expect(filters.filter((filter) => subjectCovers(filter, published))).toEqual([
      'aggregate.*.Advisory.Advisory.Published',
    ]);
    const other = aggregateEventSubject('aggregate', {
      tenantId: 'acme',
      aggregateType: 'Advisory',
      eventType: 'Withdrawn',
    });
    expect(filters.filter((filter) => subjectCovers(filter, other))).toEqual([]);
  });

  it('refuses a trigger or tenant that cannot be part of a subject', () => {
    expect(() =>
      sagaTriggerSubjects(['aggregate.>'], { sagas: [saga('bad', [['Advisory.V2', 'Published']])] }),
    ).toThrow('saga bad: trigger Advisory.V2/Published cannot be part of a subject');
    for (const eventType of ['Advisory..Published', 'Advisory.*', 'Advisory.>', 'Advisory Published', '']) {
      expect(() => sagaTriggerSubjects(['aggregate.>'], { sagas: [saga('bad', [['Advisory', eventType]])] })).toThrow(
        'cannot be part of a subject',
      );
    }
    for (const tenant of ['>', '*', 'a b', '', 'a%b', 'a.>']) {
      expect(() => sagaTriggerSubjects(['aggregate.>'], { tenant })).toThrow(
        `tenantId "${tenant}" cannot be a subject token`,
      );
    }
  });

  it('filters a shard of a tenant with dots on its encoded token', () => {
    expect(sagaTriggerSubjects(['aggregate.>'], { tenant: 'eu.acme' })).toContain(
      'aggregate.eu%2Eacme.Scan.Scan.Completed',
    );
  });
});

describe('the subject of an aggregate event', () => {
  it('is {prefix}.{tenant}.{aggregateType}.{eventType}, under a prefix of several tokens too', () => {
    expect(
      aggregateEventSubject('eu.aggregate', { tenantId: 't-1:x', aggregateType: 'MirrorBundle', eventType: 'Done' }),
    ).toBe('eu.aggregate.t-1:x.MirrorBundle.Done');
  });

  it('refuses parts that would change the layout or act as wildcards', () => {
    const event = { tenantId: 'acme', aggregateType: 'Advisory', eventType: 'Advisory.Published' };
    expect(() => aggregateEventSubject('aggregate.*', event)).toThrow('"aggregate.*" is not a literal subject prefix');
    expect(() => aggregateEventSubject('', event)).toThrow('"" is not a literal subject prefix');
    for (const tenantId of ['eu%2Eacme', 'a*', '', ' ']) {
      expect(() => aggregateEventSubject('aggregate', { ...event, tenantId })).toThrow(
        `tenantId "${tenantId}" cannot be a subject token (no blanks, wildcards or '%')`,
      );
    }
    expect(() => aggregateEventSubject('aggregate', { ...event, aggregateType: '*' })).toThrow(
      'aggregateType "*" cannot be a subject token',
    );
    expect(() => aggregateEventSubject('aggregate', { ...event, eventType: 'Advisory.>' })).toThrow(
      'eventType "Advisory.>" cannot be the end of a subject',
    );
  });
});

describe('tenant ids as subject tokens', () => {
  it.each([
    ['acme', 'acme'],
    ['eu.acme', 'eu%2Eacme'],
    ['a.b.c', 'a%2Eb%2Ec'],
    ['t-1:x', 't-1:x'],
  ])('writes %s as %s and reads it back', (tenantId, token) => {
    expect(tenantSubjectToken(tenantId)).toBe(token);
    expect(tenantOfSubjectToken(token)).toBe(tenantId);
  });

  it.each(['', ' ', 'a b', 'a\tb', '*', '>', 'a.*', 'a%b', '%2E'])('refuses %j', (tenantId) => {
    expect(() => tenantSubjectToken(tenantId)).toThrow(`tenantId "${tenantId}" cannot be a subject token`);
  });

  it('places a tenant with dots in one token of the event subject', () => {
    const subject = aggregateEventSubject('aggregate', {
      tenantId: 'eu.acme',
      aggregateType: 'Scan',
      eventType: 'Scan.Completed',
    });
    expect(subject).toBe('aggregate.eu%2Eacme.Scan.Scan.Completed');
    expect(subject.split('.')).toHaveLength(5);
  });
});

describe('the prefix events are published under', () => {
  it('is the first {prefix}.> without wildcards', () => {
    expect(aggregatePublishPrefix(['aggregate.>'])).toBe('aggregate');
    expect(aggregatePublishPrefix(['x.y', '*.agg.>', 'eu.aggregate.>', 'other.>'])).toBe('eu.aggregate');
  });

  it('is undefined when no subject is a literal {prefix}.>', () => {
    expect(aggregatePublishPrefix(['aggregate.*', '*.agg.>', '>'])).toBeUndefined();
    expect(aggregatePublishPrefix([])).toBeUndefined();
  });
});

describe('reading an aggregate subject', () => {
  it('splits it into the decoded tenant, the aggregate type and the event type (dots included)', () => {
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate.eu%2Eacme.Scan.Scan.Completed')).toEqual({
      tenantId: 'eu.acme',
      aggregateType: 'Scan',
      eventType: 'Scan.Completed',
    });
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate.acme.MirrorBundle.Done')).toEqual({
      tenantId: 'acme',
      aggregateType: 'MirrorBundle',
      eventType: 'Done',
    });
  });

  it('finds the prefix among several, a prefix of several tokens too, and skips filters that are not {prefix}.>', () => {
    expect(parseAggregateSubject(['other.*', 'x.>', 'eu.aggregate.>'], 'eu.aggregate.acme.Scan.Done')).toEqual({
      tenantId: 'acme',
      aggregateType: 'Scan',
      eventType: 'Done',
    });
    expect(parseAggregateSubject(['aggregate.*'], 'aggregate.acme.Scan.Done')).toBeUndefined();
  });

  it('reads back every subject aggregateEventSubject writes', () => {
    const event = { tenantId: 'a.b', aggregateType: 'Advisory', eventType: 'Advisory.Published' };
    expect(parseAggregateSubject(['agg.>'], aggregateEventSubject('agg', event))).toEqual(event);
  });

  it('answers undefined for another prefix or a subject short of a tenant, aggregate and event type', () => {
    expect(parseAggregateSubject(['aggregate.>'], 'workflow.acme.Scan.Done')).toBeUndefined();
    expect(parseAggregateSubject(['aggregate.>'], 'aggregatex.acme.Scan.Done')).toBeUndefined();
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate.acme.Scan')).toBeUndefined();
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate.acme')).toBeUndefined();
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate..Scan.Done')).toBeUndefined();
    expect(parseAggregateSubject(['aggregate.>'], 'aggregate.acme..Done')).toBeUndefined();
    expect(parseAggregateSubject([], 'aggregate.acme.Scan.Done')).toBeUndefined();
  });
});

describe('whether a stream subject captures a configured one', () => {
  it.each([
    ['aggregate.>', 'aggregate.>', true],
    ['aggregate.>', 'aggregate.*.Scan.>', true],
    ['aggregate.>', 'aggregate.x', true],
    ['>', 'anything.at.all', true],
    ['*.aggregate.>', 'eu.aggregate.>', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.*', true],
    ['a.b', 'a.b', true],
    ['aggregate.>', 'aggregate', false],
    ['aggregate.>', '>', false],
    ['eu.aggregate.>', '*.aggregate.>', false],
    ['a.*', 'a.>', false],
    ['a.b', 'a.*', false],
    ['a.b', 'a.c', false],
    ['a.b', 'a.b.c', false],
    ['a.b.c', 'a.b', false],
    ['aggregate.>', 'workflow.>', false],
  ])('%s captures %s: %s', (filter, subject, expected) => {
    expect(subjectCovers(filter, subject)).toBe(expected);
  });
});
