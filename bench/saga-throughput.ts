/**
 * End-to-end saga throughput (events in → sagas completed) vs the self-check workflow with the same number of
 * activities, on the same dev server, workers and Postgres, in the same run. Two sagas:
 *
 * - the mirror bundle export: one `MirrorBundle.ExportRequested` event through the ingress, its four effects at the
 *   reference providers, its bookkeeping (unmatched-event claim, projection writes) on Postgres;
 * - the advisory rescan loop: `Advisory.Published` → impact-index effect → one `RequestRescan` per impacted image at
 *   the reference Gateway → its `Scan.Requested` / `Scan.Completed` events back through the ingress → completed.
 *
 * The activity count of each baseline is read from the history of a real run of the saga, so the self-check does
 * exactly as many activity round trips. Reports sagas/s, self-checks/s and the ratio saga / self-check; goal ≥ 0.8.
 */
import { randomUUID } from 'node:crypto';
import { startSelfCheck } from '../api/temporal/self-check.js';
import { loadBenchConfig } from '../core/config.js';
import { advisoryPublished, exportRequested } from '../test/support/sagas.js';
import type { AggregateEvent } from '../workflows/sagas/definitions.js';
import { closedLoop, startSagaBenchStack, type SagaBenchStack } from './support.js';

const { runs: RUNS, concurrency: CONCURRENCY } = loadBenchConfig().sagas;
/** The sample advisory the reference impact index resolves to three images. */
const ADVISORY = 'CVE-2023-44487';
const TENANT = 'bench';

const mirrorEvent = (): AggregateEvent =>
  exportRequested(`bundle-${randomUUID()}`, { tenantId: TENANT, occurredAt: new Date().toISOString() });
// The advisory stays the one the index knows; each run is its own process through its correlation id.
const advisoryEvent = (): AggregateEvent =>
  advisoryPublished(
    ADVISORY,
    {},
    { tenantId: TENANT, correlationId: `rescan-${randomUUID()}`, occurredAt: new Date().toISOString() },
  );

/** Activities one run of the saga started by `event` really executes, by task queue, read from its history. */
async function activitiesOf(stack: SagaBenchStack, event: AggregateEvent): Promise<Record<string, number>> {
  const view = await stack.runToEnd(event);
  if (view.status !== 'completed') throw new Error(`${view.workflowId} ended ${view.status}: ${view.reason}`);
  const history = await stack.temporal.client.workflow.getHandle(view.workflowId).fetchHistory();
  const byQueue: Record<string, number> = {};
  for (const e of history.events ?? []) {
    const queue = e.activityTaskScheduledEventAttributes?.taskQueue?.name;
    if (queue) byQueue[queue] = (byQueue[queue] ?? 0) + 1;
  }
  return byQueue;
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Two interleaved closed-loop rounds of each side (so drift on a shared machine hits both alike), after a warm-up of
 * both; the mean rate of each.
 */
export async function compareRates(
  saga: () => Promise<unknown>,
  baseline: () => Promise<unknown>,
  runs = RUNS,
  concurrency = CONCURRENCY,
) {
  await closedLoop(Math.min(runs, 20), concurrency, baseline);
  await closedLoop(Math.min(runs, 20), concurrency, saga);
  const base1 = await closedLoop(runs, concurrency, baseline);
  const saga1 = await closedLoop(runs, concurrency, saga);
  const base2 = await closedLoop(runs, concurrency, baseline);
  const saga2 = await closedLoop(runs, concurrency, saga);
  return { saga: (saga1 + saga2) / 2, baseline: (base1 + base2) / 2 };
}

/** Runs both comparisons; figures keyed `mirror_*` and `rescan_*`. */
export async function benchSagaThroughput(): Promise<Record<string, number>> {
  // Rescans complete at once: the benchmark measures the orchestration, not a scanner's think time.
  const stack = await startSagaBenchStack({ scanDelayMs: 0 });
  const completed = (event: () => AggregateEvent) => async () => {
    const view = await stack.runToEnd(event());
    if (view.status !== 'completed') throw new Error(`${view.workflowId} ended ${view.status}: ${view.reason}`);
  };
  const selfCheck = (activityCount: number) => () =>
    startSelfCheck(stack.temporal, { tenantId: TENANT, taskQueue: 'saga', activityCount }).then(({ handle }) =>
      handle.result(),
    );
  try {
    const mirrorActivities = await activitiesOf(stack, mirrorEvent());
    const rescanActivities = await activitiesOf(stack, advisoryEvent());
    const mirror = await compareRates(completed(mirrorEvent), selfCheck(sum(mirrorActivities)));
    const rescan = await compareRates(completed(advisoryEvent), selfCheck(sum(rescanActivities)));
    return {
      runs_per_round: RUNS,
      concurrency: CONCURRENCY,
      mirror_activities: sum(mirrorActivities),
      mirror_on_effects: mirrorActivities['effects'] ?? 0,
      mirror_check_per_s: mirror.baseline,
      mirror_saga_per_s: mirror.saga,
      mirror_ratio: mirror.saga / mirror.baseline,
      rescan_activities: sum(rescanActivities),
      rescan_on_effects: rescanActivities['effects'] ?? 0,
      rescan_check_per_s: rescan.baseline,
      rescan_saga_per_s: rescan.saga,
      rescan_ratio: rescan.saga / rescan.baseline,
      gateway_retries: stack.gatewayEventRetries(),
    };
  } finally {
    await stack.close();
  }
}
