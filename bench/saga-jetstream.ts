/**
 * The JetStream transport of sagas against the HTTP ingress' code path, on the same stack in the same run:
 *
 * - throughput: mirror bundle exports run to completion in a closed loop, started by a message published to the
 *   aggregate stream (the bridge consumes it) vs by the ingress directly (what `POST /api/v1/events` calls), in
 *   interleaved rounds; the ratio jetstream / ingress says what the transport costs end to end (goal ≥ 0.9);
 * - consumer lag at a steady rate (`BENCH_SAGA_INGRESS_RATE` events/s for `BENCH_SAGA_INGRESS_SECONDS`), sampled from
 *   the durable consumer (`num_pending + num_ack_pending`) every 100 ms while the workers run the sagas;
 * - time to drain a backlog of `BENCH_SAGA_BACKLOG` (10k) start events published while no bridge ran, on a stack
 *   without workers (so the figure is the bridge's, not the sagas'), vs the same number ingested directly in batches
 *   of the bridge's size; the ratio direct / bridge (goal ≥ 0.8).
 */
import { randomUUID } from 'node:crypto';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { createSagaIngress } from '../api/services/saga-ingress.js';
import { createTemporalFacade } from '../api/temporal/facade.js';
import { createSagaTemporal } from '../api/temporal/sagas.js';
import { loadBenchConfig } from '../core/config.js';
import { startDevServer } from '../stack/temporal.js';
import { startTestNats, type TestNats } from '../test/support/nats.js';
import { exportRequested } from '../test/support/sagas.js';
import type { AggregateEvent, SagaView } from '../workflows/sagas/definitions.js';
import { SAGAS } from '../workflows/sagas/registry.js';
import { routeEvent } from '../workflows/sagas/routing.js';
import { startSagaBridge, type SagaBridge } from '../workers/saga-bridge.js';
import { aggregateEventSubject } from '../workers/saga-streams.js';
import { compareRates } from './saga-throughput.js';
import { benchPostgres, closedLoop, freePort, logger, quantile, startSagaBenchStack } from './support.js';

const {
  runs: RUNS,
  concurrency: CONCURRENCY,
  ingressRate: RATE,
  ingressSeconds: SECONDS,
  backlog: BACKLOG,
} = loadBenchConfig().sagas;
const TENANT = 'bench';

const exportEvent = (): AggregateEvent =>
  exportRequested(`bundle-${randomUUID()}`, { tenantId: TENANT, occurredAt: new Date().toISOString() });

/** Publishes `event` on its aggregate subject, deduplicated by event id, and waits for the stream's ack. */
async function publish(js: JetStreamClient, nats: TestNats, event: AggregateEvent): Promise<void> {
  const prefix = nats.config.nats.aggregateStream.subjects[0]!.slice(0, -2);
  await js.publish(aggregateEventSubject(prefix, event), JSON.stringify(event), { msgID: event.eventId });
}

/** The workflow id the event's saga instance runs under. */
const workflowIdOf = (event: AggregateEvent) => routeEvent(event, SAGAS).routes[0]!.workflowId;

