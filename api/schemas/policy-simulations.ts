/**
 * TypeBox schemas of the policy simulation routes; `PolicyRunStatus` (defined with the workflow) is published in the
 * OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  POLICY_RUN_STATUSES,
  PolicyRunStatus,
  PRIORITIES,
  SimulationInputs,
} from '../../workflows/policy-simulation/definitions.js';
import { Id } from '../../workflows/shared/schemas.js';
import { POSTGRES_INTEGER_MAX } from './common.js';

// The status document's schema lives with the workflow definitions, which derive its type from it.
export { PolicyRunStatus };

const DateTime = Type.String({ format: 'date-time' });

export const StartSimulationBody = Type.Object(
  {
    policyId: Id('Policy id'),
    // Stored in an `integer` column.
    policyVersion: Type.Integer({ minimum: 1, maximum: POSTGRES_INTEGER_MAX }),
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
