/**
 * The Runner's operations view (scope `system:admin`): `GET /api/v1/runner/workers`, Temporal's pollers of every
 * product task queue and the queues no live worker takes work from. Not tenant-scoped: workers serve every tenant.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Scope } from '../../core/scopes.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses } from '../errors.js';
import { bearerAuth } from '../plugins/auth.js';
import { DEFAULT_LIVE_WITHIN_SECONDS, WorkersQuery, WorkersView } from '../schemas/runner.js';
import { createRunnerTemporal } from '../temporal/runner.js';

/** The Runner routes; one capability plugin with one bearer check. */
export const runnerRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const temporal = createRunnerTemporal(deps.temporal, { taskQueuePrefix: deps.taskQueuePrefix });
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: [Scope.SystemAdmin] });

  app.get(
    '/api/v1/runner/workers',
    {
      schema: {
        tags: ['runner'],
        summary: 'The workers polling each task queue, and the queues without a live one',
        description:
          'From Temporal’s task-queue descriptions: per product queue and kind of task (workflow, activity), every ' +
          'poller with its identity and last access. A poller is live when it polled within `liveWithinSeconds` ' +
          `(default ${DEFAULT_LIVE_WITHIN_SECONDS}: an idle worker polls at least once a minute, and Temporal lists ` +
          'a stopped one for another 5 minutes). A worker whose every slot has stayed busy for longer polls no more ' +
          'and shows as not live too: it takes no new work. `queuesWithoutLivePoller` names the queues where a kind ' +
          'of task has no live poller, so work there waits. 503 when Temporal is unavailable.',
        security: [{ bearer: [] }],
        querystring: WorkersQuery,
        response: { 200: WorkersView, ...commonErrorResponses },
      },
    },
    async (request) =>
      temporal.workers({ liveWithinSeconds: request.query.liveWithinSeconds ?? DEFAULT_LIVE_WITHIN_SECONDS }),
  );
};
