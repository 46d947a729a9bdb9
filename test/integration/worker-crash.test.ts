/**
 * Crash recovery, measured: a worker process is SIGKILLed while an activity is in flight (the Policy Engine call,
 * then the completion webhook), and another worker takes the work over within 30 s — the activity timeouts and
 * heartbeats of workflows/shared/activity-options.ts decide that wait. Real worker processes, really killed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { startSimulation } from '../../api/temporal/policy-simulations.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';
import type { policySimulationWorkflow } from '../../workflows/policy-simulation/workflow.js';
import { eventually } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { simulationBody } from '../support/simulations.js';
import { createDevServerEnv } from '../support/temporal.js';
import {
  killAllWorkerProcesses,
  killWorkerProcess,
  startWorkerProcess,
  workerProcessDataConverter,
} from '../support/worker-process.js';

/** Recovery must take less than this after the crash. */
const RECOVERY_BOUND_MS = 30_000;

let env: TestWorkflowEnvironment;
let temporal: TemporalFacade;
let db: TestDatabase;
let engine: RunningPolicyEngine;
let dataDir: string;

/**
 * An HTTP peer whose first request of each round never gets an answer (the worker serving it will die); later
 * requests are answered by `answer`. `arrivals` records when each request came in.
 */
async function startPeer(answer: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const arrivals: number[] = [];
  let hangNext = true;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      arrivals.push(Date.now());
      if (hangNext) {
        hangNext = false;
        return; // the connection stays open until the worker that made it dies
      }
      answer(req, Buffer.concat(chunks).toString('utf8'), res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  [env, db, engine] = await Promise.all([createDevServerEnv(), createTestDatabase(), startPolicyEngine()]);
  dataDir = await mkdtemp(join(tmpdir(), 'stellaops-worker-crash-'));
  temporal = createTemporalFacade({
    address: env.address,
    namespace: 'default',
    dataConverter: await workerProcessDataConverter(dataDir),
  });
});
afterAll(async () => {
  await killAllWorkerProcesses();
  await temporal?.close();
  await engine?.close();
  await db?.drop();
  await env?.teardown();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a worker killed in the middle of an activity', () => {
  it('has its evaluation and its completion webhook taken over by another worker within 30 s each', async () => {
    // The engine hangs on the first evaluation; the webhook receiver hangs on the first delivery.
    const enginePeer = await startPeer((req, body, res) => {
      void fetch(new URL(req.url ?? '/', engine.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      }).then(async (upstream) =>
        res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text()),
      );
    });
    const receiver = await startPeer((_req, _body, res) => res.writeHead(204).end());
    const workerEnv = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: env.address,
      DATABASE_URL: db.url,
      WORKER_QUEUES: 'policy-simulation',
      POLICY_ENGINE_URL: enginePeer.url,
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: `${receiver.url}/hooks/policy`,
      // The longest allowed attempt: only the crash may end the first delivery, not its own timeout.
      POLICY_WEBHOOK_TIMEOUT_SECONDS: '300',
    };
    try {
      const first = await startWorkerProcess(workerEnv);
      const { doc } = await startSimulation(temporal, {
        tenantId: 'acme',
        body: simulationBody(),
        requestedBy: 'tester',
        evaluationTimeoutSeconds: 120,
        taskQueuePrefix: '',
      });
      const handle = temporal.client.workflow.getHandle<typeof policySimulationWorkflow>(doc.workflowId);

      await eventually(() => (enginePeer.arrivals.length > 0 ? true : undefined));
      const second = await startWorkerProcess(workerEnv); // ready before the crash: what is measured is Temporal's wait
      const evaluationCrash = await killWorkerProcess(first);
      await eventually(() => (enginePeer.arrivals.length > 1 ? true : undefined), RECOVERY_BOUND_MS + 10_000);
      const evaluationRecovery = enginePeer.arrivals[1]! - evaluationCrash;

      await eventually(() => (receiver.arrivals.length > 0 ? true : undefined));
      const third = await startWorkerProcess(workerEnv);
      const webhookCrash = await killWorkerProcess(second);
      await eventually(() => (receiver.arrivals.length > 1 ? true : undefined), RECOVERY_BOUND_MS + 10_000);
      const webhookRecovery = receiver.arrivals[1]! - webhookCrash;

      const result = await handle.result();
      expect(result.status).toBe('succeeded');
      expect(result.attempts).toBe(2);
      console.log(
        `crash recovery: evaluation ${(evaluationRecovery / 1000).toFixed(1)} s, completion webhook ${(webhookRecovery / 1000).toFixed(1)} s`,
      );
      expect(evaluationRecovery).toBeLessThan(RECOVERY_BOUND_MS);
      expect(webhookRecovery).toBeLessThan(RECOVERY_BOUND_MS);
      await killWorkerProcess(third);
    } finally {
      await enginePeer.close();
      await receiver.close();
    }
  });
});
