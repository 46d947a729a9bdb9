/** Pure state of the advisory impact rescan saga (unit-tested). */
import type { AggregateEvent, EffectResult } from '../sagas/definitions.js';
import { DEFAULT_RESCAN_TIMING, type AdvisoryRescanTiming } from './definitions.js';

/** An impacted image and where its rescan stands. */
export interface ImpactedImage {
  imageId: string;
  digest: string | null;
  sbomId: string | null;
  rescan: 'pending' | 'requested' | 'completed' | 'rejected' | 'cancelled';
  findings: number | null;
}

/** The saga's state. */
export interface RescanState {
  advisoryId: string;
  phase: 'resolving' | 'rescanning' | 'completed' | 'deadline-passed' | 'failed';
  /** The impact snapshot: the images the index resolved, and when. */
  snapshot: { resolvedAt: string; imageCount: number } | null;
  images: ImpactedImage[];
  remindedAt: string | null;
  /** The run summary, once finished. */
  summary: RunSummary | null;
}

/** What a run achieved. */
export interface RunSummary {
  impacted: number;
  completed: number;
  rejected: number;
  outstanding: number;
  findings: number;
}

/** State of a run started by `start`. */
export function initialRescanState(start: AggregateEvent): RescanState {
  return {
    advisoryId: start.aggregateId,
    phase: 'resolving',
    snapshot: null,
    images: [],
    remindedAt: null,
    summary: null,
  };
}

const positiveSeconds = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 30 * 86_400 ? value : undefined;

/**
 * Timing of a run: the publisher may shorten or extend the defaults with `rescanReminderSeconds` /
 * `rescanDeadlineSeconds` in the event payload (positive integers, at most 30 days); a reminder after the deadline
 * is dropped.
 */
export function timingOf(payload: Record<string, unknown>): AdvisoryRescanTiming {
  const deadlineSeconds = positiveSeconds(payload['rescanDeadlineSeconds']) ?? DEFAULT_RESCAN_TIMING.deadlineSeconds;
  const reminderSeconds = positiveSeconds(payload['rescanReminderSeconds']) ?? DEFAULT_RESCAN_TIMING.reminderSeconds;
  return { deadlineSeconds, reminderSeconds: Math.min(reminderSeconds, deadlineSeconds) };
}

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

/**
 * The impacted images of the impact index's answer `{ images: [{ imageId, digest, sbomId }] }`, each once (entries
 * without an image id are ignored).
 */
export function impactedImages(result: EffectResult): ImpactedImage[] {
  const raw = result.payload['images'];
  const images: ImpactedImage[] = [];
  for (const entry of Array.isArray(raw) ? raw : []) {
    if (typeof entry !== 'object' || entry === null) continue;
    const fields = entry as Record<string, unknown>;
    const imageId = text(fields['imageId']);
    if (!imageId || images.some((i) => i.imageId === imageId)) continue;
    images.push({
      imageId,
      digest: text(fields['digest']),
      sbomId: text(fields['sbomId']),
      rescan: 'pending',
      findings: null,
    });
  }
  return images;
}

/** `state` with the rescan of `imageId` moved to `rescan` (and its findings, when completed). */
export function withRescan(
  state: RescanState,
  imageId: string,
  rescan: ImpactedImage['rescan'],
  findings: number | null = null,
): RescanState {
  return {
    ...state,
    images: state.images.map((image) => (image.imageId === imageId ? { ...image, rescan, findings } : image)),
  };
}

/** Images whose rescan was requested and has not completed yet. */
export function outstandingImages(state: RescanState): string[] {
  return state.images.filter((image) => image.rescan === 'requested').map((image) => image.imageId);
}

/** The number of findings a `Scan.Completed` event reports (0 when it reports none). */
export function findingsOf(event: AggregateEvent): number {
  const findings = event.payload['findings'];
  return typeof findings === 'number' && Number.isInteger(findings) && findings >= 0 ? findings : 0;
}

/** The run summary of `state`. */
export function summarize(state: RescanState): RunSummary {
  const count = (rescan: ImpactedImage['rescan']) => state.images.filter((i) => i.rescan === rescan).length;
  return {
    impacted: state.images.length,
    completed: count('completed'),
    rejected: count('rejected'),
    outstanding: count('requested'),
    findings: state.images.reduce((sum, image) => sum + (image.findings ?? 0), 0),
  };
}
