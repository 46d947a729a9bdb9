/** Prometheus metrics of the API process: default Node metrics and HTTP request metrics by route and status. */
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import { countDeliveries, countOutstandingApprovals } from '../db/queries/pack-approvals.js';
import type { FastifyInstance } from 'fastify';

/** Creates a registry with the default process metrics (one per app, so tests do not share state). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Records `http_request_duration_seconds{method,route,status_code}` for every answered request. */
export function registerHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}

/** Domain metrics of pack approvals; gauges read Postgres at scrape time (through indexes). */
export function registerPackApprovalMetrics(
  registry: Registry,
  pool: Pool,
  logger: Logger,
): { ackLatency: Histogram<string> } {
  new Gauge({
    name: 'stellaops_pack_approvals_outstanding',
    help: 'Pack approvals waiting for a decision or held by a policy gate',
    registers: [registry],
    async collect() {
      try {
        this.set(await countOutstandingApprovals(pool));
      } catch (error) {
        logger.warn({ err: error }, 'metrics: outstanding approvals unavailable');
      }
    },
  });
  new Gauge({
    name: 'stellaops_pack_approval_notifications',
    help: 'Pack-approval notifications by channel and status (queued, sent, failed) within the retention period',
    labelNames: ['channel', 'status'] as const,
    registers: [registry],
    async collect() {
      try {
        this.reset();
        for (const row of await countDeliveries(pool)) this.set({ channel: row.channel, status: row.status }, row.n);
      } catch (error) {
        logger.warn({ err: error }, 'metrics: notification counts unavailable');
      }
    },
  });
  const ackLatency = new Histogram({
    name: 'stellaops_pack_approval_ack_latency_seconds',
    help: 'Time from approval request to the human decision',
    buckets: [60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600],
    registers: [registry],
  });
  return { ackLatency };
}
