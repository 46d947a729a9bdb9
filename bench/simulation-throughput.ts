/**
 * Simulation throughput with the reference Policy Engine vs the self-check workflow with the same number of
 * activities (5), on the same dev server, worker and Postgres, in the same run. Reports workflows/s of each and
 * the ratio simulation / self-check; the goal is ≥ 0.8.
 */
import { randomUUID } from 'node:crypto';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { loadWebhookConfig } from '../activities/policy-simulation/webhook.js';
import { createTemporalFacade, type TemporalFacade } from '../api/temporal/facade.js';
import { startSimulation } from '../api/temporal/policy-simulations.js';
import { startSelfCheck } from '../api/temporal/self-check.js';
import { TASK_QUEUES } from '../core/config.js';
import { startPolicyEngine } from '../policy-engine/server.js';
import { startDevServer } from '../stack/temporal.js';
import type { policySimulationWorkflow } from '../workflows/policy-simulation/workflow.js';
import { bundleWorkflows, createWorkerHost } from '../workers/host.js';
import { benchPostgres, closedLoop, freePort, logger } from './support.js';

const RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_THROUGHPUT_CONCURRENCY ?? 20);
/** Activities of one simulation: record queued, mark running, evaluate, record terminal, completion webhook. */
const SIMULATION_ACTIVITIES = 5;

export async function benchSimulationThroughput(): Promise<Record<string, number>> {
  const pg = await benchPostgres();
  const engine = await startPolicyEngine();
  const server = await startDevServer({ ip: '127.0.0.1', port: await freePort(), namespace: 'default' });
  const connection = await NativeConnection.connect({ address: server.address });
  const temporal: TemporalFacade = createTemporalFacade({ address: server.address, namespace: 'default' });
  const host = await createWorkerHost({
    connection,
    namespace: 'default',
    queues: TASK_QUEUES,
    activities: createActivities({
      pool: pg.pool,
      logger,
      policyEngineUrl: engine.url,
      policyWebhook: loadWebhookConfig({}),
    }),
    workflowBundle: await bundleWorkflows(),
    logger,
  });
  const running = host.run();
  const selfCheck = () =>
    startSelfCheck(temporal, {
      tenantId: 'bench',
      taskQueue: 'policy-simulation',
      activityCount: SIMULATION_ACTIVITIES,
    }).then(({ handle }) => handle.result());
  const simulation = async () => {
    const { doc } = await startSimulation(temporal, {
      tenantId: 'bench',
      body: {
        policyId: 'baseline-security',
        policyVersion: 3,
        inputs: { sbomSet: ['sbom-payments-api', 'sbom-web-frontend'] },
      },
      idempotencyKey: randomUUID(),
      requestedBy: 'bench',
      evaluationTimeoutSeconds: 300,
    });
    const result = await temporal.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId).result();
    if (result.status !== 'succeeded') throw new Error(`simulation ${doc.runId} did not succeed`);
  };
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
    host.shutdown();
    await running;
    await connection.close();
    await temporal.close();
    await server.stop();
    await engine.close();
    await pg.close();
  }
}
