/**
 * Pack approvals: ingestion latency at a steady rate against the real stack; ingestion throughput with the Temporal
 * call replaced by a no-op vs a bare Fastify POST (ratio, goal ≥ 0.8); ack → resume callback latency, the ack sent
 * once the request's notifications went out (as an approver acting on the mail would).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { buildApp } from '../api/app.js';
import type { TemporalFacade } from '../api/temporal/facade.js';
import { loadBenchConfig, loadConfig, loadWebhookConfig } from '../core/config.js';
import { generateSecret, generateWebhookSecret } from '../core/local-secrets.js';
import { Scope } from '../core/scopes.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../test/support/auth.js';
import { startHttpReceiver } from '../test/support/http-sinks.js';
import { listDeliveries } from '../db/queries/pack-approvals.js';
import { postSignedEvent, sampleEvent } from '../test/support/pack-approvals.js';
import { benchPackApprovalDeps, closedLoop, logger, quantile, startBenchStack } from './support.js';

const {
  ingestRate: RATE,
  ingestSeconds: SECONDS,
  throughputRequests: THROUGHPUT_REQUESTS,
  acks: ACKS,
} = loadBenchConfig().packApprovals;
const CONCURRENCY = 16;

export async function benchPackApprovals(): Promise<Record<string, number>> {
  const inbox = await mkdtemp(join(tmpdir(), 'stellaops-bench-inbox-'));
  const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
  const auth = await createTestSigner();
  const config = loadConfig({
    AUTH_JWT_ISSUER: TEST_ISSUER,
    AUTH_JWT_AUDIENCE: TEST_AUDIENCE,
    PACK_EVENTS_RATE_LIMIT_PER_MINUTE: '1000000',
  });
  const runner = await startHttpReceiver(() => (res) => res.writeHead(200).end());
  const stack = await startBenchStack({
    policyEngineUrl: 'http://127.0.0.1:1',
    policyWebhook: loadWebhookConfig({}),
    packApprovals: benchPackApprovalDeps(inbox, secrets.linkSecret),
  });
  const { pool, temporal } = stack;
  const app = await buildApp({
    config,
    logger,
    pool,
    temporal,
    verifyToken: auth.verifier,
    packApprovalSecrets: secrets,
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const writer = await auth.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite] });
  const approver = await auth.token({ tenant: 'acme', scopes: [Scope.PacksApprove, 'deploy:prod'] });
  const post = async (baseUrl: string, event: unknown) => {
    const res = await postSignedEvent(baseUrl, event, { token: writer, secret: secrets.eventSecrets[0]! });
    await res.arrayBuffer();
    if (res.status !== 202 && res.status !== 200) throw new Error(`ingestion answered ${res.status}`);
  };

  // No-op Temporal and a bare Fastify POST, for the throughput ratio.
  const noopTemporal = {
    ...temporal,
    withDeadline: <T>(fn: () => Promise<T>) => fn(),
    client: { workflow: { signalWithStart: async () => undefined } },
  } as unknown as TemporalFacade;
  const noopApp = await buildApp({
    config,
    logger,
    pool,
    temporal: noopTemporal,
    verifyToken: auth.verifier,
    packApprovalSecrets: secrets,
  });
  const noopBase = await noopApp.listen({ host: '127.0.0.1', port: 0 });
  const bare = Fastify();
  bare.post('/notifications/pack-approvals', async (_req, reply) => reply.code(202).send({ status: 'accepted' }));
  const bareBase = await bare.listen({ host: '127.0.0.1', port: 0 });

  try {
    // 1. Throughput (first, while no workflow is busy): ingestion with a no-op Temporal call vs a bare Fastify POST, same client, same machine.
    const ingestion = await closedLoop(THROUGHPUT_REQUESTS, CONCURRENCY, () => post(noopBase, sampleEvent()));
    const bareRate = await closedLoop(THROUGHPUT_REQUESTS, CONCURRENCY, () => post(bareBase, sampleEvent()));

    // 2. Steady rate against the real stack (open loop: requests leave on schedule whatever the answers).
    const latencies: number[] = [];
    const total = RATE * SECONDS;
    await Promise.all(
      Array.from(
        { length: total },
        (_, i) =>
          new Promise<void>((resolve, reject) =>
            setTimeout(
              () => {
                const started = performance.now();
                post(base, sampleEvent()).then(() => {
                  latencies.push(performance.now() - started);
                  resolve();
                }, reject);
              },
              (i * 1000) / RATE,
            ),
          ),
      ),
    );

    // 3. Ack → resume callback latency.
    const ackLatencies: number[] = [];
    for (let i = 0; i < ACKS; i++) {
      const event = sampleEvent({ resumeCallback: { url: `${runner.url}/resume`, token: 'bench-resume-token-123' } });
      await post(base, event);
      // An approver decides after the request's notification reached them: wait for its round to be sent.
      for (;;) {
        const deliveries = await listDeliveries(pool, event.tenantId, event.runId, event.approvalId);
        if (deliveries.length > 0 && deliveries.every((d) => d.status === 'sent')) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      for (;;) {
        const acked = performance.now();
        const res = await fetch(`${base}/notifications/pack-approvals/${event.runId}/deploy-prod/ack`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${approver}` },
          body: JSON.stringify({ decision: 'approve' }),
        });
        await res.arrayBuffer();
        if (res.status === 404) {
          await new Promise((r) => setTimeout(r, 20)); // the workflow has not taken the request yet
          continue;
        }
        if (res.status !== 200) throw new Error(`ack answered ${res.status}`);
        const ackedAt = Date.now() - (performance.now() - acked);
        let resumed;
        while (!(resumed = runner.received.find((r) => r.body.includes(event.runId)))) {
          await new Promise((r) => setTimeout(r, 5));
        }
        ackLatencies.push(resumed.receivedAt - ackedAt);
        break;
      }
    }
    return {
      ingest_rate_per_s: RATE,
      ingest_requests: latencies.length,
      ingest_p50_ms: quantile(latencies, 0.5),
      ingest_p99_ms: quantile(latencies, 0.99),
      noop_temporal_per_s: ingestion,
      bare_fastify_per_s: bareRate,
      throughput_ratio: ingestion / bareRate,
      ack_to_resume_p50_ms: quantile(ackLatencies, 0.5),
      ack_to_resume_p99_ms: quantile(ackLatencies, 0.99),
    };
  } finally {
    await Promise.allSettled([app.close(), noopApp.close(), bare.close()]);
    await runner.close();
    await stack.close();
    await rm(inbox, { recursive: true, force: true });
  }
}
