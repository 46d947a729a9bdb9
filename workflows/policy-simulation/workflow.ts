import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PolicySimulationActivities } from '../../activities/policy-simulation/index.js';
import { databaseWrite, HEARTBEAT_TIMEOUT, outboundCall } from '../shared/activity-options.js';
import { failureMessage, FailureType, isFailureOfType } from '../shared/failures.js';
import { POLICY_RUN_ID } from '../shared/search-attributes.js';
import {
  cancelSimulationUpdate,
  getSimulationStatusQuery,
  SimulationFailure,
  type PolicyRunStatus,
  type PolicySimulationInput,
} from './definitions.js';
import {
  cancellationRequestedStatus,
  cancelledStatus,
  failedStatus,
  invalidInputReason,
  isTerminalStatus,
  queuedStatus,
  Revision,
  runningStatus,
  storableStatus,
  succeededStatus,
} from './state.js';

const DEFAULT_EVALUATION_TIMEOUT_SECONDS = 15 * 60;

const { recordPolicyRunStatus, markPolicyRunRunning } = proxyActivities<PolicySimulationActivities>(databaseWrite);
const { notifySimulationCompleted } = proxyActivities<PolicySimulationActivities>({
  ...outboundCall,
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

function evaluationActivity(timeoutSeconds: number) {
  return proxyActivities<PolicySimulationActivities>({
    startToCloseTimeout: `${timeoutSeconds} seconds`,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [SimulationFailure.EngineRejected],
    },
  }).evaluatePolicySimulation;
}

/** Attempt number an evaluation failure reports in its details, if any. */
function failedAttempts(error: unknown): number | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  const details =
    cause instanceof ApplicationFailure ? (cause.details?.[0] as { attempt?: unknown } | undefined) : undefined;
  return typeof details?.attempt === 'number' ? details.attempt : undefined;
}

/**
 * One policy simulation run: evaluates `policyId@policyVersion` over `inputs.sbomSet` through the Policy Engine.
 *
 * - Status: `queued` until the evaluation activity starts, `running` then, ending `succeeded`, `failed` or
 *   `cancelled`; every transition is projected to Postgres (idempotent, revisioned).
 * - Query `getSimulationStatus`; Update `cancelSimulation` (rejected once terminal; answers with the terminal
 *   document).
 * - Timer: the whole evaluation is bounded by `evaluationTimeoutSeconds` (default 15 min) → `failed`.
 * - Engine 4xx fails the run at once; 5xx, timeouts and network errors are retried (5 attempts).
 * - On every terminal state the completion webhook is sent; its failure never fails the run.
 * - Data Postgres refuses (`DataRejected`, e.g. a NUL character in metadata) fails the run at once; its terminal
 *   document is then stored without what was refused (`storableStatus`) and the webhook still goes out.
 * - Crash recovery: activity timeouts and heartbeats (workflows/shared/activity-options.ts) bound it to seconds.
 * - Idempotency: the workflow id `policy-simulation/{tenant}/{runId}` is the business key.
 */
export async function policySimulationWorkflow(input: PolicySimulationInput): Promise<PolicyRunStatus> {
  const info = workflowInfo();
  const runId = input.runId ?? info.workflowId.split('/').pop()!;
  // Runs started by a schedule learn their id here; make them findable by it in the Web UI too.
  if (!input.runId) upsertSearchAttributes([{ key: POLICY_RUN_ID, value: runId }]);
  let doc = queuedStatus(input, { runId, workflowId: info.workflowId }, input.queuedAt ?? info.startTime.toISOString());
  setHandler(getSimulationStatusQuery, () => doc);

  const evaluation = new CancellationScope();
  setHandler(
    cancelSimulationUpdate,
    async ({ reason }) => {
      doc = cancellationRequestedStatus(doc, reason);
      evaluation.cancel();
      await condition(() => isTerminalStatus(doc.status));
      return doc;
    },
    {
      validator: ({ reason }) => {
        if (isTerminalStatus(doc.status)) {
          throw ApplicationFailure.nonRetryable(
            `Simulation ${runId} is already ${doc.status}`,
            SimulationFailure.AlreadyTerminal,
          );
        }
        if (typeof reason !== 'string' || reason.trim() === '') {
          throw ApplicationFailure.nonRetryable('reason is required', FailureType.InvalidInput);
        }
      },
    },
  );

  const timeoutSeconds = input.evaluationTimeoutSeconds ?? DEFAULT_EVALUATION_TIMEOUT_SECONDS;
  const evaluate = evaluationActivity(timeoutSeconds);
  let timedOut = false;
  const deadline = new CancellationScope();
  deadline
    .run(async () => {
      await sleep(timeoutSeconds * 1000);
      timedOut = true;
      evaluation.cancel();
    })
    .catch(() => undefined); // cancelled once the evaluation is over
  try {
    await evaluation.run(async () => {
      await recordPolicyRunStatus({
        doc,
        revision: Revision.queued,
        ...(input.requestedBy ? { actor: input.requestedBy } : {}),
      });
      const invalid = invalidInputReason(input);
      if (invalid)
        throw ApplicationFailure.nonRetryable(`Invalid simulation input: ${invalid}`, FailureType.InvalidInput);
      const { startedAt } = await markPolicyRunRunning({ doc });
      doc = runningStatus(doc, startedAt, 1);
      const outcome = await evaluate({ doc });
      doc = succeededStatus(doc, outcome, new Date().toISOString());
    });
  } catch (error) {
    const now = new Date().toISOString();
    if (timedOut) doc = failedStatus(doc, `Policy evaluation timed out after ${timeoutSeconds} s`, now);
    else if (isCancellation(error))
      doc = cancelledStatus(doc, doc.cancellationReason ?? 'Cancelled through Temporal', now);
    else doc = failedStatus(doc, failureMessage(error), now, failedAttempts(error));
  } finally {
    deadline.cancel();
  }

  // Finish the bookkeeping even if the workflow itself is being cancelled.
  await CancellationScope.nonCancellable(async () => {
    try {
      await recordPolicyRunStatus({ doc, revision: Revision.terminal });
    } catch (error) {
      if (!isFailureOfType(error, FailureType.DataRejected)) throw error;
      // Postgres refuses something this run carries (e.g. a NUL in its metadata): record the failure without it.
      doc = storableStatus(doc, failureMessage(error), new Date().toISOString());
      await recordPolicyRunStatus({ doc, revision: Revision.terminal });
    }
    try {
      await notifySimulationCompleted({ doc });
    } catch (error) {
      log.warn(`Policy run job ${runId} completion webhook not delivered`, { error: failureMessage(error) });
    }
  });
  await condition(allHandlersFinished);
  return doc;
}
