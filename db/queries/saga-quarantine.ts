/**
 * Typed queries of the JetStream bridge's quarantine (`runner.quarantined_events`): messages it could not route, kept
 * byte for byte, and what an operator did with them (redelivered after a fix, or discarded with a reason).
 */
import type { Pool, PoolClient } from '../pool.js';

/** Why a message was quarantined. */
export const QUARANTINE_ERROR_KINDS = ['undecodable', 'invalid', 'tenant_mismatch', 'max_deliver'] as const;
export type QuarantineErrorKind = (typeof QUARANTINE_ERROR_KINDS)[number];

/** A quarantined message's state. */
export const QUARANTINE_STATUSES = ['quarantined', 'redelivered', 'discarded'] as const;
export type QuarantineStatus = (typeof QUARANTINE_STATUSES)[number];

/** What the bridge records for a message it gives up on. */
export interface QuarantineRecord {
  tenantId: string;
  stream: string;
  streamSequence: number;
  subject: string;
  /** Message headers, each with its values. */
  headers: Record<string, string[]>;
  payload: Uint8Array;
  /** Event id and sagas, when the payload decodes as an event. */
  eventId: string | null;
  sagaNames: string[];
  errorKind: QuarantineErrorKind;
  error: string;
  deliveryCount: number;
}

/** What an operator did with a quarantined message. */
export interface QuarantineResolution {
  action: 'redelivered' | 'discarded';
  by: string;
  at: string;
  /** The operator's reason (discard) or note (redeliver). */
  reason: string | null;
  /** What the redelivery answered per event (the ingress' status, e.g. `accepted`, `duplicate`). */
  outcome: Record<string, unknown> | null;
}

/** A quarantined message as the API shows it. */
export interface QuarantinedEvent extends Omit<QuarantineRecord, 'payload'> {
  id: string;
  payload: Buffer;
  firstSeenAt: string;
  lastSeenAt: string;
  status: QuarantineStatus;
  resolution: QuarantineResolution | null;
}

interface QuarantinedEventRow {
  id: string;
  tenant_id: string;
  stream: string;
  stream_sequence: string;
  subject: string;
  headers: Record<string, string[]>;
  payload: Buffer;
  event_id: string | null;
  saga_names: string[];
  error_kind: QuarantineErrorKind;
  error: string;
  delivery_count: number;
  first_seen_at: Date;
  last_seen_at: Date;
  status: QuarantineStatus;
  resolution: QuarantineResolution | null;
}

const COLUMNS = `id::text AS id, tenant_id, stream, stream_sequence, subject, headers, payload, event_id, saga_names,
  error_kind, error, delivery_count, first_seen_at, last_seen_at, status, resolution`;

const quarantinedOf = (r: QuarantinedEventRow): QuarantinedEvent => ({
  id: r.id,
  tenantId: r.tenant_id,
  stream: r.stream,
  streamSequence: Number(r.stream_sequence),
  subject: r.subject,
  headers: r.headers,
  payload: r.payload,
  eventId: r.event_id,
  sagaNames: r.saga_names,
  errorKind: r.error_kind,
  error: r.error,
  deliveryCount: r.delivery_count,
  firstSeenAt: r.first_seen_at.toISOString(),
  lastSeenAt: r.last_seen_at.toISOString(),
  status: r.status,
  resolution: r.resolution,
});

/**
 * Records a message in quarantine; the same stream message again (a bridge that stopped before terminating it)
 * refreshes its error, delivery count and last-seen time instead of adding a row. A message already resolved stays
 * resolved. Returns the row's id and whether this call created it.
 */
export async function recordQuarantinedEvent(
  pool: Pool,
  record: QuarantineRecord,
): Promise<{ id: string; created: boolean }> {
  const { rows } = await pool.query<{ id: string; created: boolean }>(
    `INSERT INTO runner.quarantined_events AS q (tenant_id, stream, stream_sequence, subject, headers, payload,
       event_id, saga_names, error_kind, error, delivery_count)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (stream, stream_sequence) DO UPDATE SET
       error_kind = EXCLUDED.error_kind, error = EXCLUDED.error,
       delivery_count = GREATEST(q.delivery_count, EXCLUDED.delivery_count), last_seen_at = now()
     RETURNING id::text AS id, (xmax = 0) AS created`,
    [
      record.tenantId,
      record.stream,
      record.streamSequence,
      record.subject,
      JSON.stringify(record.headers),
      Buffer.from(record.payload),
      record.eventId,
      record.sagaNames,
      record.errorKind,
      record.error,
      record.deliveryCount,
    ],
  );
  return rows[0]!;
}

