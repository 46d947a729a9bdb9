import { describe, expect, it } from 'vitest';
import { advisoryImpactRescan } from '../../workflows/advisory-impact-rescan/definitions.js';
import { mirrorBundleExport } from '../../workflows/mirror-bundle-export/definitions.js';
import { commandIdOf, isFinalSagaStatus, SAGA_STATUSES, sagaWorkflowId } from '../../workflows/sagas/definitions.js';
import { SAGAS, sagaByName } from '../../workflows/sagas/registry.js';
import { carriedCorrelationId, routeEvent, triggerOf } from '../../workflows/sagas/routing.js';
import { advisoryPublished, aggregateEvent, exportRequested, scanCompleted } from '../support/sagas.js';

describe('saga registry', () => {
  it('registers each saga once, by unique name and workflow type, each exported by the bundle', async () => {
    const exported = Object.keys(await import('../../workflows/index.js'));
    expect(new Set(SAGAS.map((s) => s.name)).size).toBe(SAGAS.length);
    expect(new Set(SAGAS.map((s) => s.workflowType)).size).toBe(SAGAS.length);
    for (const saga of SAGAS) {
      expect(exported).toContain(saga.workflowType);
      expect(saga.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(saga.triggers.some((t) => t.starts)).toBe(true);
    }
    expect(sagaByName('mirror-bundle-export')).toBe(mirrorBundleExport);
    expect(sagaByName('nope')).toBeUndefined();
  });
});

describe('routeEvent', () => {
  it('routes a start trigger to a start (signalWithStart) of the saga, correlated by the advisory id', () => {
    const event = advisoryPublished('adv-1');
    expect(routeEvent(event, SAGAS)).toEqual({
      routes: [
        {
          sagaName: 'advisory-impact-rescan',
          workflowType: 'advisoryImpactRescanWorkflow',
          correlationId: 'adv-1',
          workflowId: 'saga/acme/advisory-impact-rescan/adv-1',
          starts: true,
        },
      ],
      problems: [],
    });
  });

  it('routes a non-start trigger by the correlation id it carries, as a signal only', () => {
    const { routes } = routeEvent(scanCompleted('img-1', 'adv-1'), SAGAS);
    expect(routes).toEqual([expect.objectContaining({ correlationId: 'adv-1', starts: false })]);
    const viaMetadata = scanCompleted('img-1', 'x', { correlationId: undefined, metadata: { correlationId: 'adv-9' } });
    expect(routeEvent(viaMetadata, SAGAS).routes[0]?.correlationId).toBe('adv-9');
  });

  it('reports a trigger whose correlation id is missing or unusable, and routes nothing for it', () => {
    const missing = routeEvent(scanCompleted('img-1', 'x', { correlationId: undefined }), SAGAS);
    expect(missing.routes).toEqual([]);
    expect(missing.problems).toEqual([
      {
        sagaName: 'advisory-impact-rescan',
        path: 'correlationId',
        message:
          'advisory-impact-rescan needs a correlation id (correlationId or metadata.correlationId) on Scan.Completed',
      },
    ]);
    const unusable = routeEvent(exportRequested('b', { correlationId: 'has/slash' as string }), SAGAS);
    expect(unusable.routes).toEqual([]);
    expect(unusable.problems[0]?.message).toMatch(/^mirror-bundle-export: the correlation id must match/);
  });

  it('routes nothing for events no saga triggers on, and matches aggregate type and event type together', () => {
    expect(routeEvent(aggregateEvent({ aggregateType: 'Advisory', eventType: 'Advisory.Withdrawn' }), SAGAS)).toEqual({
      routes: [],
      problems: [],
    });
    expect(
      routeEvent(aggregateEvent({ aggregateType: 'Scan', eventType: 'Advisory.Published' }), SAGAS).routes,
    ).toEqual([]);
    expect(triggerOf(advisoryImpactRescan, { aggregateType: 'Scan', eventType: 'Scan.Completed' })?.starts).toBe(false);
  });

  it('prefers the correlation id an event carries over the aggregate id', () => {
    expect(advisoryImpactRescan.correlate(advisoryPublished('adv-1', {}, { correlationId: 'proc-7' }))).toBe('proc-7');
    expect(mirrorBundleExport.correlate(exportRequested('bundle-1'))).toBe('bundle-1');
    expect(carriedCorrelationId(aggregateEvent({ correlationId: 'a', metadata: { correlationId: 'b' } }))).toBe('a');
  });
});

describe('saga ids', () => {
  it('builds workflow ids and deterministic command ids, new ones per generation', () => {
    expect(sagaWorkflowId('t', 's', 'c')).toBe('saga/t/s/c');
    const input = { tenantId: 't', sagaName: 's', correlationId: 'c' };
    expect(commandIdOf(input, 'rescan:img-1')).toBe('t:s:c:rescan:img-1');
    expect(commandIdOf({ ...input, generation: 0 }, 'x')).toBe('t:s:c:x');
    expect(commandIdOf({ ...input, generation: 2 }, 'x')).toBe('t:s:c~2:x');
  });

  it('knows which statuses are final', () => {
    expect(SAGA_STATUSES.filter((s) => !isFinalSagaStatus(s))).toEqual(['running', 'compensating']);
  });
});
