/** Saga test data: aggregate events of the two sample sagas, and the projection writes of their instances. */
import { randomUUID } from 'node:crypto';
import { sagaWorkflowId, type AggregateEvent, type SagaProgress } from '../../workflows/sagas/definitions.js';

/** An aggregate event with fresh ids; `overrides` win. */
export function aggregateEvent(overrides: Partial<AggregateEvent> = {}): AggregateEvent {
  return {
    tenantId: 'acme',
    eventId: `evt-${randomUUID()}`,
    aggregateType: 'Advisory',
    aggregateId: 'adv-2026-0042',
    eventType: 'Advisory.Published',
    sequence: 1,
    occurredAt: '2026-12-01T10:00:00.000Z',
    payload: {},
    ...overrides,
  };
}

/** `Advisory.Published` of `advisoryId`. */
export function advisoryPublished(
  advisoryId: string,
  payload: Record<string, unknown> = {},
  overrides: Partial<AggregateEvent> = {},
): AggregateEvent {
  return aggregateEvent({
    aggregateType: 'Advisory',
    aggregateId: advisoryId,
    eventType: 'Advisory.Published',
    payload,
    ...overrides,
  });
}

/** `Scan.Completed` of `imageId` in the process `correlationId`. */
export function scanCompleted(
  imageId: string,
  correlationId: string,
  overrides: Partial<AggregateEvent> = {},
): AggregateEvent {
  return aggregateEvent({
    aggregateType: 'Scan',
    aggregateId: imageId,
    eventType: 'Scan.Completed',
    sequence: 2,
    correlationId,
    payload: { imageId, findings: 3 },
    ...overrides,
  });
}

/** `MirrorBundle.ExportRequested` of `bundleId`. */
export function exportRequested(bundleId: string, overrides: Partial<AggregateEvent> = {}): AggregateEvent {
  return aggregateEvent({
    aggregateType: 'MirrorBundle',
    aggregateId: bundleId,
    eventType: 'MirrorBundle.ExportRequested',
    payload: { sizeBytes: 1024 },
    ...overrides,
  });
}

/**
 * The first projection write of a running advisory rescan `adv-1` of `tenantId`, with nothing applied yet;
 * `overrides` win, and the workflow id follows the saga name and correlation id they give.
 */
export function sagaProgress(tenantId: string, overrides: Partial<SagaProgress> = {}): SagaProgress {
  const { sagaName = 'advisory-impact-rescan', correlationId = 'adv-1' } = overrides;
  return {
    tenantId,
    sagaName,
    correlationId,
    workflowId: sagaWorkflowId(tenantId, sagaName, correlationId),
    revision: 1,
    status: 'running',
    state: { images: [] },
    reason: null,
    startedAt: '2026-03-01T10:00:00.000Z',
    finishedAt: null,
    appliedEvents: 0,
    lastEvent: null,
    events: [],
    compensations: [],
    ...overrides,
  };
}
