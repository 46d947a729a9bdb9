/**
 * Saga test data: aggregate events of the two sample sagas, the projection writes of their instances, and the saga
 * API's documents of a rescan instance.
 */
import { randomUUID } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import type { SagaDetail, SagaInstanceDoc } from '../../api/schemas/sagas.js';
import type { RescanState } from '../../workflows/advisory-impact-rescan/state.js';
import { sagaWorkflowId, type AggregateEvent, type SagaProgress } from '../../workflows/sagas/definitions.js';

/** The sample sagas' names, spelled out: a saga renamed by mistake fails the tests that name it. */
export const RESCAN_SAGA = 'advisory-impact-rescan';
export const MIRROR_SAGA = 'mirror-bundle-export';
/** HTTP/2 rapid reset: the sample advisory that impacts three images of the bundled data, in the index's order. */
export const RAPID_RESET = 'CVE-2023-44487';
export const RAPID_RESET_IMAGES: readonly string[] = ['payments-api:3.8.2', 'auth-service:2.1.0', 'edge-gateway:1.9.0'];
/** The steps of a mirror bundle export, in the order the saga runs them. */
export const MIRROR_STEPS: readonly string[] = ['reserve-quota', 'export-bundle', 'sign-bundle', 'publish-bundle'];

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
  const { sagaName = RESCAN_SAGA, correlationId = 'adv-1' } = overrides;
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

/** An advisory rescan instance as the saga API answers it, its state read as the rescan's (as far as it got). */
export type RescanInstanceDoc = Omit<Static<typeof SagaInstanceDoc>, 'state'> & { state: Partial<RescanState> };

/** `GET /api/v1/sagas/advisory-impact-rescan/{correlationId}`: the instance, its timeline and its compensations. */
export type RescanDetail = Omit<Static<typeof SagaDetail>, 'instance'> & { instance: RescanInstanceDoc };
