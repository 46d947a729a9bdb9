/** Workers and starts for policy simulation workflow tests. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { loadWebhookConfig, type WebhookConfig } from '../../core/config.js';
import type { TemporalFacade } from '../../api/temporal/facade.js';
import { startSimulation } from '../../api/temporal/policy-simulations.js';
import type { StartSimulationBody } from '../../api/schemas/policy-simulations.js';
import { createLogger, type Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { POLICY_SIMULATION_TASK_QUEUE } from '../../workflows/policy-simulation/definitions.js';
import type { policySimulationWorkflow } from '../../workflows/policy-simulation/workflow.js';
import { uniqueName, workflowBundle } from './temporal.js';

/** A worker serving a private `…policy-simulation` queue with the given engine and webhook. */
export interface SimulationWorker {
  prefix: string;
  worker: Worker;
  /** Log lines the activities wrote (pino JSON). */
  logs: { level: number; msg: string }[];
  stop(): Promise<void>;
}

/** Starts a worker; `activities: false` serves workflow tasks only (evaluations then stay queued). */
export async function startSimulationWorker(
  env: TestWorkflowEnvironment,
  options: { pool: Pool; policyEngineUrl: string; webhook?: WebhookConfig; activities?: boolean },
): Promise<SimulationWorker> {
  const prefix = `${uniqueName('sim')}-`;
  const logs: { level: number; msg: string }[] = [];
  // Capture what operators would read in the logs (e.g. WARN lines of webhook failures).
  const logger: Logger = createLogger({
    level: 'debug',
    name: 'sim-test',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as { level: number; msg: string }) },
  });
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: `${prefix}${POLICY_SIMULATION_TASK_QUEUE}`,
    workflowBundle: await workflowBundle(),
    ...(options.activities === false
      ? {}
      : {
          activities: createActivities({
            pool: options.pool,
            logger,
            policyEngineUrl: options.policyEngineUrl,
            policyWebhook: options.webhook ?? loadWebhookConfig({}),
          }),
        }),
  });
  const running = worker.run();
  return {
    prefix,
    worker,
    logs,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}

/** A simulation request over two sample SBOMs with the draft policy version 3. */
export function simulationBody(overrides: Partial<StartSimulationBody> = {}): StartSimulationBody {
  return {
    policyId: 'baseline-security',
    policyVersion: 3,
    inputs: { sbomSet: ['sbom-payments-api', 'sbom-web-frontend'], captureExplain: true },
    ...overrides,
  };
}

/** Starts a simulation for `tenantId` on the worker's queues and returns its handle. */
export async function startOn(
  temporal: TemporalFacade,
  worker: Pick<SimulationWorker, 'prefix'>,
  options: {
    tenantId?: string;
    body?: StartSimulationBody;
    idempotencyKey?: string;
    evaluationTimeoutSeconds?: number;
  } = {},
) {
  const tenantId = options.tenantId ?? 'acme';
  const { created, doc } = await startSimulation(temporal, {
    tenantId,
    body: options.body ?? simulationBody(),
    ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    requestedBy: 'tester',
    evaluationTimeoutSeconds: options.evaluationTimeoutSeconds ?? 60,
    taskQueuePrefix: worker.prefix,
  });
  return { created, doc, handle: temporal.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId) };
}
