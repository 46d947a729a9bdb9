import { readFileSync } from 'node:fs';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import {
  bodyToPost,
  DEFAULT_SAGA_EVENT_FILE,
  parseSagaEventArgs,
  SagaEventUsageError,
  withFreshIds,
} from '../../scripts/saga-event.js';
import { ID_PATTERN } from '../../workflows/shared/schemas.js';
import { AggregateEvent } from '../../workflows/sagas/definitions.js';
import { routeEvent } from '../../workflows/sagas/routing.js';
import { SAGAS } from '../../workflows/sagas/registry.js';

// TypeBox's Value checker knows no formats by itself; the API validates them with ajv-formats.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const SAMPLES = ['samples/sagas/advisory-published.json', 'samples/sagas/mirror-bundle-export-requested.json'];
const load = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const advisory = load('samples/sagas/advisory-published.json');
const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('npm run saga-event: arguments', () => {
  it('posts the advisory sample as it is by default', () => {
    expect(parseSagaEventArgs([])).toEqual({
      file: DEFAULT_SAGA_EVENT_FILE,
      fresh: false,
      aggregateId: undefined,
      api: undefined,
      token: undefined,
    });
  });

  it('reads the file, --fresh, --aggregate-id, --api (without its trailing slash) and --token', () => {
    expect(
      parseSagaEventArgs([
        'samples/sagas/mirror-bundle-export-requested.json',
        '--fresh',
        '--aggregate-id',
        'bundle-2',
        '--api',
        'http://127.0.0.1:4000/',
        '--token',
        'eyJ.t',
      ]),
    ).toEqual({
      file: 'samples/sagas/mirror-bundle-export-requested.json',
      fresh: true,
      aggregateId: 'bundle-2',
      api: 'http://127.0.0.1:4000',
      token: 'eyJ.t',
    });
  });

  it('refuses unknown options, two files and an API that is not a URL, with the usage line', () => {
    for (const argv of [['--frsh'], ['a.json', 'b.json'], ['--api', '127.0.0.1:3000'], ['--token']]) {
      let error: unknown;
      try {
        parseSagaEventArgs(argv);
      } catch (e) {
        error = e;
      }
      expect(error, argv.join(' ')).toBeInstanceOf(SagaEventUsageError);
      expect((error as Error).message).toContain('usage: npm run saga-event --');
    }
  });
});

describe('npm run saga-event: events', () => {
  it('ships samples the ingress accepts and routes to a saga that they start', () => {
    for (const file of SAMPLES) {
      const event = load(file);
      expect(Value.Check(AggregateEvent, event), file).toBe(true);
      const { routes, problems } = routeEvent(event as AggregateEvent, SAGAS);
      expect(problems, file).toEqual([]);
      expect(routes.map((r) => r.starts)).toEqual([true]);
    }
  });

  it('posts a sample as it is without --fresh', () => {
    expect(bodyToPost(advisory, { fresh: false, aggregateId: undefined })).toEqual({
      body: advisory,
      tenantId: 'local',
    });
  });

  it('gives a fresh event new ids and the time of the post, and so a saga instance of its own', () => {
    const first = withFreshIds(advisory, NOW);
    const second = withFreshIds(advisory, NOW);
    for (const fresh of [first, second]) {
      expect(fresh.eventId).not.toBe(advisory.eventId);
      expect(fresh.occurredAt).toBe('2026-03-01T12:00:00.000Z');
      expect(fresh.correlationId).toMatch(/^CVE-2023-44487\.[0-9a-f]{8}$/);
      expect(fresh.correlationId).toMatch(new RegExp(ID_PATTERN));
      expect(Value.Check(AggregateEvent, fresh)).toBe(true);
      // Everything else stays: the advisory, its payload and its trace context.
      expect(fresh).toMatchObject({ aggregateId: 'CVE-2023-44487', payload: advisory.payload, sequence: 1 });
    }
    expect(first.eventId).not.toBe(second.eventId);
    expect(first.correlationId).not.toBe(second.correlationId);
    const [one, two] = [first, second].map((e) => routeEvent(e as AggregateEvent, SAGAS).routes[0]!.workflowId);
    expect(one).not.toBe(two);
  });

  it('keeps a fresh correlation id short enough however often an event is refreshed', () => {
    let event: Record<string, unknown> = { ...advisory, correlationId: 'c'.repeat(128) };
    for (let i = 0; i < 3; i++) event = withFreshIds(event, NOW);
    expect(String(event.correlationId)).toMatch(new RegExp(ID_PATTERN));
    expect(String(event.correlationId)).toMatch(/^c+\.[0-9a-f]{8}$/);
    const refreshed = withFreshIds(withFreshIds(advisory, NOW), NOW);
    expect(refreshed.correlationId).toMatch(/^CVE-2023-44487\.[0-9a-f]{8}$/);
  });

  it('drops an old correlation id from the metadata of a fresh event', () => {
    const fresh = withFreshIds({ ...advisory, metadata: { correlationId: 'old', causationId: 'cmd-1' } }, NOW);
    expect(fresh.metadata).toEqual({ causationId: 'cmd-1' });
  });

  it('moves the event to another aggregate with --aggregate-id', () => {
    const { body } = bodyToPost(load(SAMPLES[1]!), { fresh: true, aggregateId: 'bundle-2025-07' }, NOW);
    expect(body).toMatchObject({ aggregateId: 'bundle-2025-07', eventType: 'MirrorBundle.ExportRequested' });
    expect(body.correlationId).toMatch(/^bundle-2025-07\.[0-9a-f]{8}$/);
  });

  it('posts a batch as { events } for an array or an { events } file, one fresh correlation id for all', () => {
    const completed = { ...advisory, eventId: 'evt-2', eventType: 'Advisory.Updated', sequence: 2 };
    for (const file of [[advisory, completed], { events: [advisory, completed] }]) {
      const { body, tenantId } = bodyToPost(file, { fresh: true, aggregateId: undefined }, NOW);
      const events = body.events as Record<string, unknown>[];
      expect(events).toHaveLength(2);
      expect(tenantId).toBe('local');
      expect(new Set(events.map((e) => e.eventId)).size).toBe(2);
      expect(events[1]!.correlationId).toBe(events[0]!.correlationId);
      expect(events.map((e) => e.sequence)).toEqual([1, 2]);
    }
  });

  it('refuses files that hold no event, or events of several tenants', () => {
    for (const loaded of [[], 'text', [advisory, 'x'], { events: [] }, [advisory, { ...advisory, tenantId: 'acme' }]]) {
      expect(() => bodyToPost(loaded, { fresh: false, aggregateId: undefined }), JSON.stringify(loaded)).toThrow(
        SagaEventUsageError,
      );
    }
    expect(() => bodyToPost({ ...advisory, tenantId: undefined }, { fresh: false, aggregateId: undefined })).toThrow(
      /same tenantId/,
    );
  });
});
