/**
 * Policy simulations: one `policySimulationWorkflow` per run evaluates a candidate policy version over a set of
 * SBOMs through the Policy Engine and reports the verdict diff against the active policy.
 * Shared by the workflow, its activities and the API.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { Id, Nullable } from '../shared/schemas.js';

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
export const TERMINAL_STATUSES: readonly PolicyRunStatusValue[] = [
  'succeeded',
  'failed',
  'cancelled',
] satisfies RunOutcome[];
/** The statuses of a run that is waiting or being evaluated (the queue depth). */
export const ACTIVE_STATUSES: readonly PolicyRunStatusValue[] = ['queued', 'running'];

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The verdicts a policy gives a finding (the keys of `VerdictCounts`). */
export const VERDICTS = ['pass', 'warn', 'block'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** What to evaluate the policy over. */
export const SimulationInputs = Type.Object(
  {
    sbomSet: Type.Array(Id('SBOM id'), { minItems: 1, maxItems: 1000, uniqueItems: true }),
    advisoryCursor: Type.Optional(Type.String({ maxLength: 200 })),
    vexCursor: Type.Optional(Type.String({ maxLength: 200 })),
    environment: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 500 }))),
    captureExplain: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type SimulationInputs = Static<typeof SimulationInputs>;

/** Counts of verdicts per outcome. */
export const VerdictCounts = Type.Object({ pass: Type.Integer(), warn: Type.Integer(), block: Type.Integer() });
export type VerdictCounts = Static<typeof VerdictCounts>;

const VerdictSchema = Type.Union(VERDICTS.map((v) => Type.Literal(v)));

/** One finding whose verdict changed between the active and the candidate policy. */
export const VerdictChange = Type.Object({
  sbomId: Type.String(),
  component: Type.String(),
  advisoryId: Type.String(),
  severity: Type.String(),
  from: VerdictSchema,
  to: VerdictSchema,
  /** Why the candidate decided as it did (only with `captureExplain`). */
  explain: Type.Optional(Type.String()),
});
export type VerdictChange = Static<typeof VerdictChange>;

/** Result summary of a simulation: the verdict diff between the active policy and the candidate. */
export const SimulationResultSummary = Type.Object({
  activePolicyVersion: Type.Integer(),
  candidatePolicyVersion: Type.Integer(),
  active: VerdictCounts,
  candidate: VerdictCounts,
  transitions: Type.Record(Type.String(), Type.Integer(), { description: 'Counts per change, e.g. "pass->block"' }),
  changed: Type.Integer(),
  /** The first changes (bounded), for a human to read. */
  changes: Type.Array(VerdictChange),
});
export type SimulationResultSummary = Static<typeof SimulationResultSummary>;

/** Counters of an evaluation. */
export const SimulationStats = Type.Object({
  sboms: Type.Integer(),
  components: Type.Integer(),
  findings: Type.Integer(),
  durationMs: Type.Number(),
});
export type SimulationStats = Static<typeof SimulationStats>;

const DateTime = Type.String({ format: 'date-time' });

/** The status document of a run, as the API, the SSE stream and the completion webhook publish it. */
export const PolicyRunStatus = Type.Object(
  {
    runId: Type.String(),
    tenantId: Type.String(),
    policyId: Type.String(),
    policyVersion: Type.Integer({ minimum: 1 }),
    mode: Type.Literal('simulate'),
    status: Type.Union(POLICY_RUN_STATUSES.map((s) => Type.Literal(s))),
    priority: Type.Union(PRIORITIES.map((p) => Type.Literal(p))),
    queuedAt: DateTime,
    startedAt: Type.Union([DateTime, Type.Null()]),
    finishedAt: Type.Union([DateTime, Type.Null()]),
    attempts: Type.Integer({ minimum: 0 }),
    inputs: SimulationInputs,
    stats: Nullable(SimulationStats),
    result: Nullable(SimulationResultSummary),
    error: Type.Union([Type.String(), Type.Null()]),
    cancellationRequested: Type.Boolean(),
    cancellationReason: Type.Union([Type.String(), Type.Null()]),
    workflowId: Type.String(),
    metadata: Type.Record(Type.String(), Type.String()),
  },
  { $id: 'PolicyRunStatus', description: 'Status document of a policy simulation run' },
);
export type PolicyRunStatus = Static<typeof PolicyRunStatus>;

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

/** Failure types of this capability (stable strings, compared on `ApplicationFailure.type`; never renamed). */
export const SimulationFailure = {
  /** The Policy Engine refused the request (4xx): retrying cannot help. */
  EngineRejected: 'PolicyEngineRejected',
  /** The Policy Engine answered 5xx/408/429 or could not be reached: retried. */
  EngineUnavailable: 'PolicyEngineUnavailable',
  /** The run is already terminal (cancel rejected). */
  AlreadyTerminal: 'SimulationAlreadyTerminal',
  /** The completion webhook was refused or ran out of attempts: final (the run's outcome stands). */
  WebhookDeliveryFailed: 'WebhookDeliveryFailed',
  /** A completion webhook attempt failed in a way another attempt can get past: retried. */
  WebhookDeliveryRetry: 'WebhookDeliveryRetry',
} as const;
export type SimulationFailure = (typeof SimulationFailure)[keyof typeof SimulationFailure];

/** The outcome of a terminal run: the `result` of its completion payload. */
export const RUN_OUTCOMES = ['succeeded', 'failed', 'cancelled'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/**
 * Payload of the completion webhook and of the SSE `completed` event (the same document for the same run). `result`
 * is the run's outcome string, as receivers key on it; the verdict diff is `simulation.result`.
 */
export const CompletionPayload = Type.Object(
  {
    tenantId: Type.String({ minLength: 1 }),
    simulation: PolicyRunStatus,
    result: Type.Union(RUN_OUTCOMES.map((o) => Type.Literal(o))),
    /** When the terminal state was observed: the run's `finishedAt`, so every reader sees the same instant. */
    observedAt: DateTime,
    latencySeconds: Type.Number({ minimum: 0 }),
    reason: Type.Optional(Type.String()),
  },
  { $id: 'PolicySimulationCompleted', additionalProperties: false },
);
export type CompletionPayload = Static<typeof CompletionPayload>;
