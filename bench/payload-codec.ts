/**
 * What the payload codec costs: the product's data converter (`dataConverterOf`: AES-256-GCM codec of a generated
 * 32-byte key and the failure converter) on a client and workers of their own vs the SDK's default converter, on the
 * same dev server, Postgres and two cores in the same process. Off and on alternate in short rounds (see `ROUNDS`) so
 * drift of the machine hits both sides alike: simulation throughput in a closed loop (workflows/s, ratio on/off)
 * and pack-approval ingestion latency through the API at a steady rate (p50/p99, ratio on/off). A pure-CPU figure
 * comes first, on a quiet machine: JSON conversion of a typical payload (a pack-approval event) alone vs with the
 * codec's encode and decode (µs per payload). Goal: the codec costs under 10 % (throughput ratio ≥ 0.9, latency
 * ratios ≤ 1.1).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type PayloadCodec } from '@temporalio/common';
import { buildApp } from '../api/app.js';
import { loadBenchConfig, loadConfig, loadWebhookConfig, PAYLOAD_CODEC_KEY_BYTES } from '../core/config.js';
import { generateSecret, generateWebhookSecret } from '../core/local-secrets.js';
import { dataConverterOf } from '../core/payload-codec.js';
import { Scope } from '../core/scopes.js';
import { listDeliveries } from '../db/queries/pack-approvals.js';
import { startPolicyEngine } from '../policy-engine/server.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../test/support/auth.js';
import { postSignedEvent, sampleEvent } from '../test/support/pack-approvals.js';
import { steady } from './saga-ingress.js';
import {
  benchPackApprovalDeps,
  closedLoop,
  logger,
  quantile,
  runBenchSimulation,
  startBenchStack,
  type BenchWorkers,
} from './support.js';

const bench = loadBenchConfig();
const { runs: RUNS, concurrency: CONCURRENCY } = bench.throughput;
const { ingestRate: RATE, ingestSeconds: SECONDS } = bench.packApprovals;
/** Seconds of one ingestion round: half of `BENCH_INGEST_SECONDS`. */
const ROUND_SECONDS = Math.max(1, Math.round(SECONDS / 2));
/** Conversions per side of the CPU figure, in alternating batches. */
const CPU_CONVERSIONS = 20_000;
const CPU_BATCH = 1_000;
const SIDES = ['off', 'on'] as const;
type Side = (typeof SIDES)[number];
/**
 * The order of the measured rounds (off, on, on, off, on, off, off, on): a drift of the machine during the run cancels
 * out, and a burst of other load on it falls on one short round of one side, not on half of the figure.
 */
const ROUNDS: readonly Side[] = ['off', 'on', 'on', 'off', 'on', 'off', 'off', 'on'];

/** Microseconds per payload of JSON conversion alone and with the codec's encode and decode, alternating batches. */
async function cpuFigures(codec: PayloadCodec) {
  const event = sampleEvent();
  const plain = async () => {
    defaultPayloadConverter.fromPayload(defaultPayloadConverter.toPayload(event));
  };
  const coded = async () => {
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(event)]);
    const [decoded] = await codec.decode([encoded!]);
    defaultPayloadConverter.fromPayload(decoded!);
  };
  const elapsed = { off: 0, on: 0 };
  for (const one of [plain, coded]) for (let i = 0; i < CPU_BATCH; i++) await one(); // warm-up of both
  for (let done = 0; done < CPU_CONVERSIONS; done += CPU_BATCH) {
    for (const [side, one] of [
      ['off', plain],
      ['on', coded],
    ] as const) {
      const started = performance.now();
      for (let i = 0; i < CPU_BATCH; i++) await one();
      elapsed[side] += performance.now() - started;
    }
  }
  const us = (side: Side) => (elapsed[side] * 1000) / CPU_CONVERSIONS;
  return {
    cpu_payload_bytes: defaultPayloadConverter.toPayload(event).data!.length,
    cpu_json_us: us('off'),
    cpu_json_codec_us: us('on'),
    cpu_codec_added_us: us('on') - us('off'),
  };
}

