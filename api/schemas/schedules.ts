/** Schemas of the recurring simulation schedules (Temporal Schedules behind `/api/v1/scheduler/schedules`). */
import { Type, type Static } from '@sinclair/typebox';
import { StartSimulationBody } from './policy-simulations.js';

const ScheduleId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Schedule id' });

export const ScheduleSpec = Type.Object(
  {
    cron: Type.Optional(
      Type.Array(Type.String({ minLength: 9, maxLength: 100 }), {
        minItems: 1,
        maxItems: 10,
        description: 'Cron expressions (minute hour day-of-month month day-of-week)',
      }),
    ),
    intervalSeconds: Type.Optional(
      Type.Integer({ minimum: 60, maximum: 31_536_000, description: 'Run every N seconds' }),
    ),
    timezone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone of cron expressions' })),
  },
  { additionalProperties: false },
);
export type ScheduleSpec = Static<typeof ScheduleSpec>;

export const CreateScheduleBody = Type.Object(
  {
    scheduleId: Type.Optional(ScheduleId),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    spec: ScheduleSpec,
    simulation: StartSimulationBody,
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateScheduleBody = Static<typeof CreateScheduleBody>;

export const ScheduleParams = Type.Object({ scheduleId: ScheduleId });

export const ScheduleNoteBody = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);

/** Body of pause and unpause: a note, or no body at all (Fastify validates an absent body as `null`). */
export const OptionalScheduleNoteBody = Type.Unsafe<Static<typeof ScheduleNoteBody> | null>({
  ...ScheduleNoteBody,
  nullable: true,
});

export const ScheduleDoc = Type.Object(
  {
    scheduleId: Type.String(),
    tenantId: Type.String(),
    description: Type.String(),
    spec: ScheduleSpec,
    simulation: StartSimulationBody,
    paused: Type.Boolean(),
    note: Type.String(),
    createdBy: Type.String(),
    createdAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    nextRunTimes: Type.Array(Type.String({ format: 'date-time' })),
    recentRuns: Type.Array(
      Type.Object({
        workflowId: Type.String(),
        scheduledAt: Type.String({ format: 'date-time' }),
        startedAt: Type.String({ format: 'date-time' }),
      }),
    ),
  },
  { $id: 'PolicySimulationSchedule' },
);
export type ScheduleDoc = Static<typeof ScheduleDoc>;

export const ScheduleList = Type.Object({ items: Type.Array(Type.Ref('PolicySimulationSchedule')) });

export const TriggerResponse = Type.Object({
  scheduleId: Type.String(),
  triggeredAt: Type.String({ format: 'date-time' }),
});
