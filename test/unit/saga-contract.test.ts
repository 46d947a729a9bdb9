import { readFile } from 'node:fs/promises';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { contractFiles } from '../../api/schemas/contracts.js';
import { checkAggregateEvent } from '../../api/services/saga-ingress.js';
import { AggregateEvent, EffectCommand, EffectResult, GatewayCommand } from '../../workflows/sagas/definitions.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const read = async (path: string): Promise<Record<string, unknown>> =>
  JSON.parse(await readFile(new URL(`../../${path}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const errors = (schema: TSchema, value: unknown) =>
  [...Value.Errors(schema, value)].map((e) => `${e.path} ${e.message}`);

const SAMPLES = ['samples/sagas/advisory-published.json', 'samples/sagas/mirror-bundle-export-requested.json'];

describe('saga contracts', () => {
  it('publishes the saga schemas and the events-ingress fragment in docs/contracts/ (run `npm run contracts`)', async () => {
    const names = Object.keys(contractFiles());
    expect(names).toEqual(
      expect.arrayContaining([
        'aggregate-event.schema.json',
        'effect-command.schema.json',
        'effect-result.schema.json',
        'gateway-command.schema.json',
        'saga-events.openapi.json',
      ]),
    );
    for (const [name, content] of Object.entries(contractFiles())) {
      expect(await readFile(new URL(`../../docs/contracts/${name}`, import.meta.url), 'utf8'), name).toBe(content);
    }
  });

  it('points every reference of the events-ingress fragment at one of its components', async () => {
    const doc = await read('docs/contracts/saga-events.openapi.json');
    const components = Object.keys((doc['components'] as { schemas: object }).schemas);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const target of refs) expect(components.map((c) => `#/components/schemas/${c}`)).toContain(target);
  });

  it('accepts the committed sample events, by the contract and by the ingress’s own check', async () => {
    for (const path of SAMPLES) {
      const sample = await read(path);
      expect(errors(AggregateEvent, sample), path).toEqual([]);
      expect(checkAggregateEvent(sample), path).toEqual({ event: sample });
    }
  });

  it('reads events forward compatibly: unknown fields, also in metadata, are allowed and kept', async () => {
    const sample = await read(SAMPLES[0]!);
    const later = { ...sample, schemaVersion: 2, metadata: { traceparent: undefined, region: 'eu-1' } };
    delete later.metadata.traceparent;
    expect(errors(AggregateEvent, later)).toEqual([]);
    expect(checkAggregateEvent(later)).toEqual({ event: later });
  });

  it('refuses events that break the contract, naming each field', async () => {
    const sample = await read(SAMPLES[0]!);
    const { eventId: _eventId, ...withoutId } = sample;
    const cases: [unknown, string[]][] = [
      [withoutId, ['/eventId']],
      [{ ...sample, sequence: 1.5 }, ['/sequence']],
      [{ ...sample, sequence: '1' }, ['/sequence']],
      [{ ...sample, occurredAt: '2025-02-30T00:00:00Z' }, ['/occurredAt']],
      [{ ...sample, eventType: 'Advisory Published' }, ['/eventType']],
      [{ ...sample, payload: [] }, ['/payload']],
      [{ ...sample, metadata: { traceparent: 'not-a-trace' } }, ['/metadata/traceparent']],
      [{ ...sample, payload: { title: 'a\u0000b' } }, ['/payload/title']],
    ];
    for (const [event, pointers] of cases) {
      const check = checkAggregateEvent(event);
      expect('errors' in check ? check.errors.map((e) => e.pointer) : [], JSON.stringify(event)).toEqual(pointers);
    }
  });

  it('describes effect commands and results and Gateway commands as the effects queue exchanges them', () => {
    const command = {
      tenantId: 'acme',
      commandId: 'acme:advisory-impact-rescan:CVE-1:resolve-impact',
      effectName: 'impact-index.resolve',
      payload: { advisoryId: 'CVE-1' },
      metadata: { correlationId: 'CVE-1', workflowId: 'saga/acme/advisory-impact-rescan/CVE-1' },
    };
    expect(errors(EffectCommand, command)).toEqual([]);
    expect(errors(EffectCommand, { ...command, effectName: '' })).not.toEqual([]);
    const result = { ...command, resultType: 'rejected', payload: { status: 422 }, timestamp: '2026-01-01T00:00:00Z' };
    delete (result as Partial<typeof result>).metadata;
    expect(errors(EffectResult, result)).toEqual([]);
    expect(errors(EffectResult, { ...result, resultType: 'maybe' })).not.toEqual([]);
    const gateway = {
      tenantId: 'acme',
      commandId: 'acme:advisory-impact-rescan:CVE-1:rescan:img-1',
      aggregateType: 'Scan',
      aggregateId: 'img-1',
      commandType: 'RequestRescan',
      payload: {},
      correlationId: 'CVE-1',
      causationId: 'evt-1',
    };
    expect(errors(GatewayCommand, gateway)).toEqual([]);
    const { causationId: _causationId, ...uncaused } = gateway;
    expect(errors(GatewayCommand, uncaused)).not.toEqual([]);
  });
});
