import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRetentionActivities } from '../../activities/pack-approval/retention.js';
import { recordApprovalState, recordDelivery, recordIngestedEvent } from '../../db/queries/pack-approvals.js';
import type { ApprovalView } from '../../workflows/pack-approval/definitions.js';
import { initialView } from '../../workflows/pack-approval/state.js';
import { packApprovalEvent } from '../support/fixtures.js';
import { memoryLogger } from '../support/logger.js';
import { runActivity } from '../support/temporal.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Stores an approval of `approvalId` in `state`, with one transition, one sent delivery and its ingested event. */
async function storeApproval(approvalId: string, state: ApprovalView['state']): Promise<void> {
  const view = { ...initialView(packApprovalEvent({ approvalId }), 3600), state };
  await recordApprovalState(db.pool, {
    view,
    seq: 1,
    workflowId: `pack-approval/tenant-a/run-1/${approvalId}`,
    transition: { from: null, to: state, reason: 'test', auditType: 'pack.approval.requested' },
    actor: 'task-runner',
  });
  await recordDelivery(db.pool, {
    idempotencyKey: `pack-approval/tenant-a/run-1/${approvalId}/0/requested/email/approvers@acme.test`,
    tenantId: 'tenant-a',
    runId: 'run-1',
    approvalId,
    channel: 'email',
    recipient: 'approvers@acme.test',
    reason: 'requested',
    templateId: 'pack-approval.requested',
    locale: 'en-US',
    status: 'sent',
  });
  await recordIngestedEvent(db.pool, 'tenant-a', `evt-${approvalId}`, `pack-approval/tenant-a/run-1/${approvalId}`);
}

const approvals = async () =>
  (
    await db.pool.query<{ approval_id: string }>('SELECT approval_id FROM notify.pack_approvals ORDER BY approval_id')
  ).rows.map((r) => r.approval_id);

describe('purgeApprovalRecords', () => {
  it('deletes finished approvals and old bookkeeping before the cutoff, keeps open ones, and repeats as a no-op', async () => {
    await storeApproval('a-approved', 'approved');
    await storeApproval('a-pending', 'pending');
    const { logger, records } = memoryLogger();
    const { purgeApprovalRecords } = createRetentionActivities({ pool: db.pool, logger });
    const env = new MockActivityEnvironment();

    // A cutoff in the past keeps everything.
    const past = await runActivity(env, purgeApprovalRecords, { cutoff: '2000-01-01T00:00:00.000Z' });
    expect(Object.values(past).every((n) => n === 0)).toBe(true);
    expect(await approvals()).toEqual(['a-approved', 'a-pending']);

    const cutoff = new Date(Date.now() + 60_000).toISOString();
    const deleted = await runActivity(env, purgeApprovalRecords, { cutoff });
    expect(deleted).toEqual({ approvals: 1, transitions: 1, deliveries: 2, ingestedEvents: 2, signatureIds: 0 });
    expect(await approvals()).toEqual(['a-pending']);
    expect(records).toContainEqual(
      expect.objectContaining({ level: 30, msg: 'pack-approval retention purge', cutoff, deleted }),
    );

    const again = await runActivity(env, purgeApprovalRecords, { cutoff });
    expect(again).toEqual({ approvals: 0, transitions: 0, deliveries: 0, ingestedEvents: 0, signatureIds: 0 });
  });
});
