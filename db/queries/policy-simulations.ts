/** Typed queries of the policy simulation projection (`scheduler.policy_runs`, `scheduler.policy_run_events`). */
import {
  ACTIVE_STATUSES,
  TERMINAL_STATUSES,
  type PolicyRunStatus,
  type PolicyRunStatusValue,
} from '../../workflows/policy-simulation/definitions.js';
import { isTerminalStatus } from '../../workflows/policy-simulation/state.js';
import { sqlLiterals, withTransaction, type Pool } from '../pool.js';
import { recordAudit } from './audit.js';

const ACTIVE_STATUSES_SQL = sqlLiterals(ACTIVE_STATUSES);
const TERMINAL_STATUSES_SQL = sqlLiterals(TERMINAL_STATUSES);

/** Channel on which every projection change is announced (payload: `{ tenantId, runId, eventId }`). */
export const POLICY_RUN_CHANNEL = 'policy_run_events';

/** Result of an upsert. */
export interface UpsertResult {
  /** False when the write was a replay or older than what is stored. */
  changed: boolean;
  eventId?: string;
}

/**
 * Writes a run's document at `revision`, idempotently: the same document again, or an older revision, changes
 * nothing. A change appends an event, writes an audit record for new and finished runs, and notifies listeners.
 */
export async function upsertPolicyRun(
  pool: Pool,
  doc: PolicyRunStatus,
  revision: number,
  options: { idempotencyKey?: string; actor?: string } = {},
): Promise<UpsertResult> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ previous_status: string | null }>(
      `WITH previous AS (
         SELECT status FROM scheduler.policy_runs WHERE tenant_id = $1 AND run_id = $2
       )
       INSERT INTO scheduler.policy_runs AS r
         (tenant_id, run_id, policy_id, policy_version, status, priority, queued_at, started_at, finished_at,
          revision, document, idempotency_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (tenant_id, run_id) DO UPDATE SET
         status = EXCLUDED.status, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
         revision = EXCLUDED.revision, document = EXCLUDED.document, updated_at = now()
       WHERE r.revision < EXCLUDED.revision OR (r.revision = EXCLUDED.revision AND r.document <> EXCLUDED.document)
       RETURNING (SELECT status FROM previous) AS previous_status`,
      [
        doc.tenantId,
        doc.runId,
        doc.policyId,
        doc.policyVersion,
        doc.status,
        doc.priority,
        doc.queuedAt,
        doc.startedAt,
        doc.finishedAt,
        revision,
        JSON.stringify(doc),
        options.idempotencyKey ?? null,
      ],
    );
    const row = rows[0];
    if (!row) return { changed: false };
    const event = await client.query<{ id: string }>(
      `INSERT INTO scheduler.policy_run_events (tenant_id, run_id, revision, status, document)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [doc.tenantId, doc.runId, revision, doc.status, JSON.stringify(doc)],
    );
    const eventId = event.rows[0]!.id;
    const auditType =
      row.previous_status === null
        ? 'policy.simulation.requested'
        : isTerminalStatus(doc.status) && row.previous_status !== doc.status
          ? `policy.simulation.${doc.status}`
          : undefined;
    if (auditType) {
      await recordAudit(client, {
        tenantId: doc.tenantId,
        eventType: auditType,
        ...(options.actor ? { actor: options.actor } : {}),
        subject: doc.runId,
        correlationId: doc.workflowId,
        details: { policyId: doc.policyId, policyVersion: doc.policyVersion, status: doc.status, error: doc.error },
      });
    }
    await client.query('SELECT pg_notify($1, $2)', [
      POLICY_RUN_CHANNEL,
      JSON.stringify({ tenantId: doc.tenantId, runId: doc.runId, eventId }),
    ]);
    return { changed: true, eventId };
  });
}

/** A run's stored document, or undefined. */
export async function getPolicyRun(pool: Pool, tenantId: string, runId: string): Promise<PolicyRunStatus | undefined> {
  const { rows } = await pool.query<{ document: PolicyRunStatus }>(
    'SELECT document FROM scheduler.policy_runs WHERE tenant_id = $1 AND run_id = $2',
    [tenantId, runId],
  );
  return rows[0]?.document;
}

/** Filters of {@link listPolicyRuns}. */
export interface PolicyRunFilter {
  status?: PolicyRunStatusValue;
  policyId?: string;
  /** Inclusive lower bound of queuedAt. */
  since?: string;
  /** Exclusive upper bound of queuedAt. */
  until?: string;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: { queuedAt: string; runId: string };
}

/** Newest-first page of runs with keyset pagination; `next` is set when more rows exist. */
export async function listPolicyRuns(
  pool: Pool,
  tenantId: string,
  filter: PolicyRunFilter,
): Promise<{ items: PolicyRunStatus[]; next?: { queuedAt: string; runId: string } }> {
  const where = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.status) add('status = ?', filter.status);
  if (filter.policyId) add('policy_id = ?', filter.policyId);
  if (filter.since) add('queued_at >= ?', filter.since);
  if (filter.until) add('queued_at < ?', filter.until);
  if (filter.cursor) {
    params.push(filter.cursor.queuedAt, filter.cursor.runId);
    where.push(`(queued_at, run_id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(filter.limit + 1);
  const { rows } = await pool.query<{ document: PolicyRunStatus; queued_at: Date; run_id: string }>(
    `SELECT document, queued_at, run_id FROM scheduler.policy_runs
     WHERE ${where.join(' AND ')}
     ORDER BY queued_at DESC, run_id DESC
     LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, filter.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => r.document),
    ...(rows.length > filter.limit && last
      ? { next: { queuedAt: last.queued_at.toISOString(), runId: last.run_id } }
      : {}),
  };
}

/** One recorded change of a run. */
export interface PolicyRunEvent {
  id: string;
  status: PolicyRunStatusValue;
  document: PolicyRunStatus;
}

/** Changes of a run after event `afterId` (exclusive), oldest first. */
export async function policyRunEventsAfter(
  pool: Pool,
  tenantId: string,
  runId: string,
  afterId: string,
): Promise<PolicyRunEvent[]> {
  const { rows } = await pool.query<PolicyRunEvent>(
    `SELECT id::text AS id, status, document FROM scheduler.policy_run_events
     WHERE tenant_id = $1 AND run_id = $2 AND id > $3 ORDER BY id`,
    [tenantId, runId, afterId],
  );
  return rows;
}

/** Queue depth and latency of a tenant's simulations. */
export interface SimulationMetrics {
  queueDepth: { queued: number; running: number; total: number };
  latency: {
    window: number;
    samples: number;
    p50Seconds: number | null;
    p90Seconds: number | null;
    p95Seconds: number | null;
    p99Seconds: number | null;
    meanSeconds: number | null;
  };
  recentOutcomes: { succeeded: number; failed: number; cancelled: number };
}

const round4 = (value: number | null): number | null => (value === null ? null : Math.round(value * 10_000) / 10_000);

/**
 * Queue depth (active runs only) and latency percentiles over the `window` most recent terminal runs, both read
 * through partial indexes so the cost does not grow with history.
 */
export async function getSimulationMetrics(pool: Pool, tenantId: string, window: number): Promise<SimulationMetrics> {
  const [depth, latency] = await Promise.all([
    pool.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM scheduler.policy_runs
       WHERE tenant_id = $1 AND status IN (${ACTIVE_STATUSES_SQL}) GROUP BY status`,
      [tenantId],
    ),
    pool.query<{
      samples: string;
      p50: number | null;
      p90: number | null;
      p95: number | null;
      p99: number | null;
      mean: number | null;
      succeeded: string;
      failed: string;
      cancelled: string;
    }>(
      `WITH recent AS (
         SELECT status, extract(epoch FROM finished_at - queued_at)::float8 AS seconds
         FROM scheduler.policy_runs
         WHERE tenant_id = $1 AND status IN (${TERMINAL_STATUSES_SQL})
         ORDER BY finished_at DESC
         LIMIT $2
       )
       SELECT count(*) AS samples,
              percentile_cont(0.50) WITHIN GROUP (ORDER BY seconds) AS p50,
              percentile_cont(0.90) WITHIN GROUP (ORDER BY seconds) AS p90,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99,
              avg(seconds) AS mean,
              count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'cancelled') AS cancelled
       FROM recent`,
      [tenantId, window],
    ),
  ]);
  const counts = Object.fromEntries(depth.rows.map((r) => [r.status, Number(r.n)]));
  const queued = counts.queued ?? 0;
  const running = counts.running ?? 0;
  const l = latency.rows[0]!;
  return {
    queueDepth: { queued, running, total: queued + running },
    latency: {
      window,
      samples: Number(l.samples),
      p50Seconds: round4(l.p50),
      p90Seconds: round4(l.p90),
      p95Seconds: round4(l.p95),
      p99Seconds: round4(l.p99),
      meanSeconds: round4(l.mean),
    },
    recentOutcomes: { succeeded: Number(l.succeeded), failed: Number(l.failed), cancelled: Number(l.cancelled) },
  };
}
