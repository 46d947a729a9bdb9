/**
 * Self-check runs for a tenant: `POST /api/v1/self-checks` starts one (scope `system:self-check`),
 * `GET /api/v1/self-checks/{checkId}` reads it. An `Idempotency-Key` makes retries return the same run.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { selfCheckWorkflowId, type SelfCheckResult } from '../../workflows/self-check/definitions.js';
import { Scope } from '../../core/scopes.js';
import type { AppDeps } from '../app.js';
import { commonErrorResponses, errorRef, notFound } from '../errors.js';
import { principalOf, requireScopes } from '../plugins/auth.js';
import { IdempotencyKeyHeader } from '../schemas/common.js';
import { SelfCheckParams, SelfCheckStatus, StartSelfCheckBody } from '../schemas/self-checks.js';
import { startSelfCheck } from '../temporal/self-check.js';
import type { TemporalFacade } from '../temporal/facade.js';

async function describeCheck(temporal: TemporalFacade, handle: WorkflowHandle, checkId: string, tenantId: string) {
  const description = await temporal.withDeadline(() => handle.describe());
  const status = description.status.name;
  let result: SelfCheckResult | undefined;
  if (status === 'COMPLETED') result = (await temporal.withDeadline(() => handle.result())) as SelfCheckResult;
  return {
    checkId,
    tenantId,
    workflowId: description.workflowId,
    runId: description.runId,
    status,
    startedAt: description.startTime.toISOString(),
    ...(description.closeTime ? { closedAt: description.closeTime.toISOString() } : {}),
    ...(result
      ? { result: { activitiesCompleted: result.activitiesCompleted, activityTaskQueues: result.activityTaskQueues } }
      : {}),
  };
}

export const selfCheckRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { temporal } = deps;
  const auth = requireScopes(deps.verifyToken, [Scope.SelfCheck]);

  app.post(
    '/api/v1/self-checks',
    {
      preHandler: auth,
      schema: {
        tags: ['self-checks'],
        summary: 'Start a self-check workflow for the caller’s tenant',
        security: [{ bearer: [] }],
        headers: IdempotencyKeyHeader,
        body: StartSelfCheckBody,
        response: { 200: SelfCheckStatus, 202: SelfCheckStatus, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const checkId = request.headers['idempotency-key'] ?? randomUUID();
      const taskQueue = request.body.taskQueue ?? 'policy-simulation';
      try {
        const { handle } = await startSelfCheck(temporal, {
          tenantId,
          checkId,
          taskQueue: `${deps.taskQueuePrefix ?? ''}${taskQueue}`,
          activityCount: request.body.activityCount ?? 1,
        });
        return reply.code(202).send(await describeCheck(temporal, handle, checkId, tenantId));
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        const handle = temporal.client.workflow.getHandle(selfCheckWorkflowId(tenantId, checkId));
        return reply.code(200).send(await describeCheck(temporal, handle, checkId, tenantId));
      }
    },
  );

  app.get(
    '/api/v1/self-checks/:checkId',
    {
      preHandler: auth,
      schema: {
        tags: ['self-checks'],
        summary: 'Read a self-check of the caller’s tenant',
        security: [{ bearer: [] }],
        params: SelfCheckParams,
        response: { 200: SelfCheckStatus, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { checkId } = request.params;
      const handle = temporal.client.workflow.getHandle(selfCheckWorkflowId(tenantId, checkId));
      try {
        return await describeCheck(temporal, handle, checkId, tenantId);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw notFound(`Self-check ${checkId} not found`);
        throw error;
      }
    },
  );
};
