/**
 * Advisory impact rescan: when an advisory is published, resolve the images it impacts from the impact index,
 * store an impact snapshot, request a rescan of each image through the Gateway and wait for every `Scan.Completed`
 * (a reminder, then a deadline); on the deadline the outstanding rescans are cancelled (compensation) and the
 * partial result recorded. Routing data only: the workflow is in `workflow.ts`.
 */
import type { SagaDefinition } from '../sagas/definitions.js';
import { carriedCorrelationId } from '../sagas/routing.js';

/** Effect resolving the images an advisory impacts. */
export const RESOLVE_IMPACT_EFFECT = 'impact-index.resolve';

/** The saga's routing definition. */
export const advisoryImpactRescan = {
  name: 'advisory-impact-rescan',
  workflowType: 'advisoryImpactRescanWorkflow',
  description: 'Rescan the images a newly published advisory impacts',
  triggers: [
    { aggregateType: 'Advisory', eventType: 'Advisory.Published', starts: true },
    { aggregateType: 'Scan', eventType: 'Scan.Completed', starts: false },
  ],
  // The advisory's own id, unless the publisher correlates it with a process of its own; the Gateway copies the
  // saga's correlation id into the Scan events its commands cause.
  correlate: (event) =>
    carriedCorrelationId(event) ?? (event.eventType === 'Advisory.Published' ? event.aggregateId : undefined),
  effects: [RESOLVE_IMPACT_EFFECT],
  summary: (event, correlationId) => `Impact rescan of advisory ${event.aggregateId} (${correlationId})`,
} as const satisfies SagaDefinition;

/** Timing of a run: a reminder after `reminderSeconds`, the deadline after `deadlineSeconds` (from the start). */
export interface AdvisoryRescanTiming {
  reminderSeconds: number;
  deadlineSeconds: number;
}

/** Default timing: a reminder after one hour, the deadline after six hours. */
export const DEFAULT_RESCAN_TIMING: AdvisoryRescanTiming = { reminderSeconds: 3600, deadlineSeconds: 6 * 3600 };