/** Filters of {@link listQuarantinedEvents} and {@link selectQuarantinedForReplay}. */
export interface QuarantineFilter {
  status?: QuarantineStatus;
  errorKind?: QuarantineErrorKind;
  /** Messages whose payload routes to this saga. */
  sagaName?: string;
  subject?: string;
  /** First seen at or after / before (ISO date-times). */
  from?: string;
  to?: string;
}

function whereOf(tenantId: string, filter: QuarantineFilter): { where: string[]; params: unknown[] } {
  const where = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replaceAll('?', `$${params.length}`));
  };
  if (filter.status) add('status = ?', filter.status);
  if (filter.errorKind) add('error_kind = ?', filter.errorKind);
  if (filter.sagaName) add('? = ANY (saga_names)', filter.sagaName);
  if (filter.subject) add('subject = ?', filter.subject);
  if (filter.from) add('first_seen_at >= ?::timestamptz', filter.from);
  if (filter.to) add('first_seen_at < ?::timestamptz', filter.to);
  return { where, params };
}

/** Newest-first page of a tenant's quarantined messages; `next` (an id) is set when more exist. */
export async function listQuarantinedEvents(
  pool: Pool,
  tenantId: string,
  filter: QuarantineFilter & { limit: number; afterId?: string },
): Promise<{ items: QuarantinedEvent[]; next?: string }> {
  const { where, params } = whereOf(tenantId, filter);
  if (filter.afterId) {
    params.push(filter.afterId);
    where.push(`id < $${params.length}::bigint`);
  }
  params.push(filter.limit + 1);
  const { rows } = await pool.query<QuarantinedEventRow>(
    `SELECT ${COLUMNS} FROM runner.quarantined_events WHERE ${where.join(' AND ')}
     ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, filter.limit).map(quarantinedOf);
  const last = items[items.length - 1];
  return { items, ...(rows.length > filter.limit && last ? { next: last.id } : {}) };
}

/** A quarantined message of the tenant, or undefined; `forUpdate` locks the row in the caller's transaction. */
export async function getQuarantinedEvent(
  db: Pool | PoolClient,
  tenantId: string,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<QuarantinedEvent | undefined> {
  const { rows } = await db.query<QuarantinedEventRow>(
    `SELECT ${COLUMNS} FROM runner.quarantined_events WHERE tenant_id = $1 AND id = $2::bigint
     ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [tenantId, id],
  );
  return rows[0] && quarantinedOf(rows[0]);
}

/** Ids of the tenant's open (still quarantined) messages matching `filter`, oldest first, at most `limit`. */
export async function selectQuarantinedForReplay(
  pool: Pool,
  tenantId: string,
  filter: Omit<QuarantineFilter, 'status'>,
  limit: number,
): Promise<{ ids: string[]; total: number }> {
  const { where, params } = whereOf(tenantId, { ...filter, status: 'quarantined' });
  params.push(limit);
  const { rows } = await pool.query<{ id: string; total: string }>(
    `SELECT id::text AS id, count(*) OVER () AS total FROM runner.quarantined_events WHERE ${where.join(' AND ')}
     ORDER BY first_seen_at, id LIMIT $${params.length}`,
    params,
  );
  return { ids: rows.map((r) => r.id), total: Number(rows[0]?.total ?? 0) };
}

/** Marks a still-quarantined row resolved, in the caller's transaction; false when it was resolved already. */
export async function resolveQuarantinedEvent(
  client: PoolClient,
  tenantId: string,
  id: string,
  resolution: QuarantineResolution,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE runner.quarantined_events SET status = $3, resolution = $4
     WHERE tenant_id = $1 AND id = $2::bigint AND status = 'quarantined'`,
    [tenantId, id, resolution.action, JSON.stringify(resolution)],
  );
  return rowCount === 1;
}

/** Open quarantined messages, per tenant (the `/metrics` gauge). */
export async function countOpenQuarantine(pool: Pool): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ tenant_id: string; n: string }>(
    `SELECT tenant_id, count(*) AS n FROM runner.quarantined_events WHERE status = 'quarantined' GROUP BY tenant_id`,
  );
  return new Map(rows.map((r) => [r.tenant_id, Number(r.n)]));
}
