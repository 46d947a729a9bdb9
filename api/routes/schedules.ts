/**
 * Recurring policy simulations (scope `policy:schedule`): Temporal Schedules per tenant. Every change is written
 * to the audit trail with who made it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { randomUUID } from 'node:crypto';
import { Scope } from '../../core/scopes.js';
import { recordAudit } from '../../db/queries/audit.js';
import type { AppDeps } from '../deps.js';
import { badRequest, commonErrorResponses, errorRef } from '../errors.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import {
  CreateScheduleBody,
  ScheduleList,
  ScheduleNoteBody,
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
  const audit = (
    tenantId: string,
    action: string,
    actor: string,
    scheduleId: string,
    details: Record<string, unknown> = {},
  ) =>
    recordAudit(deps.pool, {
      tenantId,
      eventType: `scheduler.schedule.${action}`,
      actor,
      subject: scheduleId,
      correlationId: temporalScheduleId(tenantId, scheduleId),
      details,
    });

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
      const created = await service.create(tenantId, scheduleId, request.body, subject);
      await audit(tenantId, 'created', subject, scheduleId, {
        spec: request.body.spec,
        simulation: request.body.simulation,
      });
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
      await service.delete(tenantId, request.params.scheduleId);
      await audit(tenantId, 'deleted', subject, request.params.scheduleId);
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
          response: { 200: doc, 404: errorRef, ...commonErrorResponses },
        },
      },
      async (request) => {
        const { tenantId, subject } = principalOf(request);
        // The body is optional, which a JSON schema on the route cannot express for an absent body.
        const body: unknown = request.body ?? {};
        if (!Value.Check(ScheduleNoteBody, body)) {
          throw badRequest('Body must be { "note": string (≤ 500 characters) } or empty');
        }
        const note = body.note ?? `${action}d by ${subject}`;
        const result = await service[action](tenantId, request.params.scheduleId, note);
        await audit(tenantId, `${action}d`, subject, request.params.scheduleId, { note });
        return result;
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
      await service.trigger(tenantId, request.params.scheduleId);
      await audit(tenantId, 'triggered', subject, request.params.scheduleId);
      return reply.code(202).send({ scheduleId: request.params.scheduleId, triggeredAt: new Date().toISOString() });
    },
  );
};