/** Lag of the bridge's durable consumer: messages not yet delivered plus delivered and not yet acknowledged. */
async function lagOf(nats: TestNats): Promise<number> {
  const info = await nats.jsm.consumers.info(nats.config.nats.aggregateStream.name, nats.config.nats.bridge.durable);
  return info.num_pending + info.num_ack_pending;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function throughputAndLag(): Promise<Record<string, number>> {
  const nats = await startTestNats();
  const stack = await startSagaBenchStack();
  let bridge: SagaBridge | undefined;
  try {
    bridge = await startSagaBridge({
      connection: await nats.connect('bench-bridge'),
      nats: nats.config.nats,
      ingress: stack.ingress,
      pool: stack.pool,
      logger,
    });
    const js = jetstream(nats.connection);
    // The instance exists only once the bridge has delivered the message: until then its result is not found.
    const resultOf = async (workflowId: string): Promise<SagaView> => {
      for (;;) {
        try {
          return (await stack.temporal.client.workflow.getHandle(workflowId).result()) as SagaView;
        } catch (error) {
          if ((error as Error).name !== 'WorkflowNotFoundError') throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const viaJetStream = async () => {
      const event = exportEvent();
      await publish(js, nats, event);
      const view = await resultOf(workflowIdOf(event));
      if (view.status !== 'completed') throw new Error(`${view.workflowId} ended ${view.status}`);
    };
    const viaIngress = async () => {
      const view = await stack.runToEnd(exportEvent());
      if (view.status !== 'completed') throw new Error(`${view.workflowId} ended ${view.status}`);
    };
    const rates = await compareRates(viaJetStream, viaIngress, RUNS, CONCURRENCY);

    // Steady rate: one start event every 1/RATE s, the lag sampled every 100 ms until it is back to 0.
    const samples: number[] = [];
    const published: Promise<void>[] = [];
    const total = RATE * SECONDS;
    const started = Date.now();
    const sampler = setInterval(() => {
      void lagOf(nats).then((lag) => samples.push(lag));
    }, 100);
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / RATE;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      published.push(publish(js, nats, exportEvent()));
    }
    await Promise.all(published);
    const caughtUpAt = Date.now();
    await waitUntil(async () => (await lagOf(nats)) === 0, 'the consumer to catch up');
    clearInterval(sampler);
    return {
      sagas_per_s_jetstream: rates.saga,
      sagas_per_s_ingress: rates.baseline,
      ratio_jetstream_ingress: rates.saga / rates.baseline,
      steady_rate_per_s: RATE,
      lag_mean: samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length),
      lag_p95: quantile(samples, 0.95),
      lag_max: Math.max(0, ...samples),
      catch_up_after_last_ms: Date.now() - caughtUpAt,
    };
  } finally {
    await bridge?.drain();
    await stack.close();
    await nats.cleanup();
  }
}

/** A backlog drained by the bridge vs ingested directly, on Temporal and Postgres without workers. */
async function backlogDrain(): Promise<Record<string, number>> {
  const pg = await benchPostgres();
  const server = await startDevServer({ ip: '127.0.0.1', port: await freePort(), namespace: 'default' });
  const temporal = createTemporalFacade({ address: server.address, namespace: 'default' });
  const ingress = createSagaIngress({
    pool: pg.pool,
    logger,
    temporal: createSagaTemporal(temporal, { taskQueuePrefix: '' }),
  });
  const nats = await startTestNats();
  let bridge: SagaBridge | undefined;
  try {
    const js = jetstream(nats.connection);
    const batch = nats.config.nats.bridge.batchSize;
    // Published in parallel chunks before any bridge consumes: the backlog is in the stream when the clock starts.
    const events = Array.from({ length: BACKLOG }, exportEvent);
    for (let i = 0; i < events.length; i += 500) {
      await Promise.all(events.slice(i, i + 500).map((event) => publish(js, nats, event)));
    }
    const bridgeStart = Date.now();
    bridge = await startSagaBridge({
      connection: await nats.connect('bench-bridge'),
      nats: nats.config.nats,
      ingress,
      pool: pg.pool,
      logger,
    });
    await waitUntil(async () => (await lagOf(nats)) === 0, 'the backlog to drain');
    const bridgeMs = Date.now() - bridgeStart;

    const direct = Array.from({ length: BACKLOG }, exportEvent);
    const directStart = Date.now();
    await closedLoop(Math.ceil(direct.length / batch), 1, async () => {
      const chunk = direct.splice(0, batch);
      await ingress.ingestEvents(chunk);
    });
    const directMs = Date.now() - directStart;
    return {
      backlog_events: BACKLOG,
      drain_s_bridge: bridgeMs / 1000,
      drain_s_direct: directMs / 1000,
      events_per_s_bridge: BACKLOG / (bridgeMs / 1000),
      ratio_direct_bridge_time: directMs / bridgeMs,
    };
  } finally {
    await bridge?.drain();
    await nats.cleanup();
    await temporal.close();
    await server.stop();
    await pg.close();
  }
}

/** Runs both parts; each starts and stops its own servers. */
export async function benchSagaJetStream(): Promise<Record<string, number>> {
  return { ...(await throughputAndLag()), ...(await backlogDrain()) };
}
