/** Starting, reading and cancelling policy simulations in Temporal. */
import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  cancelSimulationUpdate,
  getSimulationStatusQuery,
  POLICY_SIMULATION_TASK_QUEUE,
  POLICY_SIMULATION_WORKFLOW_TYPE,
  policySimulationWorkflowId,
  SimulationFailure,
  type PolicyRunStatus,
  type PolicySimulationInput,
} from '../../workflows/policy-simulation/definitions.js';
import { queuedStatus } from '../../workflows/policy-simulation/state.js';
import type { policySimulationWorkflow } from '../../workflows/policy-simulation/workflow.js';
import { POLICY_ID, POLICY_RUN_ID, TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { badRequest, conflict, notFound } from '../errors.js';
import type { StartSimulationBody } from '../schemas/policy-simulations.js';
import type { TemporalFacade } from './facade.js';

/** Run id for a request: derived from the Idempotency-Key (same key → same run), random otherwise. */
export function simulationRunId(tenantId: string, idempotencyKey: string | undefined): string {
  if (!idempotencyKey) return `sim-${randomUUID()}`;
  return `sim-${createHash('sha256').update(`${tenantId}\n${idempotencyKey}`).digest('hex').slice(0, 32)}`;
}

/** Hash of what a request asked for, to tell a retry from a different request reusing a key. */
export function requestHash(body: StartSimulationBody): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

/** Workflow options shared by API starts and schedules. */
export function simulationStartOptions(input: PolicySimulationInput, workflowId: string, taskQueue: string) {
  return {
    workflowId,
    taskQueue,
    args: [input] as [PolicySimulationInput],
    typedSearchAttributes: [
      { key: TENANT_ID, value: input.tenantId },
      { key: POLICY_ID, value: input.policyId },
      ...(input.runId ? [{ key: POLICY_RUN_ID, value: input.runId }] : []),
    ],
    staticSummary: `Simulate ${input.policyId} v${input.policyVersion} over ${input.inputs.sbomSet.length} SBOM(s)`,
  };
}

/** Starts a simulation; a retry with the same key returns the existing run (`created: false`). */
export async function startSimulation(
  temporal: TemporalFacade,
  options: {
    tenantId: string;
    body: StartSimulationBody;
    idempotencyKey?: string;
    requestedBy: string;
    evaluationTimeoutSeconds: number;
    taskQueuePrefix?: string;
  },
): Promise<{ created: boolean; doc: PolicyRunStatus }> {
  const { tenantId, body } = options;
  const runId = simulationRunId(tenantId, options.idempotencyKey);
  const workflowId = policySimulationWorkflowId(tenantId, runId);
  const hash = requestHash(body);
  // Accepted now: the answer and the workflow's document carry the same queuedAt without another round trip.
  const queuedAt = new Date().toISOString();
  const input: PolicySimulationInput = {
    tenantId,
    runId,
    policyId: body.policyId,
    policyVersion: body.policyVersion,
    inputs: body.inputs,
    priority: body.priority ?? 'normal',
    metadata: body.metadata ?? {},
    requestedBy: options.requestedBy,
    evaluationTimeoutSeconds: options.evaluationTimeoutSeconds,
    queuedAt,
  };
  try {
    await temporal.withDeadline(() =>
      temporal.client.workflow.start<typeof policySimulationWorkflow>(POLICY_SIMULATION_WORKFLOW_TYPE, {
        ...simulationStartOptions(input, workflowId, `${options.taskQueuePrefix ?? ''}${POLICY_SIMULATION_TASK_QUEUE}`),
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        memo: { requestHash: hash },
      }),
    );
    return { created: true, doc: queuedStatus(input, { runId, workflowId }, queuedAt) };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    const handle = temporal.client.workflow.getHandle(workflowId);
    const description = await temporal.withDeadline(() => handle.describe());
    if (description.memo?.requestHash !== hash) {
      throw conflict('This Idempotency-Key was already used for a different simulation request');
    }
    return { created: false, doc: await querySimulation(temporal, tenantId, runId) };
  }
}

/** The workflow's own view of a run (used while the projection has not caught up). */
export async function querySimulation(
  temporal: TemporalFacade,
  tenantId: string,
  runId: string,
): Promise<PolicyRunStatus> {
  const handle = temporal.client.workflow.getHandle(policySimulationWorkflowId(tenantId, runId));
  try {
    return await temporal.withDeadline(() => handle.query(getSimulationStatusQuery));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notFound(`Simulation ${runId} not found`);
    throw error;
  }
}

/**
 * Cancels a run through the workflow's update and returns the terminal document.
 * 404 for an unknown run, 409 when it already finished.
 */
export async function cancelSimulation(
  temporal: TemporalFacade,
  options: { tenantId: string; runId: string; reason: string; requestedBy: string },
): Promise<PolicyRunStatus> {
  const handle = temporal.client.workflow.getHandle(policySimulationWorkflowId(options.tenantId, options.runId));
  try {
    return await temporal.withDeadline(
      () =>
        handle.executeUpdate(cancelSimulationUpdate, {
          args: [{ reason: options.reason, requestedBy: options.requestedBy }],
        }),
      30_000,
    );
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      // The server answers "not found" for updates to a closed execution too: tell the two apart.
      const closed = await temporal.withDeadline(() => handle.describe()).catch(() => undefined);
      if (closed) throw conflict(`Simulation ${options.runId} has already finished`);
      throw notFound(`Simulation ${options.runId} not found`);
    }
    if (error instanceof WorkflowUpdateFailedError) {
      const cause = error.cause;
      if (cause instanceof ApplicationFailure && cause.type === SimulationFailure.AlreadyTerminal)
        throw conflict(cause.message);
      throw badRequest(cause?.message ?? error.message, 'InvalidCancellation');
    }
    throw error;
  }
}

/** The policy-simulation capability's calls to Temporal, bound to its task queue and evaluation timeout. */
export interface PolicySimulationTemporal {
  /** {@link startSimulation} with the bound settings. */
  start(options: {
    tenantId: string;
    body: StartSimulationBody;
    idempotencyKey?: string;
    requestedBy: string;
  }): Promise<{ created: boolean; doc: PolicyRunStatus }>;
  /** {@link querySimulation}. */
  query(tenantId: string, runId: string): Promise<PolicyRunStatus>;
  /** {@link cancelSimulation}. */
  cancel(options: { tenantId: string; runId: string; reason: string; requestedBy: string }): Promise<PolicyRunStatus>;
}

/** Binds the simulation calls to `temporal` and `settings` once, for all routes of the capability. */
export function createPolicySimulationTemporal(
  temporal: TemporalFacade,
  settings: { taskQueuePrefix: string; evaluationTimeoutSeconds: number },
): PolicySimulationTemporal {
  return {
    start: (options) => startSimulation(temporal, { ...options, ...settings }),
    query: (tenantId, runId) => querySimulation(temporal, tenantId, runId),
    cancel: (options) => cancelSimulation(temporal, options),
  };
}
