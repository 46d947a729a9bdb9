/** Schemas of the self-check routes. */
import { Type, type Static } from '@sinclair/typebox';
import { WORKFLOW_TASK_QUEUES } from '../../core/config.js';

export const StartSelfCheckBody = Type.Object(
  {
    activityCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 1 })),
    taskQueue: Type.Optional(
      Type.Union(
        WORKFLOW_TASK_QUEUES.map((q) => Type.Literal(q)),
        { default: 'policy-simulation' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const SelfCheckParams = Type.Object({ checkId: Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' }) });

export const SelfCheckStatus = Type.Object({
  checkId: Type.String(),
  tenantId: Type.String(),
  workflowId: Type.String(),
  runId: Type.String(),
  status: Type.String({ description: 'Temporal execution status: RUNNING, COMPLETED, FAILED, TIMED_OUT, …' }),
  startedAt: Type.String({ format: 'date-time' }),
  closedAt: Type.Optional(Type.String({ format: 'date-time' })),
  result: Type.Optional(
    Type.Object({ activitiesCompleted: Type.Integer(), activityTaskQueues: Type.Array(Type.String()) }),
  ),
});
export type SelfCheckStatus = Static<typeof SelfCheckStatus>;
