/**
 * Policy simulations: one `policySimulationWorkflow` per run evaluates a candidate policy version over a set of
 * SBOMs through the Policy Engine and reports the verdict diff against the active policy.
 * Shared by the workflow, its activities and the API.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** Task queue of the workflow and of its evaluation activity. */
export const POLICY_SIMULATION_TASK_QUEUE = 'policy-simulation';
/** Workflow type name (the function name; never rename). */
export const POLICY_SIMULATION_WORKFLOW_TYPE = 'policySimulationWorkflow';

/** Builds the business-key workflow id `policy-simulation/{tenant}/{runId}`. */
export function policySimulationWorkflowId(tenantId: string, runId: string): string {
  return `policy-simulation/${tenantId}/${runId}`;
}

export const POLICY_RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type PolicyRunStatusValue = (typeof POLICY_RUN_STATUSES)[number];
export const TERMINAL_STATUSES: readonly PolicyRunStatusValue[] = ['succeeded', 'failed', 'cancelled'];

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What to evaluate the policy over. */
export interface SimulationInputs {
  sbomSet: string[];
  advisoryCursor?: string;
  vexCursor?: string;
  environment?: Record<string, string>;
  captureExplain?: boolean;
}

/** Counts of verdicts per outcome. */
export interface VerdictCounts {
  pass: number;
  warn: number;
  block: number;
}

/** One finding whose verdict changed between the active and the candidate policy. */
export interface VerdictChange {
  sbomId: string;
  component: string;
  advisoryId: string;
  severity: string;
  from: keyof VerdictCounts;
  to: keyof VerdictCounts;
  /** Why the candidate decided as it did (only with `captureExplain`). */
  explain?: string;
}

/** Result summary of a simulation: the verdict diff between the active policy and the candidate. */
export interface SimulationResultSummary {
  activePolicyVersion: number;
  candidatePolicyVersion: number;
  active: VerdictCounts;
  candidate: VerdictCounts;
  /** Transition counts such as `pass->block`. */
  transitions: Record<string, number>;
  changed: number;
  /** The first changes (bounded), for a human to read. */
  changes: VerdictChange[];
}

/** Counters of an evaluation. */
export interface SimulationStats {
  sboms: number;
  components: number;
  findings: number;
  durationMs: number;
}

/** The status document of a run, as the API, the SSE stream and the completion webhook publish it. */
export interface PolicyRunStatus {
  runId: string;
  tenantId: string;
  policyId: string;
  policyVersion: number;
  mode: 'simulate';
  status: PolicyRunStatusValue;
  priority: Priority;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
  inputs: SimulationInputs;
  stats: SimulationStats | null;
  result: SimulationResultSummary | null;
  error: string | null;
  cancellationRequested: boolean;
  cancellationReason: string | null;
  workflowId: string;
  metadata: Record<string, string>;
}

/** Input of `policySimulationWorkflow`. */
export interface PolicySimulationInput {
  tenantId: string;
  /** Defaults to the last segment of the workflow id (schedules start runs without one). */
  runId?: string;
  policyId: string;
  policyVersion: number;
  inputs: SimulationInputs;
  priority?: Priority;
  metadata?: Record<string, string>;
  /** Who asked (token subject or schedule id); recorded in the audit trail. */
  requestedBy?: string;
  /** Overall evaluation timeout in seconds (default 15 minutes). */
  evaluationTimeoutSeconds?: number;
  /** When the API accepted the request; defaults to the workflow's start time (schedules). */
  queuedAt?: string;
}

/** Arguments of the cancel update. */
export interface CancelSimulationArgs {
  reason: string;
  requestedBy?: string;
}

/** Query: the current status document. */
export const getSimulationStatusQuery = defineQuery<PolicyRunStatus>('getSimulationStatus');
/** Update: cancels a queued or running simulation; rejected once the run is terminal. Returns the terminal document. */
export const cancelSimulationUpdate = defineUpdate<PolicyRunStatus, [CancelSimulationArgs]>('cancelSimulation');

/** Failure types of this capability (stable strings). */
export const SimulationFailure = {
  /** The Policy Engine refused the request (4xx): retrying cannot help. */
  EngineRejected: 'PolicyEngineRejected',
  /** The run is already terminal (cancel rejected). */
  AlreadyTerminal: 'SimulationAlreadyTerminal',
} as const;

/** Payload of the completion webhook and of the SSE `completed` event. */
export interface CompletionPayload {
  tenantId: string;
  simulation: PolicyRunStatus;
  result: SimulationResultSummary | null;
  observedAt: string;
  latencySeconds: number;
  reason?: string;
}
