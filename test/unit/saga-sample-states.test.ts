import { describe, expect, it } from 'vitest';
import {
  findingsOf,
  impactedImages,
  initialRescanState,
  outstandingImages,
  summarize,
  timingOf,
  withRescan,
  type RescanState,
} from '../../workflows/advisory-impact-rescan/state.js';
import { initialExportState, withStep } from '../../workflows/mirror-bundle-export/state.js';
import type { EffectResult } from '../../workflows/sagas/definitions.js';
import { advisoryPublished, exportRequested, scanCompleted } from '../support/sagas.js';

const result = (
  payload: Record<string, unknown>,
  resultType: EffectResult['resultType'] = 'succeeded',
): EffectResult => ({
  tenantId: 'acme',
  commandId: 'c',
  effectName: 'impact-index.resolve',
  resultType,
  payload,
  timestamp: '2026-12-01T10:00:00.000Z',
});

describe('advisory impact rescan state', () => {
  it('starts resolving the advisory of the start event', () => {
    expect(initialRescanState(advisoryPublished('adv-7'))).toEqual({
      advisoryId: 'adv-7',
      phase: 'resolving',
      snapshot: null,
      images: [],
      remindedAt: null,
      summary: null,
    });
  });

  it('takes the timing from the payload when it is a positive integer of at most 30 days', () => {
    expect(timingOf({})).toEqual({ reminderSeconds: 3600, deadlineSeconds: 21_600 });
    expect(timingOf({ rescanReminderSeconds: 60, rescanDeadlineSeconds: 120 })).toEqual({
      reminderSeconds: 60,
      deadlineSeconds: 120,
    });
    expect(timingOf({ rescanDeadlineSeconds: 30 * 86_400 }).deadlineSeconds).toBe(2_592_000);
    for (const bad of [0, -5, 1.5, '60', 30 * 86_400 + 1, null]) {
      expect(timingOf({ rescanReminderSeconds: bad, rescanDeadlineSeconds: bad })).toEqual({
        reminderSeconds: 3600,
        deadlineSeconds: 21_600,
      });
    }
  });

  it('drops a reminder that would come after the deadline', () => {
    expect(timingOf({ rescanReminderSeconds: 500, rescanDeadlineSeconds: 100 })).toEqual({
      reminderSeconds: 100,
      deadlineSeconds: 100,
    });
  });

  it('reads each impacted image once from the impact index answer', () => {
    const images = impactedImages(
      result({
        images: [
          { imageId: 'img-a', digest: 'sha256:aa', sbomId: 'sbom-a' },
          { imageId: 'img-a', digest: 'sha256:other' },
          { imageId: 'img-b', digest: '', sbomId: ['sbom-b'] },
          { digest: 'sha256:no-id' },
          { imageId: '' },
          'junk',
          null,
        ],
      }),
    );
    expect(images).toEqual([
      { imageId: 'img-a', digest: 'sha256:aa', sbomId: 'sbom-a', rescan: 'pending', findings: null },
      { imageId: 'img-b', digest: null, sbomId: null, rescan: 'pending', findings: null },
    ]);
    expect(impactedImages(result({ images: 'none' }))).toEqual([]);
    expect(impactedImages(result({}))).toEqual([]);
  });

  it('tracks each rescan, what is outstanding and the summary', () => {
    let state: RescanState = {
      ...initialRescanState(advisoryPublished('adv-7')),
      images: impactedImages(result({ images: [{ imageId: 'a' }, { imageId: 'b' }, { imageId: 'c' }] })),
    };
    state = withRescan(state, 'a', 'requested');
    state = withRescan(state, 'b', 'requested');
    state = withRescan(state, 'c', 'rejected');
    expect(outstandingImages(state)).toEqual(['a', 'b']);
    state = withRescan(state, 'a', 'completed', 4);
    expect(outstandingImages(state)).toEqual(['b']);
    expect(state.images.find((i) => i.imageId === 'a')).toMatchObject({ rescan: 'completed', findings: 4 });
    expect(state.images.find((i) => i.imageId === 'b')).toMatchObject({ rescan: 'requested', findings: null });
    expect(summarize(state)).toEqual({ impacted: 3, completed: 1, rejected: 1, outstanding: 1, findings: 4 });
  });

  it('reads the findings a Scan.Completed reports, 0 when there are none or they are unusable', () => {
    expect(findingsOf(scanCompleted('i', 'c', { payload: { findings: 7 } }))).toBe(7);
    expect(findingsOf(scanCompleted('i', 'c', { payload: { findings: 0 } }))).toBe(0);
    for (const bad of [-1, 2.5, '3', undefined]) {
      expect(findingsOf(scanCompleted('i', 'c', { payload: { findings: bad } }))).toBe(0);
    }
  });
});

describe('mirror bundle export state', () => {
  it('starts exporting the bundle of the start event and records each step', () => {
    const start = initialExportState(exportRequested('bundle-1'));
    expect(start).toEqual({ bundleId: 'bundle-1', phase: 'exporting', steps: {} });
    const reserved = withStep(start, 'reserve-quota', result({ reservationId: 'r1' }));
    const refused = withStep(reserved, 'export-bundle', result({ message: 'no' }, 'rejected'));
    expect(refused.steps).toEqual({
      'reserve-quota': { resultType: 'succeeded', result: { reservationId: 'r1' } },
      'export-bundle': { resultType: 'rejected', result: { message: 'no' } },
    });
    expect(start.steps).toEqual({});
  });
});
