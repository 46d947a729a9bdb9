/**
 * Latency of the sagas' event ingress (`POST /api/v1/events`) at a steady rate while the workers run sagas: the real
 * Fastify app on loopback over real HTTP (bearer token, validation, routing, signalWithStart, the Postgres record),
 * the saga and effects workers, the reference services and Postgres in the same process, on the same two cores.
 * Every event starts a saga (mirror bundle exports and advisory rescans, alternately), so the workers are busy with
 * the very load the ingress takes, and the Gateway's own events of the rescans go through the ingress too. The
 * default rate (`BENCH_SAGA_INGRESS_RATE`, 10/s) is one the workers of a two-core machine complete as fast as it
 * starts sagas: above what they complete, a backlog grows for as long as the window lasts and the latencies measure
 * its length (`kept_up` says which of the two a run saw). `/health`
 * of the same app is measured at the same rate in the same window, half a period apart, as the baseline: the p99
 * ratio says what the ingress adds over the HTTP stack. A bare workflow start on the same dev server in the same window
 * is the second baseline: what the one Temporal call of an event costs under that load, whatever calls it. Goal:
 * ingress p99 < 100 ms on this machine.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { buildApp } from '../api/app.js';
import { startSelfCheck } from '../api/temporal/self-check.js';
import { loadBenchConfig, loadConfig } from '../core/config.js';
import { generateSecret, generateWebhookSecret } from '../core/local-secrets.js';
import { Scope } from '../core/scopes.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../test/support/auth.js';
import { advisoryPublished, exportRequested } from '../test/support/sagas.js';
import type { AggregateEvent } from '../workflows/sagas/definitions.js';
import { logger, quantile, startSagaBenchStack } from './support.js';

const { ingressRate: RATE, ingressSeconds: SECONDS } = loadBenchConfig().sagas;
const TENANT = 'bench';
/** Seconds of load before the measured window, so the workers are busy when it begins. */
const WARM_UP_SECONDS = 2;

/** The start event of the `i`-th saga: mirror exports and advisory rescans alternately, each its own instance. */
function startEvent(i: number): AggregateEvent {
  const occurredAt = new Date().toISOString();
  return i % 2 === 0
    ? exportRequested(`bundle-${randomUUID()}`, { tenantId: TENANT, occurredAt })
    : advisoryPublished(
        'CVE-2023-44487',
        {},
        { tenantId: TENANT, correlationId: `rescan-${randomUUID()}`, occurredAt },
      );
}

/**
 * Calls `send(i)` at `rate` per second for `seconds` (open loop: requests leave on schedule whatever the answers),
 * starting `offsetMs` in; resolves with the latency of each call in milliseconds.
 */
export async function steady(
  rate: number,
  seconds: number,
  offsetMs: number,
  send: (i: number) => Promise<void>,
): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    Array.from(
      { length: rate * seconds },
      (_, i) =>
        new Promise<void>((resolve, reject) =>
          setTimeout(
            () => {
              const started = performance.now();
              send(i).then(() => {
                latencies.push(performance.now() - started);
                resolve();
              }, reject);
            },
            offsetMs + (i * 1000) / rate,
          ),
        ),
    ),
  );
  return latencies;
}

/** Ingress and `/health` latency in the same window; figures keyed `events_*` and `health_*`. */
export async function benchSagaIngress(): Promise<Record<string, number>> {
  const stack = await startSagaBenchStack({ scanDelayMs: 0 });
  const auth = await createTestSigner();
  const app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger,
    pool: stack.pool,
    temporal: stack.temporal,
    verifyToken: auth.verifier,
    packApprovalSecrets: { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() },
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = await auth.token({ tenant: TENANT, scopes: [Scope.RunnerEventsWrite], subject: 'aggregates' });
  let sent = 0;
  const postEvent = async () => {
    const res = await fetch(`${base}/api/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(startEvent(sent++)),
    });
    const body = (await res.json()) as { results?: { status: string }[] };
    if (res.status !== 202 || body.results?.[0]?.status !== 'accepted') {
      throw new Error(`ingress answered ${res.status} ${JSON.stringify(body)}`);
    }
  };
  const getHealth = async () => {
    const res = await fetch(`${base}/health`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`/health answered ${res.status}`);
  };
  // The one Temporal call the ingress cannot do without, alone: a workflow start on a queue no worker serves (it
  // times out unseen), at a fifth of the rate so that it adds little load of its own.
  const startRate = Math.max(1, Math.round(RATE / 5));
  const bareStart = async () => {
    await startSelfCheck(stack.temporal, {
      tenantId: TENANT,
      taskQueue: 'bench-unserved',
      activityCount: 0,
      executionTimeoutSeconds: 60,
    });
  };
  const finishedBetween = async (from: Date, to: Date) => {
    const { rows } = await stack.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM runner.saga_instances
        WHERE tenant_id = $1 AND status = 'completed' AND finished_at >= $2 AND finished_at < $3`,
      [TENANT, from, to],
    );
    return rows[0]?.n ?? 0;
  };
  try {
    await steady(RATE, WARM_UP_SECONDS, 0, postEvent);
    const from = new Date();
    const periodMs = 1000 / RATE;
    const [events, health, starts] = await Promise.all([
      steady(RATE, SECONDS, 0, postEvent),
      steady(RATE, SECONDS, periodMs / 2, getHealth),
      steady(startRate, SECONDS, periodMs / 4, bareStart),
    ]);
    const to = new Date();
    const completed = await finishedBetween(from, to);
    const eventsP99 = quantile(events, 0.99);
    const healthP99 = quantile(health, 0.99);
    return {
      rate_per_s: RATE,
      seconds: SECONDS,
      events_posted: events.length,
      events_p50_ms: quantile(events, 0.5),
      events_p99_ms: eventsP99,
      health_p50_ms: quantile(health, 0.5),
      health_p99_ms: healthP99,
      p99_ratio: eventsP99 / healthP99,
      start_p50_ms: quantile(starts, 0.5),
      start_p99_ms: quantile(starts, 0.99),
      p99_vs_start: eventsP99 / quantile(starts, 0.99),
      // Sagas the workers finished during the window: they were busy the whole time.
      sagas_done_per_s: completed / ((to.getTime() - from.getTime()) / 1000),
      // 1 when the workers finished sagas as fast as the events started them (within 10 %): the latencies are those of
      // a steady state. 0 means the rate is beyond what this machine completes and a backlog grew during the window.
      kept_up: completed >= 0.9 * RATE * ((to.getTime() - from.getTime()) / 1000) ? 1 : 0,
      sagas_backlog: sent - (await finishedBetween(new Date(0), new Date())),
      gateway_retries: stack.gatewayEventRetries(),
      load_avg_1m: loadavg()[0]!,
    };
  } finally {
    await app.close();
    await stack.close();
  }
}