export async function benchPayloadCodec(): Promise<Record<string, number>> {
  const config = loadConfig({
    AUTH_JWT_ISSUER: TEST_ISSUER,
    AUTH_JWT_AUDIENCE: TEST_AUDIENCE,
    PACK_EVENTS_RATE_LIMIT_PER_MINUTE: '1000000',
    PAYLOAD_CODEC_KEYS: `bench:${randomBytes(PAYLOAD_CODEC_KEY_BYTES).toString('base64')}`,
  });
  const dataConverter = await dataConverterOf(config);
  const codec = dataConverter.payloadCodecs![0]!;
  const cpu = await cpuFigures(codec);

  const inbox = await mkdtemp(join(tmpdir(), 'stellaops-bench-inbox-'));
  const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
  const auth = await createTestSigner();
  const engine = await startPolicyEngine();
  const stack = await startBenchStack({
    policyEngineUrl: engine.url,
    policyWebhook: loadWebhookConfig({}),
    packApprovals: benchPackApprovalDeps(inbox, secrets.linkSecret),
  });
  const workers: Record<Side, BenchWorkers> = {
    off: { temporal: stack.temporal, taskQueuePrefix: '' },
    on: await stack.addWorkers({ dataConverter, taskQueuePrefix: 'codec-' }),
  };
  // The API of each side, as `npm run api` builds it: its client's converter, the codec endpoint with the codec on.
  const deps = { config, logger, pool: stack.pool, verifyToken: auth.verifier, packApprovalSecrets: secrets };
  const apps = {
    off: await buildApp({ ...deps, ...workers.off }),
    on: await buildApp({ ...deps, ...workers.on, payloadCodec: codec }),
  };
  const writer = await auth.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite] });

  const simulation = (side: Side) => () => runBenchSimulation(workers[side].temporal, workers[side].taskQueuePrefix);

  try {
    const urls = {
      off: await apps.off.listen({ host: '127.0.0.1', port: 0 }),
      on: await apps.on.listen({ host: '127.0.0.1', port: 0 }),
    };
    /** Ingests `event` through the side's API; resolves when it answered 202/200. */
    const post = async (side: Side, event: ReturnType<typeof sampleEvent>) => {
      const res = await postSignedEvent(urls[side], event, { token: writer, secret: secrets.eventSecrets[0]! });
      await res.arrayBuffer();
      if (res.status !== 202 && res.status !== 200) throw new Error(`ingestion (${side}) answered ${res.status}`);
    };
    /**
     * One steady-rate ingestion round; waits until its last approval's notifications went out, so the next round
     * starts with the workers idle.
     */
    const ingestRound = async (side: Side) => {
      let last = sampleEvent();
      const latencies = await steady(RATE, ROUND_SECONDS, 0, async () => {
        const event = sampleEvent();
        last = event;
        await post(side, event);
      });
      for (;;) {
        const deliveries = await listDeliveries(stack.pool, last.tenantId, last.runId, last.approvalId);
        if (deliveries.length > 0 && deliveries.every((d) => d.status === 'sent')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      return latencies;
    };

    // Warm-up of both sides, long enough for the throughput to settle (it climbs over the first hundred runs).
    for (const side of SIDES) await closedLoop(Math.max(50, Math.ceil(RUNS / 2)), CONCURRENCY, simulation(side));
    const throughput: Record<Side, number[]> = { off: [], on: [] };
    for (const side of ROUNDS) {
      throughput[side].push(await closedLoop(Math.ceil(RUNS / 2), CONCURRENCY, simulation(side)));
    }
    for (const side of SIDES) for (let i = 0; i < 20; i++) await post(side, sampleEvent()); // warm-up of both APIs
    const ingest: Record<Side, number[]> = { off: [], on: [] };
    for (const side of ROUNDS) ingest[side].push(...(await ingestRound(side)));

    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const simPerS = { off: mean(throughput.off), on: mean(throughput.on) };
    const p = (side: Side, q: number) => quantile(ingest[side], q);
    return {
      ...cpu,
      cpu_ratio: cpu.cpu_json_codec_us / cpu.cpu_json_us,
      sim_runs_per_round: Math.ceil(RUNS / 2),
      sim_concurrency: CONCURRENCY,
      sim_off_per_s: simPerS.off,
      sim_on_per_s: simPerS.on,
      sim_ratio_on_off: simPerS.on / simPerS.off,
      ingest_rate_per_s: RATE,
      ingest_seconds_round: ROUND_SECONDS,
      ingest_requests_side: ingest.on.length,
      ingest_off_p50_ms: p('off', 0.5),
      ingest_on_p50_ms: p('on', 0.5),
      ingest_off_p99_ms: p('off', 0.99),
      ingest_on_p99_ms: p('on', 0.99),
      ingest_p50_ratio: p('on', 0.5) / p('off', 0.5),
      ingest_p99_ratio: p('on', 0.99) / p('off', 0.99),
    };
  } finally {
    await Promise.allSettled([apps.off.close(), apps.on.close()]);
    await stack.close();
    await engine.close();
    await rm(inbox, { recursive: true, force: true });
  }
}
