import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type ActivityDeps } from '../../activities/index.js';
import { loadWebhookConfig } from '../../core/config.js';
import { generateSecret } from '../../core/local-secrets.js';
import { Revision } from '../../workflows/policy-simulation/state.js';
import { policyRunStatus } from '../support/fixtures.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';
import { testPackApprovalDeps } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const ALWAYS = [
  'echoSelfCheck',
  'evaluatePolicySimulation',
  'markPolicyRunRunning',
  'notifySimulationCompleted',
  'purgeApprovalRecords',
  'recordPolicyRunStatus',
];
const PACK_APPROVALS = [
  'deliverApprovalNotification',
  'planApprovalNotifications',
  'recordApproval',
  'resumeTaskRunner',
];

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function deps(overrides: Partial<ActivityDeps> = {}): ActivityDeps {
  return {
    pool: db.pool,
    logger: memoryLogger().logger,
    policyEngineUrl: 'http://127.0.0.1:1',
    policyWebhook: loadWebhookConfig({}),
    ...overrides,
  };
}

describe('createActivities', () => {
  it('registers every capability’s activities, the pack-approval ones only when their channels are given', () => {
    expect(Object.keys(createActivities(deps())).sort()).toEqual(ALWAYS);
    const withPackApprovals = createActivities(
      deps({ packApprovals: testPackApprovalDeps({ smtpUrl: 'smtp://127.0.0.1:1', linkSecret: generateSecret() }) }),
    );
    expect(Object.keys(withPackApprovals).sort()).toEqual([...ALWAYS, ...PACK_APPROVALS].sort());
  });

  it('hands the shared pool and logger to every factory', async () => {
    const { logger, records } = memoryLogger();
    const activities = createActivities(deps({ logger }));
    const env = new MockActivityEnvironment({ taskQueue: 'effects' });

    expect(await runActivity(env, activities.echoSelfCheck, { sequence: 3 })).toEqual({
      sequence: 3,
      taskQueue: 'effects',
    });

    const doc = policyRunStatus({ runId: 'run-merged', workflowId: 'policy-simulation/tenant-a/run-merged' });
    await runActivity(env, activities.recordPolicyRunStatus, { doc, revision: Revision.terminal });
    const { rows } = await db.pool.query<{ status: string }>(
      "SELECT status FROM scheduler.policy_runs WHERE run_id = 'run-merged'",
    );
    expect(rows).toEqual([{ status: 'succeeded' }]);

    await runActivity(env, activities.purgeApprovalRecords, { cutoff: '2000-01-01T00:00:00.000Z' });
    expect(records.map((r) => r.msg)).toContain('pack-approval retention purge');
  });
});
