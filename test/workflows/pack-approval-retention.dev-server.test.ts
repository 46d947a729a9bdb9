/** Retention on the dev server: the purge deletes only old finished records; the schedule is created once. */
import { TypedSearchAttributes } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRetentionActivities } from '../../activities/pack-approval/retention.js';
import { createLogger } from '../../core/logger.js';
import { recordApprovalState, recordDelivery } from '../../db/queries/pack-approvals.js';
import { initialView } from '../../workflows/pack-approval/state.js';
import { RETENTION_SCHEDULE_ID } from '../../workflows/pack-approval/retention-definitions.js';
import type { retentionPurgeWorkflow } from '../../workflows/pack-approval/retention-workflow.js';
import { ensureRetentionSchedule } from '../../workers/pack-approval-retention-schedule.js';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { recordHistory } from '../support/histories.js';
import { sampleEvent } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createDevServerEnv, uniqueName, workflowBundle } from '../support/temporal.js';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
beforeAll(async () => {
  [env, db] = await Promise.all([createDevServerEnv(), createTestDatabase()]);
});
afterAll(async () => {
  await db?.drop();
  await env?.teardown();
});

async function approval(state: 'approved' | 'pending', ageDays: number): Promise<string> {
  const event = sampleEvent();
  const view = { ...initialView(event, 3600), state };
  const workflowId = `pack-approval/acme/${event.runId}/deploy-prod`;
  await recordApprovalState(db.pool, {
    view,
    seq: 1,
    workflowId,
    actor: 'test',
    transition: { from: null, to: state, reason: 'test', auditType: 'test.seeded' },
  });
  await recordDelivery(db.pool, {
    idempotencyKey: `${workflowId}/1`,
    tenantId: 'acme',
    runId: event.runId,
    approvalId: 'deploy-prod',
    channel: 'email',
    recipient: 'a@acme.test',
    reason: 'requested',
    templateId: 't',
    locale: 'en-US',
    status: 'sent',
  });
  const age = `${ageDays} days`;
  await db.pool.query(`UPDATE notify.pack_approvals SET updated_at = now() - $2::interval WHERE run_id = $1`, [
    event.runId,
    age,
  ]);
  await db.pool
    .query(`DELETE FROM notify.pack_approval_transitions WHERE run_id = $1`, [event.runId])
    .catch(() => undefined);
  await db.pool.query(
    `INSERT INTO notify.pack_approval_transitions (tenant_id, run_id, approval_id, seq, to_state, actor, correlation_id, occurred_at)
     VALUES ('acme', $1, 'deploy-prod', 2, $2, 'test', 'c', now() - $3::interval)`,
    [event.runId, state, age],
  );
  await db.pool.query(`UPDATE notify.deliveries SET created_at = now() - $2::interval WHERE run_id = $1`, [
    event.runId,
    age,
  ]);
  return event.runId;
}

const exists = async (table: string, runId: string) =>
  ((await db.pool.query(`SELECT 1 FROM notify.${table} WHERE run_id = $1`, [runId])).rowCount ?? 0) > 0;

describe('retentionPurgeWorkflow (dev server)', () => {
  it('purges finished approvals, their transitions and deliveries older than the retention, and nothing else', async () => {
    const oldFinished = await approval('approved', 120);
    const oldPending = await approval('pending', 120);
    const recent = await approval('approved', 10);
    const taskQueue = uniqueName('retention');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: createRetentionActivities({ pool: db.pool, logger: createLogger({ level: 'silent' }) }),
    });
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof retentionPurgeWorkflow>('retentionPurgeWorkflow', {
        taskQueue,
        workflowId: uniqueName('retention'),
        args: [{ retentionDays: 90 }],
      });
      const r = await handle.result();
      await recordHistory(handle, 'retention-purge');
      return r;
    });
    expect(result.deleted.approvals).toBe(1);
    expect(await exists('pack_approvals', oldFinished)).toBe(false);
    expect(await exists('pack_approval_transitions', oldFinished)).toBe(false);
    expect(await exists('pack_approvals', oldPending)).toBe(true); // still open: kept whatever its age
    expect(await exists('pack_approvals', recent)).toBe(true);
    expect(await exists('deliveries', recent)).toBe(true);
    expect(await exists('deliveries', oldFinished)).toBe(false);
  });

  it('creates the daily schedule once and updates its retention on later starts', async () => {
    expect(await ensureRetentionSchedule(env.client, { retentionDays: 90, taskQueue: 'pack-approval' })).toBe(true);
    expect(await ensureRetentionSchedule(env.client, { retentionDays: 30, taskQueue: 'pack-approval' })).toBe(false);
    const description = await env.client.schedule.getHandle(RETENTION_SCHEDULE_ID).describe();
    expect(description.action.type).toBe('startWorkflow');
    expect(description.action.type === 'startWorkflow' ? description.action.args : []).toEqual([{ retentionDays: 30 }]);
    expect(description.info.nextActionTimes.length).toBeGreaterThan(0);
    const attributes =
      description.action.type === 'startWorkflow' ? description.action.typedSearchAttributes : undefined;
    expect(attributes instanceof TypedSearchAttributes ? attributes.get(TENANT_ID) : undefined).toBe('system');
  });
});
