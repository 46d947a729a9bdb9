import { log } from '@temporalio/workflow';
import type { SagaInput, SagaView } from '../sagas/definitions.js';
import { runSaga } from '../sagas/toolkit.js';
import { advisoryImpactRescan, RESOLVE_IMPACT_EFFECT } from './definitions.js';
import {
  findingsOf,
  impactedImages,
  initialRescanState,
  outstandingImages,
  summarize,
  timingOf,
  withRescan,
  type RescanState,
} from './state.js';

/**
 * Advisory impact rescan, one instance per advisory (correlation id: the advisory id unless the publisher sets one).
 *
 * - Starts on `Advisory.Published`; receives `Scan.Completed` (signal `sagaEvent`, deduplicated by eventId).
 * - Effect `impact-index.resolve` resolves the impacted images; the impact snapshot is kept in the state.
 * - One `RequestRescan` Gateway command per image (command id from the workflow id and the image), each compensated
 *   by `CancelRescan` while its scan is outstanding; an aggregate's refusal marks the image `rejected`.
 * - Timers: a reminder (`rescanReminderSeconds`, default 1 h) and a deadline (`rescanDeadlineSeconds`, default
 *   6 h) from the start. On the deadline the outstanding rescans are cancelled (compensation) and the partial summary
 *   recorded: status `compensated` (or `compensation_failed`).
 * - Ends `completed` with the run summary once every requested scan completed; `failed` when the impact index
 *   refused or failed.
 */
export async function advisoryImpactRescanWorkflow(input: SagaInput): Promise<SagaView> {
  return runSaga<RescanState>(
    {
      definition: advisoryImpactRescan,
      initialState: initialRescanState,
      async run(saga) {
        const { advisoryId } = saga.state;
        const timing = timingOf(saga.startEvent.payload);
        const impact = await saga.effect('resolve-impact', RESOLVE_IMPACT_EFFECT, {
          advisoryId,
          ...(saga.startEvent.payload['packages'] ? { packages: saga.startEvent.payload['packages'] } : {}),
        });
        if (impact.resultType !== 'succeeded') {
          saga.setState({ ...saga.state, phase: 'failed' });
          saga.abort(
            `The impact index ${impact.resultType === 'rejected' ? 'refused' : 'failed'} advisory ${advisoryId}`,
          );
        }
        const images = impactedImages(impact);
        saga.setState({
          ...saga.state,
          phase: 'rescanning',
          images,
          snapshot: { resolvedAt: impact.timestamp, imageCount: images.length },
        });

        for (const { imageId, digest } of images) {
          const step = `rescan:${imageId}`;
          const answer = await saga.command(
            step,
            {
              aggregateType: 'Scan',
              aggregateId: imageId,
              commandType: 'RequestRescan',
              payload: { imageId, advisoryId, ...(digest ? { digest } : {}) },
            },
            {
              // A scan that ended meanwhile has nothing left to cancel.
              compensate: () => ({
                kind: 'command',
                command: {
                  aggregateType: 'Scan',
                  aggregateId: imageId,
                  commandType: 'CancelRescan',
                  payload: { imageId, advisoryId },
                },
                rejectionMeansUndone: true,
              }),
            },
          );
          saga.setState(withRescan(saga.state, imageId, answer.outcome === 'accepted' ? 'requested' : 'rejected'));
        }

        const reminderAt = saga.startedAtMs + timing.reminderSeconds * 1000;
        const deadlineAt = saga.startedAtMs + timing.deadlineSeconds * 1000;
        for (let wait = 0; outstandingImages(saga.state).length > 0; wait++) {
          const outstanding = new Set(outstandingImages(saga.state));
          const reminderDue = saga.state.remindedAt === null && reminderAt < deadlineAt;
          const completed = await saga.waitFor(
            `scan-completed:${wait}`,
            (event) => event.eventType === 'Scan.Completed' && outstanding.has(event.aggregateId),
            {
              until: reminderDue ? reminderAt : deadlineAt,
              description: `Scan.Completed of ${outstanding.size} image(s)`,
            },
          );
          if (completed) {
            saga.settle(`rescan:${completed.aggregateId}`);
            saga.setState(withRescan(saga.state, completed.aggregateId, 'completed', findingsOf(completed)));
          } else if (reminderDue) {
            log.info('rescans outstanding at the reminder', { advisoryId, outstanding: outstanding.size });
            saga.setState({ ...saga.state, remindedAt: new Date(reminderAt).toISOString() });
          } else {
            saga.setState({ ...saga.state, phase: 'deadline-passed', summary: summarize(saga.state) });
            saga.abort(
              `Deadline passed with ${outstanding.size} of ${saga.state.images.length} rescans outstanding; cancelling them`,
            );
          }
        }
        saga.setState({ ...saga.state, phase: 'completed', summary: summarize(saga.state) });
      },
    },
    input,
  );
}
