import type { EffectResult, SagaInput, SagaView } from '../sagas/definitions.js';
import { runSaga, type Saga } from '../sagas/toolkit.js';
import { MirrorEffect, mirrorBundleExport } from './definitions.js';
import { initialExportState, withStep, type ExportState, type ExportStep } from './state.js';

/**
 * Offline mirror bundle export, one instance per bundle (correlation id: the bundle id unless the publisher sets
 * one).
 *
 * - Starts on `MirrorBundle.ExportRequested` (payload: `sizeBytes?`, `mirror?`).
 * - Steps, each an effect with a command id from the workflow id and the step: reserve storage quota → export the
 *   bundle → sign it → publish it to the mirror.
 * - A refused or failed step compensates the completed ones in reverse order (revoke the signature, delete the
 *   export, release the quota): status `compensated`, or `compensation_failed` when a compensation still fails
 *   after its retries (the others still run). Cancel (Update `cancelSaga`) compensates the same way.
 * - Ends `completed` with the publication in the state.
 */
export async function mirrorBundleExportWorkflow(input: SagaInput): Promise<SagaView> {
  return runSaga<ExportState>(
    {
      definition: mirrorBundleExport,
      initialState: initialExportState,
      async run(saga) {
        const { bundleId } = saga.state;
        const { sizeBytes, mirror } = saga.startEvent.payload;
        const step = async (
          name: ExportStep,
          effectName: string,
          payload: Record<string, unknown>,
          undo?: string,
        ): Promise<EffectResult['payload']> => {
          const result = await runStep(saga, name, effectName, { bundleId, ...payload }, undo);
          saga.setState(withStep(saga.state, name, result));
          if (result.resultType !== 'succeeded') saga.abort(`Step ${name} ${result.resultType}: ${messageOf(result)}`);
          return result.payload;
        };
        const quota = await step(
          'reserve-quota',
          MirrorEffect.ReserveQuota,
          typeof sizeBytes === 'number' ? { sizeBytes } : {},
          MirrorEffect.ReleaseQuota,
        );
        const exported = await step(
          'export-bundle',
          MirrorEffect.ExportBundle,
          { reservationId: quota['reservationId'] },
          MirrorEffect.DeleteExport,
        );
        await step(
          'sign-bundle',
          MirrorEffect.SignBundle,
          { digest: exported['digest'] },
          MirrorEffect.RevokeSignature,
        );
        await step('publish-bundle', MirrorEffect.PublishBundle, typeof mirror === 'string' ? { mirror } : {});
        saga.setState({ ...saga.state, phase: 'published' });
      },
    },
    input,
  );
}

/** One step: the effect, compensated (by bundle id) with `undo` once it succeeded. */
function runStep(
  saga: Saga<ExportState>,
  name: ExportStep,
  effectName: string,
  payload: Record<string, unknown>,
  undo: string | undefined,
): Promise<EffectResult> {
  return saga.effect(name, effectName, payload, {
    compensate: () =>
      undo ? { kind: 'effect', effectName: undo, payload: { bundleId: saga.state.bundleId } } : undefined,
  });
}

function messageOf(result: EffectResult): string {
  const message = result.payload['message'] ?? result.payload['error'];
  return typeof message === 'string' ? message : JSON.stringify(result.payload);
}
