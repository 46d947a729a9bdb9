/**
 * Simulation throughput with the reference Policy Engine vs the self-check workflow with the same number of
 * activities (5), on the same dev server, worker and Postgres, in the same run. Reports workflows/s of each and
 * the ratio simulation / self-check; the goal is ≥ 0.8.
 */
import { loadBenchConfig, loadWebhookConfig } from '../core/config.js';
import { startSelfCheck } from '../api/temporal/self-check.js';
import { startPolicyEngine } from '../policy-engine/server.js';
import { closedLoop, runBenchSimulation, startBenchStack } from './support.js';

const { runs: RUNS, concurrency: CONCURRENCY } = loadBenchConfig().throughput;
/** Activities of one simulation: record queued, mark running, evaluate, record terminal, completion webhook. */
const SIMULATION_ACTIVITIES = 5;

export async function benchSimulationThroughput(): Promise<Record<string, number>> {
  const engine = await startPolicyEngine();
  const stack = await startBenchStack({ policyEngineUrl: engine.url, policyWebhook: loadWebhookConfig({}) });
  const { temporal } = stack;
  const selfCheck = () =>
    startSelfCheck(temporal, {
      tenantId: 'bench',
      taskQueue: 'policy-simulation',
      activityCount: SIMULATION_ACTIVITIES,
    }).then(({ handle }) => handle.result());
  const simulation = () => runBenchSimulation(temporal);
  try {
    await closedLoop(20, CONCURRENCY, selfCheck); // warm-up of both paths
    await closedLoop(20, CONCURRENCY, simulation);
    // Interleave two rounds of each so drift on a shared machine hits both sides alike.
    const base1 = await closedLoop(RUNS, CONCURRENCY, selfCheck);
    const sim1 = await closedLoop(RUNS, CONCURRENCY, simulation);
    const base2 = await closedLoop(RUNS, CONCURRENCY, selfCheck);
    const sim2 = await closedLoop(RUNS, CONCURRENCY, simulation);
    const baseline = (base1 + base2) / 2;
    const simulations = (sim1 + sim2) / 2;
    return {
      runs_per_round: RUNS,
      concurrency: CONCURRENCY,
      self_check_per_s: baseline,
      simulation_per_s: simulations,
      ratio: simulations / baseline,
    };
  } finally {
    await stack.close();
    await engine.close();
  }
}
