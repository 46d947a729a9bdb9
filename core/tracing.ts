/**
 * OpenTelemetry tracing of one process: the tracer provider, the W3C trace-context propagator and the helpers the
 * outbound HTTP layer and the logger read the active span through. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set
 * (or a test hands in its own span processor): then no provider is registered, the OpenTelemetry API stays a no-op
 * and nothing is traced or invented.
 */
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type SpanContext,
} from '@opentelemetry/api';
import { createRequire } from 'node:module';
import type { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSink } from '@temporalio/worker';
import type { OtelConfig } from './config.js';

/** A started tracer provider: `shutdown` flushes the spans still buffered and unregisters the provider. */
export interface Tracing {
  provider: NodeTracerProvider;
  /** Where the spans go: workflow spans reach it through the worker's `exporter` sink. */
  spanProcessor: SpanProcessor;
  resource: Resource;
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when `config.endpoint` is set (spans batched to `{endpoint}/v1/traces` over OTLP/HTTP) or when
 * `spanProcessor` is given (tests: an in-memory exporter behind a simple processor); otherwise returns undefined
 * and registers nothing, so tracing costs nothing when it is off.
 */
export async function startTracing(
  config: OtelConfig,
  options: { spanProcessor?: SpanProcessor } = {},
): Promise<Tracing | undefined> {
  if (!options.spanProcessor && !config.endpoint) return undefined;
  // Loaded only here: a process with tracing off never loads the SDK, only the no-op API the helpers below read.
  const [{ W3CTraceContextPropagator }, { Resource }, { BatchSpanProcessor }, { NodeTracerProvider }] =
    await Promise.all([
      import('@opentelemetry/core'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/sdk-trace-node'),
    ]);
  let processor = options.spanProcessor;
  if (!processor) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    processor = new BatchSpanProcessor(
      new OTLPTraceExporter({ url: `${(config.endpoint ?? '').replace(/\/+$/, '')}/v1/traces` }),
    );
  }
  const resource = new Resource({ 'service.name': config.serviceName });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Registers the AsyncLocalStorage context manager too, so an activity's span is active inside its awaits.
  provider.register({ propagator: new W3CTraceContextPropagator() });
  const tracing: Tracing = {
    provider,
    spanProcessor: processor,
    resource,
    async shutdown() {
      if (current === tracing) current = undefined;
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
  current = tracing;
  return tracing;
}

/** The tracing this process started (the provider is process-global); undefined while tracing is off. */
let current: Tracing | undefined;

/** The tracing started in this process, if any: what decides whether request spans and interceptors are installed. */
export function currentTracing(): Tracing | undefined {
  return current;
}

/** The span context of the active span, when there is one with valid ids (none while tracing is off). */
function activeSpanContext(): SpanContext | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
}

/**
 * The W3C `traceparent` of the active span (an activity's span from the Temporal interceptor, a request's span),
 * or undefined when no span is active or tracing is off: a trace is continued, never invented.
 */
export function activeTraceparent(): string | undefined {
  if (!activeSpanContext()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * Runs `fn` in a span continuing the trace of `traceparent`, the W3C trace context an event carries (a pack-approval
 * event's `traceparent`, a saga event's `metadata.traceparent`): the Temporal client's spans (the workflow start or
 * signal) and so the workflow and its activities join the trace of whoever emitted the event. The span is linked to
 * the span active at the call (the request's), so neither trace loses the other. With tracing off, or no valid
 * `traceparent`, `fn` runs as it is.
 */
export async function withTraceparent<T>(
  traceparent: string | undefined,
  spanName: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!current || !traceparent) return fn();
  const parent = propagation.extract(ROOT_CONTEXT, { traceparent });
  const remote = trace.getSpanContext(parent);
  if (!remote || !isSpanContextValid(remote)) return fn();
  const caller = activeSpanContext();
  const span = trace
    .getTracer('stellaops-events')
    .startSpan(spanName, { kind: SpanKind.CONSUMER, ...(caller && { links: [{ context: caller }] }) }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
    throw error;
  } finally {
    span.end();
  }
}

/** `traceId` and `spanId` of the active span, for log lines (pino `mixin`); empty when no span is active. */
export function activeTraceFields(): { traceId?: string; spanId?: string } {
  const spanContext = activeSpanContext();
  return spanContext ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : {};
}

/** The Temporal side of tracing: what the API's client and the workers install when tracing is on. */
export interface TemporalTracing {
  /** The client's workflow interceptor: a start, signal or update carries the active span to the workflow. */
  clientInterceptors: WorkflowClientInterceptor[];
  /** Activity spans, children of the workflow span that scheduled them, active while the activity runs. */
  activityInterceptors: ActivityInterceptorsFactory[];
  /** Modules the workflow bundle must include (`bundleWorkflowCode`'s `workflowInterceptorModules`). */
  workflowInterceptorModules: string[];
  /** The `exporter` sink the workflow interceptors hand their spans to, out of the sandbox. */
  sinks: { exporter: InjectedSink<OpenTelemetryWorkflowExporter> };
}

const require = createRequire(import.meta.url);

/** The Temporal interceptors of a started `tracing` (loaded only then, so a process with tracing off never does). */
export async function temporalTracingOf(tracing: Tracing): Promise<TemporalTracing> {
  const otel = await import('@temporalio/interceptors-opentelemetry');
  return {
    clientInterceptors: [new otel.OpenTelemetryWorkflowClientInterceptor()],
    activityInterceptors: [
      (ctx) => ({
        inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
        outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
    workflowInterceptorModules: [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
    sinks: { exporter: otel.makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}
