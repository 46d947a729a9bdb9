/** TypeBox schemas of the policy simulation routes; `PolicyRunStatus` is published in the OpenAPI document. */
import { Type, type Static } from '@sinclair/typebox';
import { POLICY_RUN_STATUSES, PRIORITIES } from '../../workflows/policy-simulation/definitions.js';

const Id = (description: string) => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', description });
const Nullable = <T extends ReturnType<typeof Type.Object>>(schema: T) => Type.Union([schema, Type.Null()]);

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

const VerdictCounts = Type.Object({ pass: Type.Integer(), warn: Type.Integer(), block: Type.Integer() });
const Verdict = Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('block')]);

export const SimulationResultSummary = Type.Object({
  activePolicyVersion: Type.Integer(),
  candidatePolicyVersion: Type.Integer(),
  active: VerdictCounts,
  candidate: VerdictCounts,
  transitions: Type.Record(Type.String(), Type.Integer(), { description: 'Counts per change, e.g. "pass->block"' }),
  changed: Type.Integer(),
  changes: Type.Array(
    Type.Object({
      sbomId: Type.String(),
      component: Type.String(),
      advisoryId: Type.String(),
      severity: Type.String(),
      from: Verdict,
      to: Verdict,
      explain: Type.Optional(Type.String()),
    }),
  ),
});

export const SimulationStats = Type.Object({
  sboms: Type.Integer(),
  components: Type.Integer(),
  findings: Type.Integer(),
  durationMs: Type.Number(),
});

const DateTime = Type.String({ format: 'date-time' });

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

export const StartSimulationBody = Type.Object(
  {
    policyId: Id('Policy id'),
    policyVersion: Type.Integer({ minimum: 1 }),
    inputs: SimulationInputs,
    priority: Type.Optional(Type.Union(PRIORITIES.map((p) => Type.Literal(p)))),
    metadata: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 500 }), { maxProperties: 50 }),
    ),
  },
  { additionalProperties: false },
);
export type StartSimulationBody = Static<typeof StartSimulationBody>;

export const SimulationIdParams = Type.Object({ runId: Id('Run id') });

export const ListSimulationsQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(POLICY_RUN_STATUSES.map((s) => Type.Literal(s)))),
    policyId: Type.Optional(Id('Policy id')),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'queuedAt ≥ since' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'queuedAt < until' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 300, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const SimulationList = Type.Object({
  items: Type.Array(Type.Ref('PolicyRunStatus')),
  nextCursor: Type.Optional(Type.String()),
});

export const CancelSimulationBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1000 }) },
  { additionalProperties: false },
);

export const SimulationMetrics = Type.Object(
  {
    tenantId: Type.String(),
    generatedAt: DateTime,
    queueDepth: Type.Object({ queued: Type.Integer(), running: Type.Integer(), total: Type.Integer() }),
    latency: Type.Object({
      window: Type.Integer(),
      samples: Type.Integer(),
      p50Seconds: Type.Union([Type.Number(), Type.Null()]),
      p90Seconds: Type.Union([Type.Number(), Type.Null()]),
      p95Seconds: Type.Union([Type.Number(), Type.Null()]),
      p99Seconds: Type.Union([Type.Number(), Type.Null()]),
      meanSeconds: Type.Union([Type.Number(), Type.Null()]),
    }),
    recentOutcomes: Type.Object({ succeeded: Type.Integer(), failed: Type.Integer(), cancelled: Type.Integer() }),
  },
  { $id: 'PolicySimulationMetrics' },
);

export const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
});
