import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../../activities/shared/http.js';
import { createLogger } from '../../core/logger.js';
import type { Tracing } from '../../core/tracing.js';
import { startInMemoryTracing } from '../support/tracing.js';

/** A loopback receiver that keeps the headers of every request it answers. */
async function startReceiver(): Promise<{ server: Server; url: URL; received: IncomingHttpHeaders[] }> {
  const received: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: new URL(`http://127.0.0.1:${port}/hook`), received };
}

/** A logger whose JSON lines are collected. */
function collectingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ destination, level: 'debug' }), lines };
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await new Promise((resolve) => receiver.server.close(resolve));
});

const post = (logger: ReturnType<typeof createLogger>, headers?: Record<string, string>) =>
  postJson({ url: receiver.url, body: '{}', timeoutMs: 5_000, logger, what: 'test call', ...(headers && { headers }) });

describe('outbound calls with tracing off', () => {
  it('invents no traceparent and logs no trace fields, even inside a span of the no-op API', async () => {
    const { logger, lines } = collectingLogger();
    receiver.received.length = 0;
    await trace.getTracer('test').startActiveSpan('outer', async (span) => {
      await post(logger);
      span.end();
    });
    expect(receiver.received[0]?.traceparent).toBeUndefined();
    expect(lines[0]).not.toHaveProperty('traceId');
  });
});

describe('outbound calls with tracing on', () => {
  let tracing: Tracing;
  let exporter: InMemorySpanExporter;
  beforeAll(async () => {
    ({ tracing, exporter } = await startInMemoryTracing('test'));
  });
  afterAll(async () => {
    await tracing.shutdown();
  });

  it('sends the active span as traceparent and logs its trace and span ids', async () => {
    const { logger, lines } = collectingLogger();
    receiver.received.length = 0;
    const ids = await trace.getTracer('test').startActiveSpan('activity', async (span) => {
      await post(logger);
      span.end();
      return span.spanContext();
    });
    expect(receiver.received[0]?.traceparent).toBe(`00-${ids.traceId}-${ids.spanId}-01`);
    expect(lines[0]).toMatchObject({ traceId: ids.traceId, spanId: ids.spanId, msg: 'test call delivered: HTTP 204' });
    expect(exporter.getFinishedSpans().map((s) => s.spanContext().traceId)).toContain(ids.traceId);
  });

  it('keeps an explicit traceparent (a saga command) over the active span', async () => {
    const { logger } = collectingLogger();
    receiver.received.length = 0;
    const explicit = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await trace.getTracer('test').startActiveSpan('activity', async (span) => {
      await post(logger, { traceparent: explicit });
      span.end();
    });
    expect(receiver.received[0]?.traceparent).toBe(explicit);
  });

  it('adds no traceparent outside any span', async () => {
    const { logger, lines } = collectingLogger();
    receiver.received.length = 0;
    await post(logger);
    expect(receiver.received[0]?.traceparent).toBeUndefined();
    expect(lines[0]).not.toHaveProperty('traceId');
  });
});
