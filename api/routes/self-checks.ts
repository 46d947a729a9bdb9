/**
 * Self-check runs for a tenant: `POST /api/v1/self-checks` starts one (scope `system:self-check`),
 * `GET /api/v1/self-checks/{checkId}` reads it. An `Idempotency-Key` makes retries return the same run.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { Scope } from '../../core/scopes.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef } from '../errors.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import { IdempotencyKeyHeader } from '../schemas/common.js';
import { SelfCheckParams, SelfCheckStatus, StartSelfCheckBody } from '../schemas/self-checks.js';
import { createSelfCheckTemporal } from '../temporal/self-check.js';

export const selfCheckRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const selfChecks = createSelfCheckTemporal(deps.temporal, { taskQueuePrefix: deps.taskQueuePrefix });
  // After validation (preHandler): invalid input answers 400 whatever the token, as these routes always have.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: [Scope.SelfCheck], hook: 'preHandler' });

  app.post(
    '/api/v1/self-checks',
    {
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
      const { created, status } = await selfChecks.start({
        tenantId,
        checkId: request.headers['idempotency-key'] ?? randomUUID(),
        taskQueue: request.body.taskQueue ?? 'policy-simulation',
        activityCount: request.body.activityCount ?? 1,
      });
      return reply.code(created ? 202 : 200).send(status);
    },
  );

  app.get(
    '/api/v1/self-checks/:checkId',
    {
      schema: {
        tags: ['self-checks'],
        summary: 'Read a self-check of the caller’s tenant',
        security: [{ bearer: [] }],
        params: SelfCheckParams,
        response: { 200: SelfCheckStatus, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => selfChecks.read(principalOf(request).tenantId, request.params.checkId),
  );
};
