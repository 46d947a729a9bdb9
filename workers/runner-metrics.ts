/**
 * Metrics of the Runner's worker process, on one prom-client registry the operations port serves beside the Temporal
 * SDK's own metrics: the JetStream bridge (messages by outcome, redeliveries, processing latency, consumer lag,
 * quarantine), effects and Gateway commands (results, durations, breaker state) and saga timers (lateness).
 * Created once per process and handed to the bridge and the activities; tests create their own.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the bridge did with one message. */
export type BridgeOutcome = 'accepted' | 'duplicate' | 'unmatched' | 'late' | 'invalid' | 'quarantined' | 'nak';

/** Breaker states as the `stellaops_runner_breaker_state` gauge reports them. */
export const BREAKER_STATE_VALUES = { closed: 0, half_open: 1, open: 2 } as const;
export type BreakerStateName = keyof typeof BREAKER_STATE_VALUES;

/** The Runner's metric objects. */
export interface RunnerMetrics {
  registry: Registry;
  bridge: {
    /** Messages handled, by outcome. */
    messages: Counter<'outcome'>;
    /** Messages delivered more than once (JetStream's delivery count > 1). */
    redeliveries: Counter<never>;
    /** From pull to ack/nak/term, per message. */
    processingSeconds: Histogram<never>;
    /** Messages of the consumer's filter not yet delivered (`num_pending`), by durable consumer. */
    consumerLag: Gauge<'consumer'>;
    /** Delivered and not yet acknowledged (`num_ack_pending`), by durable consumer. */
    ackPending: Gauge<'consumer'>;
    /** Messages recorded in quarantine by this process, by reason. */
    quarantined: Counter<'reason'>;
  };
  effects: {
    /** Effect and Gateway-command results, by effect (`gateway` for commands) and result type. */
    results: Counter<'effect' | 'result'>;
    /** Duration of one effect or command attempt, by effect. */
    durationSeconds: Histogram<'effect'>;
    /** State of each upstream's breaker (0 closed, 1 half-open, 2 open). */
    breakerState: Gauge<'upstream'>;
    /** Messages published to the workflow stream, by kind (`effect`, `command`, `saga`, `approval`). */
    published: Counter<'kind'>;
  };
  /** How much later than its due time a saga timer fired. */
  timerLatenessSeconds: Histogram<'saga'>;
}

/**
 * Creates the Runner's metrics on a new registry (with the default process metrics unless `defaults` is false).
 * Gauges that read elsewhere at scrape time (quarantine backlog in Postgres) are added by their owner with
 * `registers: [metrics.registry]`.
 */
export function createRunnerMetrics(options: { defaults?: boolean } = {}): RunnerMetrics {
  const registry = new Registry();
  if (options.defaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    bridge: {
      messages: new Counter({
        name: 'stellaops_runner_bridge_messages_total',
        help: 'Aggregate-event messages the JetStream bridge handled, by outcome',
        labelNames: ['outcome'] as const,
        registers,
      }),
      redeliveries: new Counter({
        name: 'stellaops_runner_bridge_redeliveries_total',
        help: 'Messages JetStream delivered to the bridge more than once',
        registers,
      }),
      processingSeconds: new Histogram({
        name: 'stellaops_runner_bridge_processing_seconds',
        help: 'Time from pulling a message to acknowledging (or refusing) it',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      }),
      consumerLag: new Gauge({
        name: 'stellaops_runner_bridge_consumer_lag',
        help: 'Messages of the durable consumer not yet delivered (num_pending)',
        labelNames: ['consumer'] as const,
        registers,
      }),
      ackPending: new Gauge({
        name: 'stellaops_runner_bridge_ack_pending',
        help: 'Messages delivered by the durable consumer and not yet acknowledged',
        labelNames: ['consumer'] as const,
        registers,
      }),
      quarantined: new Counter({
        name: 'stellaops_runner_bridge_quarantined_total',
        help: 'Messages this process recorded in quarantine, by reason',
        labelNames: ['reason'] as const,
        registers,
      }),
    },
    effects: {
      results: new Counter({
        name: 'stellaops_runner_effect_results_total',
        help: 'Effect and Gateway-command results, by effect (gateway for commands) and result type',
        labelNames: ['effect', 'result'] as const,
        registers,
      }),
      durationSeconds: new Histogram({
        name: 'stellaops_runner_effect_duration_seconds',
        help: 'Duration of one effect or Gateway-command attempt',
        labelNames: ['effect'] as const,
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers,
      }),
      breakerState: new Gauge({
        name: 'stellaops_runner_breaker_state',
        help: 'Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open',
        labelNames: ['upstream'] as const,
        registers,
      }),
      published: new Counter({
        name: 'stellaops_runner_workflow_events_published_total',
        help: 'Messages published to the workflow-events stream, by kind',
        labelNames: ['kind'] as const,
        registers,
      }),
    },
    timerLatenessSeconds: new Histogram({
      name: 'stellaops_runner_timer_lateness_seconds',
      help: 'How much later than its due time a saga timer fired',
      labelNames: ['saga'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}
