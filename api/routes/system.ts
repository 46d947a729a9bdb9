/** Operational routes: /health, /ready (?deep=true), /info, /metrics. Unauthenticated, for probes and scrapers. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { VERSION } from '../../core/version.js';
import { WORKFLOW_TASK_QUEUES } from '../../core/config.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/shared/search-attributes.js';
import type { AppDeps } from '../deps.js';
import { RETRY_AFTER_SECONDS } from '../errors.js';
import { HealthResponse, InfoResponse, ReadyQuery, ReadyResponse } from '../schemas/system.js';
import { createSelfCheckTemporal } from '../temporal/self-check.js';

/** How long a deep readiness check waits for workers. */
const DEEP_CHECK_TIMEOUT_MS = 15_000;

/** Runs `fn` as a dependency check: up with its latency, or down with the error's message. */
export async function probe(
  fn: () => Promise<unknown>,
): Promise<{ status: 'up' | 'down'; latencyMs: number; error?: string }> {
  const started = Date.now();
  try {
    await fn();
    return { status: 'up', latencyMs: Date.now() - started };
  } catch (error) {
    return { status: 'down', latencyMs: Date.now() - started, error: (error as Error).message || String(error) };
  }
}

export const systemRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { config, pool, temporal, metrics } = deps;
  const queues = config.worker.queues;
  const selfChecks = createSelfCheckTemporal(temporal, { taskQueuePrefix: deps.taskQueuePrefix });

  app.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'Process is up', response: { 200: HealthResponse } } },
    async () => ({ status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Temporal and Postgres reachable; with deep=true, a workflow round trip on every served queue',
        querystring: ReadyQuery,
        response: { 200: ReadyResponse, 503: ReadyResponse },
      },
    },
    async (request, reply) => {
      const [postgres, temporalCheck] = await Promise.all([
        probe(() => pool.query('SELECT 1')),
        probe(() => temporal.ping()),
      ]);
      const body: ReadyResponse = { status: 'ready', checks: { postgres, temporal: temporalCheck } };
      if (request.query.deep && temporalCheck.status === 'up') {
        body.checks.selfCheck = await selfChecks.readiness({
          tenantId: config.selfCheck.tenantId,
          workflowQueues: WORKFLOW_TASK_QUEUES.filter((q) => queues.includes(q)),
          ...(queues.includes('effects') ? { effectsQueue: 'effects' } : {}),
          timeoutMs: DEEP_CHECK_TIMEOUT_MS,
        });
      }
      const checks = [postgres, temporalCheck, ...Object.values(body.checks.selfCheck ?? {})];
      if (checks.some((c) => c.status === 'down') || (request.query.deep && !body.checks.selfCheck)) {
        body.status = 'unavailable';
        return reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send(body);
      }
      return body;
    },
  );

  app.get(
    '/info',
    {
      schema: {
        tags: ['operations'],
        summary: 'Version, task queues and Temporal namespace',
        response: { 200: InfoResponse },
      },
    },
    async () => ({
      name: 'stellaops-workflows',
      version: VERSION,
      node: process.version,
      temporal: { address: temporal.address, namespace: temporal.namespace },
      taskQueues: queues.map((q) => selfChecks.taskQueue(q)),
      searchAttributes: SEARCH_ATTRIBUTE_KEYS.map((key) => key.name),
    }),
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text exposition format' }) },
      },
    },
    async (_request, reply) => {
      reply.type(metrics.contentType);
      return metrics.metrics();
    },
  );
};
