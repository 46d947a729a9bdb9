/** Tracing of a test process with its spans kept in memory, as the product starts it with an OTLP endpoint. */
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startTracing, type Tracing } from '../../core/tracing.js';

/** Starts this process's tracing with every finished span in `exporter`; shut `tracing` down after the tests. */
export async function startInMemoryTracing(
  serviceName: string,
): Promise<{ tracing: Tracing; exporter: InMemorySpanExporter }> {
  const exporter = new InMemorySpanExporter();
  const tracing = await startTracing(
    { endpoint: undefined, serviceName },
    { spanProcessor: new SimpleSpanProcessor(exporter) },
  );
  if (!tracing) throw new Error('tracing did not start with an in-memory span processor');
  return { tracing, exporter };
}
