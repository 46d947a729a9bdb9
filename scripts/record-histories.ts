/**
 * `npm run histories:record`: runs every workflow scenario on a fresh dev server and writes the histories that
 * the replay tests check new code against (test/replay/histories). Re-record only when a change is meant to
 * be compatible with running executions and you have checked it is.
 */
import { writeFile } from 'node:fs/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { createLogger } from '../core/logger.js';
import { createPool } from '../db/pool.js';
import { bundleWorkflows } from '../workers/host.js';
import { createDevServerEnv } from '../test/support/temporal.js';
import { REPLAY_SCENARIOS, historyPath } from '../test/replay/scenarios.js';

const logger = createLogger({ name: 'record-histories' });
const env = await createDevServerEnv();
// Recording needs no database: the pool is never queried by the recorded workflows' activities.
const pool = createPool({
  connectionString: 'postgres://unused@127.0.0.1:1/unused',
  applicationName: 'record',
  logger,
});
try {
  const taskQueue = 'record-histories';
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await bundleWorkflows(),
    activities: createActivities({ pool, logger }),
  });
  await worker.runUntil(async () => {
    for (const scenario of REPLAY_SCENARIOS) {
      const handle = await env.client.workflow.start(scenario.workflowType, {
        taskQueue,
        workflowId: `replay/${scenario.name}`,
        args: scenario.args,
      });
      await handle.result().catch(() => undefined); // failing scenarios are recorded too
      const history = await handle.fetchHistory();
      await writeFile(historyPath(scenario.name), `${historyToJSON(history)}\n`);
      console.log(`recorded ${scenario.name} (${history.events?.length ?? 0} events)`);
    }
  });
} finally {
  await pool.end();
  await env.teardown();
}
