/** Pure state of the mirror bundle export saga (unit-tested). */
import type { AggregateEvent, EffectResult } from '../sagas/definitions.js';

/** The steps, in order. */
export const EXPORT_STEPS = ['reserve-quota', 'export-bundle', 'sign-bundle', 'publish-bundle'] as const;
export type ExportStep = (typeof EXPORT_STEPS)[number];

/** The saga's state. */
export interface ExportState {
  bundleId: string;
  phase: 'exporting' | 'published';
  /** Outcome and answer of each step that ran. */
  steps: Partial<Record<ExportStep, { resultType: EffectResult['resultType']; result: Record<string, unknown> }>>;
}

/** State of an export started by `start`. */
export function initialExportState(start: AggregateEvent): ExportState {
  return { bundleId: start.aggregateId, phase: 'exporting', steps: {} };
}

/** `state` with the outcome of `step`. */
export function withStep(state: ExportState, step: ExportStep, result: EffectResult): ExportState {
  return { ...state, steps: { ...state.steps, [step]: { resultType: result.resultType, result: result.payload } } };
}
