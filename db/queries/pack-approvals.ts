/** Typed queries of pack approvals (`notify.*`). */
import type { ApprovalView } from '../../workflows/pack-approval/definitions.js';
import { FINAL_STATES, OPEN_STATES } from '../../workflows/pack-approval/state.js';
import { sqlLiterals, withTransaction, type Pool } from '../pool.js';
import { recordAudit } from './audit.js';

const FINAL_STATES_SQL = sqlLiterals(FINAL_STATES);
const OPEN_STATES_SQL = sqlLiterals(OPEN_STATES);

/** A transition to append with the state write. */
export interface TransitionRecord {
  from: string | null;
  to: string;
  reason: string;
  auditType: string;
}

/**
 * Writes the approval's current view at `seq` and, with a transition, appends it and an audit record — all in one
 * transaction and idempotent: a replayed write (same seq) appends nothing and an older one changes nothing.
 */
export async function recordApprovalState(
  pool: Pool,
  input: {
    view: ApprovalView;
    seq: number;
    workflowId: string;
    transition?: TransitionRecord;
    actor: string;
    eventId?: string;
  },
): Promise<{ appended: boolean }> {
  const { view } = input;
  return withTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO notify.pack_approvals AS a
         (tenant_id, run_id, approval_id, kind, state, plan_hash, required_grants, step_ids, requested_by, requested_at,
          expires_at, locale, correlation_id, workflow_id, view, seq)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ON CONFLICT (tenant_id, run_id, approval_id) DO UPDATE SET
         state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, view = EXCLUDED.view, seq = EXCLUDED.seq, updated_at = now()
       WHERE a.seq <= EXCLUDED.seq`,
      [
        view.tenantId,
        view.runId,
        view.approvalId,
        view.kind,
        view.state,
        view.planHash,
        view.requiredGrants,
        view.stepIds,
        view.requestedBy,
        view.requestedAt,
        view.expiresAt,
        view.locale,
        view.correlationId,
        input.workflowId,
        JSON.stringify(view),
        input.seq,
      ],
    );
    if (!input.transition) return { appended: false };
    const t = input.transition;
    const inserted = await client.query(
      `INSERT INTO notify.pack_approval_transitions
         (tenant_id, run_id, approval_id, seq, from_state, to_state, event_id, actor, reason, correlation_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (tenant_id, run_id, approval_id, seq) DO NOTHING`,
      [
        view.tenantId,
        view.runId,
        view.approvalId,
        input.seq,
        t.from,
        t.to,
        input.eventId ?? null,
        input.actor,
        t.reason,
        view.correlationId,
      ],
    );
    if (inserted.rowCount === 0) return { appended: false };
    await recordAudit(client, {
      tenantId: view.tenantId,
      eventType: t.auditType,
      actor: input.actor,
      subject: `${view.runId}/${view.approvalId}`,
      correlationId: view.correlationId,
      details: { from: t.from, to: t.to, reason: t.reason, eventId: input.eventId ?? null, planHash: view.planHash },
    });
    return { appended: true };
  });
}

/** The stored view of an approval, or undefined. */
export async function getApprovalView(
  pool: Pool,
  tenantId: string,
  runId: string,
  approvalId: string,
): Promise<ApprovalView | undefined> {
  const { rows } = await pool.query<{ view: ApprovalView }>(
    'SELECT view FROM notify.pack_approvals WHERE tenant_id = $1 AND run_id = $2 AND approval_id = $3',
    [tenantId, runId, approvalId],
  );
  return rows[0]?.view;
}

/** Transitions of an approval, oldest first. */
export async function listTransitions(pool: Pool, tenantId: string, runId: string, approvalId: string) {
  const { rows } = await pool.query<{
    seq: number;
    from_state: string | null;
    to_state: string;
    actor: string;
    reason: string | null;
    event_id: string | null;
  }>(
    `SELECT seq, from_state, to_state, actor, reason, event_id FROM notify.pack_approval_transitions
     WHERE tenant_id = $1 AND run_id = $2 AND approval_id = $3 ORDER BY seq`,
    [tenantId, runId, approvalId],
  );
  return rows;
}

/** A delivery outcome. */
export interface DeliveryRecord {
  idempotencyKey: string;
  tenantId: string;
  runId: string;
  approvalId: string;
  channel: 'email' | 'webhook';
  recipient: string;
  reason: string;
  templateId: string;
  locale: string;
  status: 'queued' | 'sent' | 'failed';
  detail?: string;
}

/** Records a delivery once per idempotency key: queued → sent | failed; a later `sent` overrides `failed`. */
export async function recordDelivery(pool: Pool, d: DeliveryRecord): Promise<void> {
  await pool.query(
    `INSERT INTO notify.deliveries
       (idempotency_key, tenant_id, run_id, approval_id, channel, recipient, reason, template_id, locale, status, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (idempotency_key) DO UPDATE SET status = EXCLUDED.status, detail = EXCLUDED.detail
     WHERE notify.deliveries.status <> 'sent' AND EXCLUDED.status <> 'queued'`,
    [
      d.idempotencyKey,
      d.tenantId,
      d.runId,
      d.approvalId,
      d.channel,
      d.recipient,
      d.reason,
      d.templateId,
      d.locale,
      d.status,
      d.detail ?? null,
    ],
  );
}

/** Whether a delivery with this key was already sent (a retried activity then skips the send). */
export async function deliverySent(pool: Pool, idempotencyKey: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    "SELECT 1 FROM notify.deliveries WHERE idempotency_key = $1 AND status = 'sent'",
    [idempotencyKey],
  );
  return (rowCount ?? 0) > 0;
}

/** Deliveries of an approval, oldest first. */
export async function listDeliveries(pool: Pool, tenantId: string, runId: string, approvalId: string) {
  const { rows } = await pool.query<{
    channel: string;
    recipient: string;
    reason: string;
    status: string;
    locale: string;
    template_id: string;
  }>(
    `SELECT channel, recipient, reason, status, locale, template_id FROM notify.deliveries
     WHERE tenant_id = $1 AND run_id = $2 AND approval_id = $3 ORDER BY id`,
    [tenantId, runId, approvalId],
  );
  return rows;
}

/** Records an accepted event id; false when it was already there (a duplicate). */
export async function recordIngestedEvent(
  pool: Pool,
  tenantId: string,
  eventId: string,
  workflowId: string,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `INSERT INTO notify.ingested_events (tenant_id, event_id, workflow_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [tenantId, eventId, workflowId],
  );
  return (rowCount ?? 0) > 0;
}

/** Whether an event id was already accepted. */
export async function isIngestedEvent(pool: Pool, tenantId: string, eventId: string): Promise<boolean> {
  const { rowCount } = await pool.query('SELECT 1 FROM notify.ingested_events WHERE tenant_id = $1 AND event_id = $2', [
    tenantId,
    eventId,
  ]);
  return (rowCount ?? 0) > 0;
}

/**
 * One round trip for the two ingestion checks: records the signature id (false when seen before: a replay) and
 * tells whether the event id was already accepted (a duplicate).
 */
export async function claimSignatureAndCheckEvent(
  pool: Pool,
  signatureId: string,
  tenantId: string,
  eventId: string,
): Promise<{ freshSignature: boolean; duplicate: boolean }> {
  const { rows } = await pool.query<{ fresh_signature: boolean; duplicate: boolean }>(
    `WITH claimed AS (
       INSERT INTO notify.signature_ids (signature_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM claimed) AS fresh_signature,
            EXISTS (SELECT 1 FROM notify.ingested_events WHERE tenant_id = $2 AND event_id = $3) AS duplicate`,
    [signatureId, tenantId, eventId],
  );
  return { freshSignature: rows[0]!.fresh_signature, duplicate: rows[0]!.duplicate };
}

/** Deletes approval records, transitions, deliveries and ingestion bookkeeping older than `cutoff`. */
export async function purgeApprovalsBefore(pool: Pool, cutoff: Date): Promise<Record<string, number>> {
  return withTransaction(pool, async (client) => {
    const count = async (sql: string) => (await client.query(sql, [cutoff])).rowCount ?? 0;
    return {
      approvals: await count(
        `DELETE FROM notify.pack_approvals WHERE updated_at < $1 AND state IN (${FINAL_STATES_SQL})`,
      ),
      transitions: await count(
        `DELETE FROM notify.pack_approval_transitions t WHERE occurred_at < $1
         AND NOT EXISTS (SELECT 1 FROM notify.pack_approvals a
                         WHERE a.tenant_id = t.tenant_id AND a.run_id = t.run_id AND a.approval_id = t.approval_id)`,
      ),
      deliveries: await count('DELETE FROM notify.deliveries WHERE created_at < $1'),
      ingestedEvents: await count('DELETE FROM notify.ingested_events WHERE received_at < $1'),
      signatureIds: await count('DELETE FROM notify.signature_ids WHERE seen_at < $1'),
    };
  });
}

/** Open approvals (pending or held), read through a partial index. */
export async function countOutstandingApprovals(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM notify.pack_approvals WHERE state IN (${OPEN_STATES_SQL})`,
  );
  return Number(rows[0]?.n ?? 0);
}

/** Notification counts by channel and status. */
export async function countDeliveries(pool: Pool): Promise<{ channel: string; status: string; n: number }[]> {
  const { rows } = await pool.query<{ channel: string; status: string; n: string }>(
    'SELECT channel, status, count(*) AS n FROM notify.deliveries GROUP BY channel, status',
  );
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}
