/**
 * Request tracing: a server span per request, continuing an incoming `traceparent`, active while the route runs so
 * that the Temporal client interceptor's spans (a workflow start, a signal, an update) are its children. Installed
 * only when tracing is on.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { currentTracing } from '../../core/tracing.js';

/** Adds the request span hooks to `app` when this process started tracing; otherwise adds nothing. */
export function registerRequestTracing(app: FastifyInstance): void {
  if (!currentTracing()) return;
  const tracer = trace.getTracer('stellaops-api');
  const spans = new WeakMap<FastifyRequest, { span: Span; active: ReturnType<typeof context.active> }>();
  app.addHook('onRequest', (req, _reply, done) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    // Named by the route's template, never the URL itself, which may carry a token.
    const route = req.routeOptions.url ?? 'unmatched route';
    const span = tracer.startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route } },
      parent,
    );
    const active = trace.setSpan(parent, span);
    spans.set(req, { span, active });
    context.with(active, done);
  });
  // Body parsing runs in the socket's callbacks, outside the context entered above: entered again for the handler.
  app.addHook('preHandler', (req, _reply, done) => {
    const entry = spans.get(req);
    if (entry) context.with(entry.active, done);
    else done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const entry = spans.get(req);
    if (entry) {
      entry.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
      entry.span.end();
    }
    done();
  });
}
