/**
 * Request tracing on a real Fastify app: a server span per request named by the route template, continuing an
 * incoming `traceparent`, active while the handler runs, ended with the response status; nothing without tracing.
 */
import type { InMemorySpanExporter, ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerRequestTracing } from '../../api/plugins/tracing.js';
import { currentTracing, type Tracing } from '../../core/tracing.js';
import { startInMemoryTracing } from '../support/tracing.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const INCOMING = `00-${TRACE_ID}-b7ad6b7169203331-01`;

/** An app whose handlers report the span active while they run. */
async function tracedApp(): Promise<{ app: FastifyInstance; seen: (string | undefined)[] }> {
  const app = Fastify();
  const seen: (string | undefined)[] = [];
  registerRequestTracing(app);
  const activeSpanId = () => trace.getActiveSpan()?.spanContext().spanId;
  app.get('/things/:id', async () => {
    seen.push(activeSpanId());
    return { ok: true };
  });
  app.post('/things', async () => {
    seen.push(activeSpanId());
    return { ok: true };
  });
  app.get('/broken', async () => {
    throw new Error('boom');
  });
  app.get('/missing', async (_req, reply) => reply.code(404).send({}));
  await app.ready();
  return { app, seen };
}

describe('request tracing off', () => {
  it('adds no hooks when this process started no tracing', async () => {
    expect(currentTracing()).toBeUndefined();
    const { app, seen } = await tracedApp();
    const res = await app.inject({ method: 'GET', url: '/things/1', headers: { traceparent: INCOMING } });
    expect(res.statusCode).toBe(200);
    expect(seen).toEqual([undefined]);
    await app.close();
  });
});

describe('request tracing on', () => {
  let exporter: InMemorySpanExporter;
  let tracing: Tracing;
  let app: FastifyInstance;
  let seen: (string | undefined)[];
  beforeAll(async () => {
    ({ tracing, exporter } = await startInMemoryTracing('request-tracing-test'));
  });
  // An app of each test's own: its hooks are registered while the test runs.
  beforeEach(async () => {
    ({ app, seen } = await tracedApp());
  });
  afterEach(async () => {
    await app.close();
    exporter.reset();
  });
  afterAll(async () => {
    await tracing?.shutdown();
  });

  const only = (): ReadableSpan => {
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    return spans[0]!;
  };

  it('names the span by the route template, never the URL, and records method, route and status', async () => {
    const res = await app.inject({ method: 'GET', url: '/things/secret-token-123?token=abc' });
    expect(res.statusCode).toBe(200);
    const span = only();
    expect(span.name).toBe('GET /things/:id');
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.instrumentationLibrary.name).toBe('stellaops-api');
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'http.route': '/things/:id',
      'http.response.status_code': 200,
    });
    expect(JSON.stringify(span.attributes)).not.toContain('secret-token-123');
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('continues an incoming traceparent, and is the active span while the handler runs (a body parsed too)', async () => {
    await app.inject({ method: 'POST', url: '/things', headers: { traceparent: INCOMING }, payload: { a: 1 } });
    const span = only();
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanId).toBe('b7ad6b7169203331');
    expect(seen).toEqual([span.spanContext().spanId]);
  });

  it('starts a new trace without a traceparent', async () => {
    await app.inject({ method: 'GET', url: '/things/2' });
    const span = only();
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(seen).toEqual([span.spanContext().spanId]);
  });

  it('marks a 5xx answer as an error, a 4xx not', async () => {
    expect((await app.inject({ method: 'GET', url: '/broken' })).statusCode).toBe(500);
    const failed = only();
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.attributes['http.response.status_code']).toBe(500);
    exporter.reset();
    expect((await app.inject({ method: 'GET', url: '/missing' })).statusCode).toBe(404);
    expect(only().status.code).toBe(SpanStatusCode.UNSET);
  });

  it('names a request that matched no route as such, never by its URL', async () => {
    expect((await app.inject({ method: 'GET', url: '/nowhere/secret' })).statusCode).toBe(404);
    const span = only();
    expect(span.name).toBe('GET unmatched route');
    expect(span.attributes['http.route']).toBe('unmatched route');
  });
});
