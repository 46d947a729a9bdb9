/**
 * Offline mirror bundle export: reserve storage quota → export the bundle → sign it → publish it to the mirror. A
 * failure at any step compensates the completed ones in reverse order (revoke the signature, delete the export,
 * release the quota). Routing data only: the workflow is in `workflow.ts`.
 */
import type { SagaDefinition } from '../sagas/definitions.js';
import { carriedCorrelationId } from '../sagas/routing.js';

/** The effects of the saga: each step and its compensation. */
export const MirrorEffect = {
  ReserveQuota: 'mirror.reserve-quota',
  ReleaseQuota: 'mirror.release-quota',
  ExportBundle: 'mirror.export-bundle',
  DeleteExport: 'mirror.delete-export',
  SignBundle: 'mirror.sign-bundle',
  RevokeSignature: 'mirror.revoke-signature',
  PublishBundle: 'mirror.publish-bundle',
} as const;

/** The saga's routing definition. */
export const mirrorBundleExport = {
  name: 'mirror-bundle-export',
  workflowType: 'mirrorBundleExportWorkflow',
  description: 'Export, sign and publish an offline mirror bundle, undoing completed steps on failure',
  triggers: [{ aggregateType: 'MirrorBundle', eventType: 'MirrorBundle.ExportRequested', starts: true }],
  correlate: (event) => carriedCorrelationId(event) ?? event.aggregateId,
  effects: Object.values(MirrorEffect),
  summary: (event, correlationId) => `Mirror bundle export ${event.aggregateId} (${correlationId})`,
} as const satisfies SagaDefinition;
