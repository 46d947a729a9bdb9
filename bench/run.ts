/**
 * `npm run bench [-- metrics|throughput|pack-approvals|sagas|codec]`: runs the benchmarks and prints their figures.
 * Each reports a ratio against a baseline measured in the same run on the same machine; none is a pass/fail test.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { benchMetricsLatency } from './metrics-latency.js';
import { benchPackApprovals } from './pack-approvals.js';
import { benchPayloadCodec } from './payload-codec.js';
import { benchSagaIngress } from './saga-ingress.js';
import { benchSagaJetStream } from './saga-jetstream.js';
import { benchSagaThroughput } from './saga-throughput.js';
import { benchSimulationThroughput } from './simulation-throughput.js';

Runtime.install({ logger: new DefaultLogger('WARN') });
const which = process.argv[2] ?? 'all';
const format = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `  ${k.padEnd(20)} ${Number.isInteger(v) ? v : v.toFixed(3)}`)
    .join('\n');

if (which === 'all' || which === 'metrics') {
  console.log('metrics endpoint latency (1k vs large history):');
  console.log(format(await benchMetricsLatency()));
}
if (which === 'all' || which === 'throughput') {
  console.log('simulation throughput vs self-check (same activities, same server):');
  console.log(format(await benchSimulationThroughput()));
}
if (which === 'all' || which === 'pack-approvals') {
  console.log('pack approvals: ingestion latency, throughput vs bare Fastify, ack → resume latency:');
  console.log(format(await benchPackApprovals()));
}
if (which === 'all' || which === 'sagas' || which === 'saga-throughput') {
  console.log('saga throughput, events in → sagas completed, vs self-check (same activities, same server):');
  console.log(format(await benchSagaThroughput()));
}
if (which === 'all' || which === 'sagas' || which === 'saga-ingress') {
  console.log('saga ingress latency at a steady rate with the workers busy, vs /health of the same app:');
  console.log(format(await benchSagaIngress()));
}
if (which === 'all' || which === 'sagas' || which === 'saga-jetstream') {
  console.log('sagas over JetStream vs the ingress: throughput, consumer lag at a steady rate, backlog drain:');
  console.log(format(await benchSagaJetStream()));
}
if (which === 'all' || which === 'codec') {
  console.log('payload codec off vs on (same server): CPU per payload, simulation throughput, ingestion latency:');
  console.log(format(await benchPayloadCodec()));
}
