/**
 * The one place sagas are registered. To add a saga: create `workflows/<saga-name>/definitions.ts` (a
 * `SagaDefinition`: name, workflow type, triggers, correlation, effects, summary) and `workflow.ts` (the
 * deterministic code, written with `runSaga` from `workflows/sagas/toolkit.ts`), add the definition here and
 * export the workflow from `workflows/index.ts`. Declare its effects in the effects manifest. Nothing else changes:
 * the ingress, the bridges, the worker and the API route by this list. See docs/sagas.md.
 */
import { advisoryImpactRescan } from '../advisory-impact-rescan/definitions.js';
import { mirrorBundleExport } from '../mirror-bundle-export/definitions.js';
import type { SagaDefinition } from './definitions.js';

/** Every saga the product runs. */
export const SAGAS: readonly SagaDefinition[] = [advisoryImpactRescan, mirrorBundleExport];

/** The saga named `name`, or undefined. */
export function sagaByName(name: string): SagaDefinition | undefined {
  return SAGAS.find((saga) => saga.name === name);
}
