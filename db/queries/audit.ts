/** Appends to the audit trail (`audit.events`, append-only in the database). */
import type { Pool, PoolClient } from '../pool.js';

/** One audit record. */
export interface AuditRecord {
  tenantId: string;
  eventType: string;
  /** Who did it (a token subject, `system`…); absent when unknown. */
  actor?: string;
  subject: string;
  correlationId?: string;
  details?: Record<string, unknown>;
}

/** Appends `record`, on the pool or inside the caller's transaction. */
export async function recordAudit(db: Pool | PoolClient, record: AuditRecord): Promise<void> {
  await db.query(
    `INSERT INTO audit.events (tenant_id, event_type, actor, subject, correlation_id, details)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      record.tenantId,
      record.eventType,
      record.actor ?? null,
      record.subject,
      record.correlationId ?? null,
      JSON.stringify(record.details ?? {}),
    ],
  );
}

/** The most recent audit records of a tenant, newest first. */
export async function listAudit(
  pool: Pool,
  tenantId: string,
  options: { eventTypePrefix?: string; limit?: number } = {},
): Promise<(AuditRecord & { occurredAt: string })[]> {
  const { rows } = await pool.query<{
    event_type: string;
    actor: string | null;
    subject: string;
    correlation_id: string | null;
    details: Record<string, unknown>;
    occurred_at: Date;
  }>(
    `SELECT event_type, actor, subject, correlation_id, details, occurred_at FROM audit.events
     WHERE tenant_id = $1 AND event_type LIKE $2 ORDER BY id DESC LIMIT $3`,
    [tenantId, `${options.eventTypePrefix ?? ''}%`, options.limit ?? 100],
  );
  return rows.map((r) => ({
    tenantId,
    eventType: r.event_type,
    ...(r.actor ? { actor: r.actor } : {}),
    subject: r.subject,
    ...(r.correlation_id ? { correlationId: r.correlation_id } : {}),
    details: r.details,
    occurredAt: r.occurred_at.toISOString(),
  }));
}
