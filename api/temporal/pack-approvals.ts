/** Signalling events into, and deciding, pack-approval workflows. */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  ackApprovalUpdate,
  ApprovalFailure,
  getApprovalQuery,
  PACK_APPROVAL_TASK_QUEUE,
  PACK_APPROVAL_WORKFLOW_TYPE,
  packApprovalEventSignal,
  packApprovalWorkflowId,
  type AckApprovalArgs,
  type AckResult,
  type PackApprovalEvent,
  type PackApprovalInput,
} from '../../workflows/pack-approval/definitions.js';
import type { packApprovalWorkflow } from '../../workflows/pack-approval/workflow.js';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { conflict, forbidden, notFound } from '../errors.js';
import type { TemporalFacade } from './facade.js';

/** Settings of every pack-approval workflow this API starts. */
export type PackApprovalSettings = Omit<PackApprovalInput, 'tenantId' | 'runId' | 'approvalId'> & {
  /** Prefix of the task queue name (tests isolate runs with it). */
  taskQueuePrefix: string;
};

/** The pack-approval capability's calls to Temporal, bound to its settings and task queue. */
export interface PackApprovalTemporal {
  /**
   * Delivers an accepted event with signalWithStart (starting the workflow on the first event). Does not need a
   * worker: Temporal holds the signal until one runs. Answers the workflow id.
   * @throws 409 when the approval's workflow has already finished.
   */
  signalEvent(event: PackApprovalEvent): Promise<string>;
  /**
   * Records a decision through the workflow's Update. A repeat of the same decision answers the original result
   * (`repeated: true`), also after the workflow finished.
   * @throws 404 unknown approval, 403 grants missing, 409 decided differently or no longer pending.
   */
  ack(ids: ApprovalIds, args: AckApprovalArgs): Promise<AckResult>;
}

/** Identifies one approval. */
export interface ApprovalIds {
  tenantId: string;
  runId: string;
  approvalId: string;
}

/** Binds the pack-approval calls to `temporal` and `settings` once, for all routes of the capability. */
export function createPackApprovalTemporal(
  temporal: TemporalFacade,
  settings: PackApprovalSettings,
): PackApprovalTemporal {
  return {
    signalEvent: (event) => signalApprovalEvent(temporal, event, settings),
    ack: (ids, args) => ackApproval(temporal, ids, args),
  };
}

async function signalApprovalEvent(
  temporal: TemporalFacade,
  event: PackApprovalEvent,
  settings: PackApprovalSettings,
): Promise<string> {
  const workflowId = packApprovalWorkflowId(event.tenantId, event.runId, event.approvalId);
  const { taskQueuePrefix, ...rest } = settings;
  try {
    await temporal.withDeadline(() =>
      temporal.client.workflow.signalWithStart<typeof packApprovalWorkflow, [PackApprovalEvent]>(
        PACK_APPROVAL_WORKFLOW_TYPE,
        {
          workflowId,
          taskQueue: `${taskQueuePrefix}${PACK_APPROVAL_TASK_QUEUE}`,
          args: [{ tenantId: event.tenantId, runId: event.runId, approvalId: event.approvalId, ...rest }],
          signal: packApprovalEventSignal,
          signalArgs: [event],
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [{ key: TENANT_ID, value: event.tenantId }],
          staticSummary: `${event.kind === 'pack.policy.gate' ? 'Policy gate' : 'Approval'} ${event.approvalId} of run ${event.runId}`,
        },
      ),
    );
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw conflict(
        `Approval ${event.runId}/${event.approvalId} has already finished; no further events are accepted`,
      );
    }
    throw error;
  }
  return workflowId;
}

async function ackApproval(temporal: TemporalFacade, ids: ApprovalIds, args: AckApprovalArgs): Promise<AckResult> {
  const handle = temporal.client.workflow.getHandle(packApprovalWorkflowId(ids.tenantId, ids.runId, ids.approvalId));
  const label = `${ids.runId}/${ids.approvalId}`;
  try {
    return await temporal.withDeadline(() => handle.executeUpdate(ackApprovalUpdate, { args: [args] }), 30_000);
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
      const { type, message } = error.cause;
      if (type === ApprovalFailure.NotRequested) throw notFound(`Approval ${label} not found`);
      if (type === ApprovalFailure.GrantsMissing) throw forbidden(message);
      throw conflict(message);
    }
    if (!(error instanceof WorkflowNotFoundError)) throw error;
    // Unknown, or already finished: a finished approval still answers a repeat of its own decision.
    const description = await temporal.withDeadline(() => handle.describe()).catch(() => undefined);
    if (!description) throw notFound(`Approval ${label} not found`);
    const view = await temporal.withDeadline(() => handle.query(getApprovalQuery));
    if (view.decision?.decision === args.decision) return { ...view.decision, repeated: true };
    throw conflict(view.decision ? `Already decided: ${view.decision.decision}` : `The approval is ${view.state}`);
  }
}
