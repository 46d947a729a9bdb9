/**
 * Documents tests build over and over: a pack-approval event and a policy-run status document, each complete and
 * valid, with overrides for what a test is about. Values are fixed (no clocks, no random ids) so that assertions
 * can name them; `sampleEvent` in pack-approvals.ts is the fresh-ids variant for tests against real servers.
 */
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import type {
  PolicyRunStatus,
  SimulationResultSummary,
  SimulationStats,
} from '../../workflows/policy-simulation/definitions.js';

/** The resume token of `packApprovalEvent()`: a secret that must never show up in anything derived from the event. */
export const RESUME_TOKEN = 'tok_9f8e7d6c5b4a3210';
/** The traceparent of `packApprovalEvent()`. */
export const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/**
 * A `PackApprovalRequested` event: tenant `tenant-a`, run `run-1`, approval `appr-1`, two grants
 * (`deploy:prod`, `packs:approve`), steps `build`, `deploy`, requested 2025-01-01, expiring a day later, with a
 * resume callback carrying `RESUME_TOKEN` and a traceparent.
 */
export function packApprovalEvent(overrides: Partial<PackApprovalEvent> = {}): PackApprovalEvent {
  return {
    eventId: 'evt-1',
    type: 'PackApprovalRequested',
    kind: 'pack.approval',
    tenantId: 'tenant-a',
    runId: 'run-1',
    approvalId: 'appr-1',
    planHash: 'sha256:feedbeef',
    requiredGrants: ['deploy:prod', 'packs:approve'],
    stepIds: ['build', 'deploy'],
    message: { templateId: 'pack.approval', parameters: { env: 'prod' } },
    resumeCallback: { url: 'https://runner.example/resume', token: RESUME_TOKEN },
    requestedBy: 'alice@example.com',
    requestedAt: '2025-01-01T00:00:00.000Z',
    expiresAt: '2025-01-02T00:00:00.000Z',
    correlationId: 'corr-1',
    traceparent: TRACEPARENT,
    ...overrides,
  };
}

/** Counters of a small evaluation. */
export const SIMULATION_STATS: SimulationStats = { sboms: 1, components: 10, findings: 4, durationMs: 2750 };

/** A verdict diff with one finding going from pass to block. */
export const SIMULATION_RESULT: SimulationResultSummary = {
  activePolicyVersion: 1,
  candidatePolicyVersion: 2,
  active: { pass: 3, warn: 1, block: 0 },
  candidate: { pass: 2, warn: 1, block: 1 },
  transitions: { 'pass->block': 1 },
  changed: 1,
  changes: [],
};

/**
 * The status document of a succeeded run `run-1` of tenant `tenant-a` (policy `P-1` version 2), queued at
 * 14:00:00.000 and finished 3.25 s later, with `SIMULATION_STATS` and `SIMULATION_RESULT`.
 */
export function policyRunStatus(overrides: Partial<PolicyRunStatus> = {}): PolicyRunStatus {
  return {
    runId: 'run-1',
    tenantId: 'tenant-a',
    policyId: 'P-1',
    policyVersion: 2,
    mode: 'simulate',
    status: 'succeeded',
    priority: 'normal',
    queuedAt: '2025-10-26T14:00:00.000Z',
    startedAt: '2025-10-26T14:00:00.500Z',
    finishedAt: '2025-10-26T14:00:03.250Z',
    attempts: 1,
    inputs: { sbomSet: ['sbom:S-1'] },
    stats: SIMULATION_STATS,
    result: SIMULATION_RESULT,
    error: null,
    cancellationRequested: false,
    cancellationReason: null,
    workflowId: 'policy-simulation/tenant-a/run-1',
    metadata: {},
    ...overrides,
  };
}
