/**
 * One trace from an API request to the last outbound call: the request's `traceparent` is continued by the request
 * span, the client's workflow start, the workflow and activity spans, and reaches the Policy Engine the activity calls;
 * the trace context an event carries (a pack-approval event's `traceparent`, a saga event's `metadata.traceparent`)
 * is the parent of the signal that delivers it.
 */
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivitiesByQueue } from '../../activities/index.js';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig, loadWebhookConfig } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { currentTracing, startTracing, temporalTracingOf, type Tracing } from '../../core/tracing.js';
import { bundleWorkflows, createWorkerHost } from '../../workers/host.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';
import { eventually, startHttpReceiver } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { sampleEvent, signedHeaders } from '../support/pack-approvals.js';
import { advisoryPublished, RAPID_RESET } from '../support/sagas.js';
import { simulationBody } from '../support/simulations.js';
import { createDevServerEnv, uniqueName } from '../support/temporal.js';
import { startInMemoryTracing } from '../support/tracing.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('tracing off', () => {
  it('starts nothing without an OTLP endpoint: no tracing, no client interceptors', async () => {
    expect(await startTracing(loadConfig({}).otel)).toBeUndefined();
    expect(currentTracing()).toBeUndefined();
    const temporal = createTemporalFacade({ address: '127.0.0.1:1', namespace: 'default' });
    expect(temporal.client.options.interceptors.workflow ?? []).toEqual([]);
    await temporal.close();
  });
});

