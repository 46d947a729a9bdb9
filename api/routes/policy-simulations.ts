/**
 * Policy simulations (scope `policy:simulate`): start, list, read, cancel, follow live (SSE), metrics.
 * Reads come from the Postgres projection; starts and cancels are one Temporal call each.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Scope } from '../../core/scopes.js';
import {
  getPolicyRun,
  getSimulationMetrics,
  listPolicyRuns,
  policyRunEventsAfter,
} from '../../db/queries/policy-simulations.js';
import { buildCompletionPayload } from '../../workflows/policy-simulation/completion.js';
import { isTerminalStatus } from '../../workflows/policy-simulation/state.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef } from '../errors.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import { isPostgresDateTime } from '../plugins/strict-input.js';
import { IdempotencyKeyHeader } from '../schemas/common.js';
import {
  CancelSimulationBody,
  ListSimulationsQuery,
  SimulationIdParams,
  SimulationList,
  StartSimulationBody,
  StreamHeaders,
} from '../schemas/policy-simulations.js';
import { createPolicySimulationTemporal } from '../temporal/policy-simulations.js';

const BASE = '/api/v1/scheduler/policies/simulations';
const statusRef = Type.Ref('PolicyRunStatus');
/** How often a stream re-reads its run even without a notification (a safety net, not the main path). */
const STREAM_POLL_MS = 5_000;

/** The position a cursor names; anything this API did not encode (a date Postgres cannot read, say) is a 400. */
function decodeRunCursor(cursor: string): { queuedAt: string; runId: string } {
  return decodeCursor(cursor, (value) => {
    const [queuedAt, runId] = Array.isArray(value) ? (value as unknown[]) : [];
    return typeof queuedAt === 'string' &&
      typeof runId === 'string' &&
      isPostgresDateTime(queuedAt) &&
      !runId.includes('\u0000')
      ? { queuedAt, runId }
      : undefined;
  });
}

export const policySimulationRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { pool, config } = deps;
  const simulations = createPolicySimulationTemporal(deps.temporal, {
    taskQueuePrefix: deps.taskQueuePrefix,
    evaluationTimeoutSeconds: config.simulations.evaluationTimeoutSeconds,
  });
  // After validation (preHandler): invalid input answers 400 whatever the token, as these routes always have.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: [Scope.PolicySimulate], hook: 'preHandler' });
  const security = [{ bearer: [] }];
  const tags = ['policy-simulations'];

  /** The projection, or the workflow's own answer while the projection has not caught up. */
  const readRun = async (tenantId: string, runId: string) =>
    (await getPolicyRun(pool, tenantId, runId)) ?? (await simulations.query(tenantId, runId));

  app.post(
    BASE,
    {
      schema: {
        tags,
        summary: 'Start a policy simulation',
        description: 'Retries with the same Idempotency-Key return the same run (200) instead of starting another.',
        security,
        headers: IdempotencyKeyHeader,
        body: StartSimulationBody,
        response: { 200: statusRef, 201: statusRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { created, doc } = await simulations.start({
        tenantId: principal.tenantId,
        body: request.body,
        ...(request.headers['idempotency-key'] ? { idempotencyKey: request.headers['idempotency-key'] } : {}),
        requestedBy: principal.subject,
      });
      return reply
        .code(created ? 201 : 200)
        .header('location', `${BASE}/${doc.runId}`)
        .send(doc);
    },
  );

  app.get(
    BASE,
    {
      schema: {
        tags,
        summary: 'List simulations, newest first',
        security,
        querystring: ListSimulationsQuery,
        response: { 200: SimulationList, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const q = request.query;
      const page = await listPolicyRuns(pool, tenantId, {
        limit: q.limit ?? 50,
        ...(q.status ? { status: q.status } : {}),
        ...(q.policyId ? { policyId: q.policyId } : {}),
        ...(q.since ? { since: q.since } : {}),
        ...(q.until ? { until: q.until } : {}),
        ...(q.cursor ? { cursor: decodeRunCursor(q.cursor) } : {}),
      });
      return {
        items: page.items,
        ...(page.next ? { nextCursor: encodeCursor([page.next.queuedAt, page.next.runId]) } : {}),
      };
    },
  );

  app.get(
    `${BASE}/metrics`,
    {
      schema: {
        tags,
        summary: 'Queue depth and latency percentiles of recent simulations',
        security,
        response: { 200: Type.Ref('PolicySimulationMetrics'), ...commonErrorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const metrics = await getSimulationMetrics(pool, tenantId, config.simulations.metricsWindow);
      return { tenantId, generatedAt: new Date().toISOString(), ...metrics };
    },
  );

  app.get(
    `${BASE}/:runId`,
    {
      schema: {
        tags,
        summary: 'Read a simulation',
        security,
        params: SimulationIdParams,
        response: { 200: statusRef, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => readRun(principalOf(request).tenantId, request.params.runId),
  );

  app.post(
    `${BASE}/:runId/cancel`,
    {
      schema: {
        tags,
        summary: 'Cancel a queued or running simulation',
        description: 'Answers with the terminal document (status cancelled); 409 if the run had already finished.',
        security,
        params: SimulationIdParams,
        body: CancelSimulationBody,
        response: { 200: statusRef, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return simulations.cancel({
        tenantId: principal.tenantId,
        runId: request.params.runId,
        reason: request.body.reason,
        requestedBy: principal.subject,
      });
    },
  );

  app.get(
    `${BASE}/:runId/stream`,
    {
      schema: {
        tags,
        summary: 'Follow a simulation live (Server-Sent Events)',
        description:
          'A `status` event with the full document on every change (event id = change id; send it back as ' +
          'Last-Event-ID to resume) and exactly one `completed` event with the completion payload, then the ' +
          'stream ends. 204 when resuming after the run already completed.',
        security,
        params: SimulationIdParams,
        headers: StreamHeaders,
        produces: ['text/event-stream'],
        response: {
          200: Type.String({ description: 'text/event-stream' }),
          204: Type.Null(),
          404: errorRef,
          ...commonErrorResponses,
        },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const { runId } = request.params;
      const current = await readRun(tenantId, runId);
      let lastId = request.headers['last-event-id'] ?? '0';
      const backlog = await policyRunEventsAfter(pool, tenantId, runId, lastId);
      if (backlog.length === 0 && isTerminalStatus(current.status) && lastId !== '0') return reply.code(204).send(null);

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write('retry: 3000\n\n');

      let finished = false;
      let chain = Promise.resolve();
      const write = (event: string, id: string, data: unknown) =>
        raw.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      const finish = () => {
        if (finished) return;
        finished = true;
        clearInterval(keepAlive);
        clearInterval(poll);
        unsubscribe();
        raw.end();
      };
      const pump = () => {
        chain = chain
          .then(async () => {
            if (finished) return;
            for (const event of await policyRunEventsAfter(pool, tenantId, runId, lastId)) {
              write('status', event.id, event.document);
              lastId = event.id;
              if (isTerminalStatus(event.status)) {
                write('completed', event.id, buildCompletionPayload(event.document, new Date().toISOString()));
                finish();
                return;
              }
            }
          })
          .catch((error: unknown) => request.log.warn({ err: error, runId }, 'SSE read failed; will retry'));
      };
      const unsubscribe = deps.policyRunHub.subscribe(tenantId, runId, pump);
      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), deps.sseKeepAliveMs ?? 15_000);
      const poll = setInterval(pump, STREAM_POLL_MS);
      request.raw.on('close', finish);
      pump();
    },
  );
};
