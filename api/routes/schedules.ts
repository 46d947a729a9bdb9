/**
 * Recurring policy simulations (scope `policy:schedule`): Temporal Schedules per tenant. Every change is written
 * to the audit trail with who made it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { randomUUID } from 'node:crypto';
import { Scope } from '../../core/scopes.js';
import { withTransaction } from '../../db/pool.js';
import { recordAudit } from '../../db/queries/audit.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef } from '../errors.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import {
  CreateScheduleBody,
  ScheduleList,
  OptionalScheduleNoteBody,
  ScheduleParams,
  TriggerResponse,
} from '../schemas/schedules.js';
import { createScheduleService, temporalScheduleId } from '../temporal/schedules.js';

const BASE = '/api/v1/scheduler/schedules';

export const scheduleRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const service = createScheduleService(deps.temporal, { taskQueuePrefix: deps.taskQueuePrefix });
  // After validation (preHandler): invalid input answers 400 whatever the token, as these routes always have.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: [Scope.PolicySchedule], hook: 'preHandler' });
  const security = [{ bearer: [] }];
  const tags = ['schedules'];
  const doc = Type.Ref('PolicySimulationSchedule');
  /**
   * Makes one change in Temporal together with its audit record: the record is written first, in a transaction
   * committed only after Temporal accepted the change. Postgres unavailable → 503 before anything changed; Temporal
   * refusing → rolled back, so no record of a change that did not happen. `undo` reverts the change when the commit
   * itself fails (Postgres lost in between), so that a 503 still means nothing changed.
   */
  const audited = <T>(
    record: { tenantId: string; action: string; actor: string; scheduleId: string; details?: Record<string, unknown> },
    change: () => Promise<T>,
    undo?: () => Promise<unknown>,
  ): Promise<T> =>
    withTransaction(
      deps.pool,
      async (client) => {
        await recordAudit(client, {
          tenantId: record.tenantId,
          eventType: `scheduler.schedule.${record.action}`,
          actor: record.actor,
          subject: record.scheduleId,
          correlationId: temporalScheduleId(record.tenantId, record.scheduleId),
          details: record.details ?? {},
        });
        return change();
      },
      undo,
    );

  app.post(
    BASE,
    {
      schema: {
        tags,
        summary: 'Create a schedule that starts simulations on a cron or interval spec',
        security,
        body: CreateScheduleBody,
        response: { 201: doc, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const scheduleId = request.body.scheduleId ?? `sched-${randomUUID().slice(0, 8)}`;
      const created = await audited(
        {
          tenantId,
          action: 'created',
          actor: subject,
          scheduleId,
          details: { spec: request.body.spec, simulation: request.body.simulation },
        },
        () => service.create(tenantId, scheduleId, request.body, subject),
        () => service.delete(tenantId, scheduleId),
      );
      return reply.code(201).header('location', `${BASE}/${scheduleId}`).send(created);
    },
  );

  app.get(
    BASE,
    {
      schema: {
        tags,
        summary: 'List the tenant’s schedules',
        security,
        response: { 200: ScheduleList, ...commonErrorResponses },
      },
    },
    async (request) => ({ items: await service.list(principalOf(request).tenantId) }),
  );

  app.get(
    `${BASE}/:scheduleId`,
    {
      schema: {
        tags,
        summary: 'Read a schedule',
        security,
        params: ScheduleParams,
        response: { 200: doc, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => service.describe(principalOf(request).tenantId, request.params.scheduleId),
  );

  app.delete(
    `${BASE}/:scheduleId`,
    {
      schema: {
        tags,
        summary: 'Delete a schedule',
        security,
        params: ScheduleParams,
        response: { 204: Type.Null(), 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { scheduleId } = request.params;
      // A deletion cannot be undone: it is the last step, after the audit record is written.
      await audited({ tenantId, action: 'deleted', actor: subject, scheduleId }, () =>
        service.delete(tenantId, scheduleId),
      );
      return reply.code(204).send(null);
    },
  );

  for (const action of ['pause', 'unpause'] as const) {
    app.post(
      `${BASE}/:scheduleId/${action}`,
      {
        schema: {
          tags,
          summary: action === 'pause' ? 'Pause a schedule' : 'Resume a paused schedule',
          security,
          description: 'Optional JSON body `{ "note": "…" }` (at most 500 characters).',
          params: ScheduleParams,
          body: OptionalScheduleNoteBody,
          response: { 200: doc, 404: errorRef, ...commonErrorResponses },
        },
      },
      async (request) => {
        const { tenantId, subject } = principalOf(request);
        const note = request.body?.note ?? `${action}d by ${subject}`;
        const { scheduleId } = request.params;
        const inverse = action === 'pause' ? 'unpause' : 'pause';
        return audited(
          { tenantId, action: `${action}d`, actor: subject, scheduleId, details: { note } },
          () => service[action](tenantId, scheduleId, note),
          () => service[inverse](tenantId, scheduleId, `${action} not recorded; reverted`),
        );
      },
    );
  }

  app.post(
    `${BASE}/:scheduleId/trigger`,
    {
      schema: {
        tags,
        summary: 'Start a simulation from the schedule now',
        security,
        params: ScheduleParams,
        response: { 202: TriggerResponse, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { scheduleId } = request.params;
      await audited({ tenantId, action: 'triggered', actor: subject, scheduleId }, () =>
        service.trigger(tenantId, scheduleId),
      );
      return reply.code(202).send({ scheduleId: request.params.scheduleId, triggeredAt: new Date().toISOString() });
    },
  );
};