describe('tracing on', () => {
  let exporter: InMemorySpanExporter;
  let tracing: Tracing;
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;

  beforeAll(async () => {
    ({ tracing, exporter } = await startInMemoryTracing('tracing-test'));
    [env, db] = await Promise.all([createDevServerEnv(), createTestDatabase()]);
  }, 180_000);
  afterAll(async () => {
    await tracing?.shutdown();
    await db?.drop();
    await env?.teardown();
  });

  const logger = createLogger({ level: 'warn', name: 'tracing-test' });

  /** The API over a Temporal client with tracing's interceptors, on task queues of its own. */
  async function tracedApi() {
    const signer = await createTestSigner();
    const temporalTracing = await temporalTracingOf(tracing);
    const temporal = createTemporalFacade({
      address: env.address,
      namespace: env.namespace ?? 'default',
      interceptors: temporalTracing.clientInterceptors,
    });
    const taskQueuePrefix = `${uniqueName('trace')}-`;
    const eventSecret = generateWebhookSecret();
    const app = await buildApp({
      config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
      logger,
      pool: db.pool,
      temporal,
      verifyToken: signer.verifier,
      taskQueuePrefix,
      packApprovalSecrets: { eventSecrets: [eventSecret], linkSecret: generateSecret() },
    });
    return { app, temporal, signer, temporalTracing, taskQueuePrefix, eventSecret };
  }

  it('carries one trace id from the API request through the workflow and activity to the Policy Engine call', async () => {
    // The engine refuses the evaluation for good: the first call is all the test needs.
    const engine = await startHttpReceiver(() => (res) => res.writeHead(422).end());
    const { app, temporal, signer, temporalTracing, taskQueuePrefix } = await tracedApi();
    const host = await createWorkerHost({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      queues: ['policy-simulation'],
      activitiesByQueue: createActivitiesByQueue({
        pool: db.pool,
        logger,
        policyEngineUrl: engine.url,
        policyWebhook: loadWebhookConfig({}),
      }),
      workflowBundle: await bundleWorkflows({ tracing: temporalTracing }),
      logger,
      taskQueuePrefix,
      tracing: temporalTracing,
    });
    const running = host.run();
    try {
      const token = await signer.token({ tenant: 'acme', scopes: [Scope.PolicySimulate] });
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/scheduler/policies/simulations',
        headers: { authorization: `Bearer ${token}`, traceparent: INCOMING },
        payload: simulationBody(),
      });
      expect(res.statusCode).toBe(201);

      const call = await eventually(() => engine.received[0], 60_000);
      const [, traceId, spanId] = String(call.headers.traceparent).split('-');
      expect(traceId).toBe(TRACE_ID);

      const spans = await eventually(() => {
        const finished = exporter.getFinishedSpans();
        const names = finished.map((span) => span.name);
        return names.some((name) => name.startsWith('RunActivity')) &&
          names.some((name) => name.startsWith('StartActivity')) &&
          names.some((name) => name.startsWith('POST '))
          ? finished
          : undefined;
      }, 60_000);
      const of = (prefix: string) => spans.filter((span) => span.name.startsWith(prefix));
      for (const prefix of ['POST ', 'StartWorkflow', 'StartActivity', 'RunActivity']) {
        expect(of(prefix).length, prefix).toBeGreaterThan(0);
        for (const span of of(prefix)) expect(span.spanContext().traceId, prefix).toBe(TRACE_ID);
      }
      // The engine got the span of the activity attempt that called it.
      expect(of('RunActivity').map((span) => span.spanContext().spanId)).toContain(spanId);
    } finally {
      host.shutdown();
      await running.catch(() => undefined);
      await app.close();
      await temporal.close();
      await engine.close();
    }
  }, 180_000);

  it("continues the trace an event carries: a pack-approval event's traceparent, a saga event's metadata", async () => {
    // No worker: the signals are the client's spans, which is where the event's trace context must arrive.
    const { app, temporal, signer, eventSecret } = await tracedApi();
    const [packTrace, sagaTrace] = ['a1', 'b2'].map((p) => p.repeat(16));
    try {
      const pack = sampleEvent({ traceparent: `00-${packTrace}-1111111111111111-01` });
      const body = JSON.stringify(pack);
      const packToken = await signer.token({ tenant: pack.tenantId, scopes: [Scope.PacksApprove] });
      const packRes = await app.inject({
        method: 'POST',
        url: '/notifications/pack-approvals',
        headers: {
          authorization: `Bearer ${packToken}`,
          'content-type': 'application/json',
          traceparent: INCOMING,
          ...signedHeaders(eventSecret, body),
        },
        payload: body,
      });
      expect(packRes.statusCode, packRes.body).toBe(202);

      const saga = advisoryPublished(
        RAPID_RESET,
        {},
        {
          tenantId: 'acme',
          correlationId: uniqueName('c'),
          metadata: { traceparent: `00-${sagaTrace}-2222222222222222-01` },
        },
      );
      const sagaToken = await signer.token({ tenant: 'acme', scopes: [Scope.RunnerEventsWrite] });
      const sagaRes = await app.inject({
        method: 'POST',
        url: '/api/v1/events',
        headers: { authorization: `Bearer ${sagaToken}`, traceparent: INCOMING },
        payload: saga,
      });
      expect(sagaRes.statusCode, sagaRes.body).toBe(202);

      const spans = exporter.getFinishedSpans();
      const traceOf = (prefix: string) =>
        spans.filter((span) => span.name.startsWith(prefix)).map((span) => span.spanContext().traceId);
      expect(traceOf('ingest PackApprovalRequested')).toEqual([packTrace]);
      expect(traceOf('ingest Advisory.Published')).toEqual([sagaTrace]);
      // Each delivering signal is a child of its event's span, in its event's trace, not the request's.
      const signals = spans.filter((span) => span.name.startsWith('SignalWithStartWorkflow'));
      expect(signals.map((span) => span.spanContext().traceId).sort()).toEqual([packTrace, sagaTrace].sort());
      // The event's span is linked to the request's, so the request's trace still finds it.
      for (const span of spans.filter((s) => s.name.startsWith('ingest '))) {
        expect(span.links.map((link) => link.context.traceId)).toEqual([TRACE_ID]);
      }
    } finally {
      await app.close();
      await temporal.close();
    }
  }, 180_000);
});
