/**
 * Typed queries of sagas (`runner.*`): the ingress's record of received events and their outcomes, unmatched and
 * late events, the projection of saga instances, their append-only event log and compensation records.
 */
import type {
  AggregateEvent,
  CompensationRecord,
  SagaEventDelivery,
  SagaEventSummary,
  SagaProgress,
  SagaStatus,
} from '../../workflows/sagas/definitions.js';
import { withTransaction, type Pool, type PoolClient } from '../pool.js';

/** What the ingress did with an event for one saga. */
export type SagaRouteOutcomeKind = 'accepted' | 'unmatched' | 'late';

/** What the ingress did with an event for one saga instance (recorded, so a duplicate answers the same). */
export interface SagaRouteOutcome {
  sagaName: string;
  correlationId: string;
  workflowId: string;
  outcome: SagaRouteOutcomeKind;
  /** Why the event is unmatched or late; null when accepted. */
  reason: string | null;
}

/** Outcomes of the append-only saga event log. */
export type SagaLogOutcome = 'applied' | 'duplicate' | 'unmatched' | 'late' | 'redelivered';

/** An unmatched or late event's state: waiting, delivered to an instance, or redelivered by an operator. */
export type UnmatchedEventStatus = 'pending' | 'delivered' | 'redelivered';
/** Why an event waits: no instance yet (`unmatched`) or the instance had finished (`late`). */
export type UnmatchedEventKind = 'unmatched' | 'late';

/** What an explicit redelivery did, recorded with the row so a repeat answers it. */
export interface Redelivery {
  sagaName: string;
  correlationId: string;
  workflowId: string;
  /** `signalled`: to a running instance; `started`: a new instance (generation) of a late start event. */
  delivery: 'signalled' | 'started';
  generation: number | null;
  requestedBy: string;
  at: string;
}

/** The outcomes recorded for an event id, or undefined when it was never recorded. */
export async function findIngestedEvent(
  db: Pool | PoolClient,
  tenantId: string,
  eventId: string,
): Promise<{ outcomes: SagaRouteOutcome[] } | undefined> {
  const { rows } = await db.query<{ outcomes: SagaRouteOutcome[] }>(
    'SELECT outcomes FROM runner.ingested_events WHERE tenant_id = $1 AND event_id = $2',
    [tenantId, eventId],
  );
  return rows[0];
}

const logRow = (
  event: AggregateEvent,
  sagaName: string,
  correlationId: string,
  outcome: SagaLogOutcome,
  via: SagaEventDelivery['via'],
  reason: string | null,
) => [
  event.tenantId,
  sagaName,
  correlationId,
  event.eventId,
  event.eventType,
  event.aggregateId,
  event.sequence,
  outcome,
  via,
  reason,
];

async function appendLog(client: PoolClient, rows: unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  const values = rows
    .map((_, r) => `(${Array.from({ length: 10 }, (_, c) => `$${r * 10 + c + 1}`).join(', ')})`)
    .join(', ');
  await client.query(
    `INSERT INTO runner.saga_event_log
       (tenant_id, saga_name, correlation_id, event_id, event_type, aggregate_id, sequence, outcome, via, reason)
     VALUES ${values}
     ON CONFLICT (tenant_id, saga_name, correlation_id, event_id, outcome) DO NOTHING`,
    rows.flat(),
  );
}

/**
 * Records an event and what the ingress did with it, in one transaction: the event with its outcomes, a row in
 * `unmatched_events` for each unmatched or late outcome, and their entries in the event log. When the event id was
 * recorded meanwhile (a concurrent delivery of the same event), nothing is written and the recorded outcomes are
 * returned with `recorded: false`.
 */
export async function recordIngestedEvent(
  pool: Pool,
  event: AggregateEvent,
  outcomes: readonly SagaRouteOutcome[],
  via: SagaEventDelivery['via'] = 'ingress',
): Promise<{ recorded: boolean; outcomes: SagaRouteOutcome[] }> {
  return withTransaction(pool, async (client) => {
    const inserted = await client.query(
      `INSERT INTO runner.ingested_events (tenant_id, event_id, event, outcomes) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, event_id) DO NOTHING`,
      [event.tenantId, event.eventId, JSON.stringify(event), JSON.stringify(outcomes)],
    );
    if (inserted.rowCount === 0) {
      const earlier = await findIngestedEvent(client, event.tenantId, event.eventId);
      return { recorded: false, outcomes: earlier?.outcomes ?? [] };
    }
    const waiting = outcomes.filter((o) => o.outcome !== 'accepted');
    for (const o of waiting) {
      await client.query(
        `INSERT INTO runner.unmatched_events
           (tenant_id, saga_name, correlation_id, workflow_id, event_id, sequence, event, kind, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, saga_name, event_id) DO NOTHING`,
        [
          event.tenantId,
          o.sagaName,
          o.correlationId,
          o.workflowId,
          event.eventId,
          event.sequence,
          JSON.stringify(event),
          o.outcome,
          o.reason ?? o.outcome,
        ],
      );
    }
    await appendLog(
      client,
      waiting.map((o) => logRow(event, o.sagaName, o.correlationId, o.outcome as SagaLogOutcome, via, o.reason)),
    );
    return { recorded: true, outcomes: [...outcomes] };
  });
}

/** Replaces the recorded outcomes of an event (after a second look found its instance started meanwhile). */
export async function updateIngestedOutcomes(
  pool: Pool,
  tenantId: string,
  eventId: string,
  outcomes: readonly SagaRouteOutcome[],
): Promise<void> {
  await pool.query('UPDATE runner.ingested_events SET outcomes = $3 WHERE tenant_id = $1 AND event_id = $2', [
    tenantId,
    eventId,
    JSON.stringify(outcomes),
  ]);
}

/**
 * Claims the unmatched events of an instance for `claimKey` (its first-execution run id): pending ones, and those
 * this key claimed before (a retried claim returns them again), in sequence order (then recording order).
 */
export async function claimUnmatchedEvents(
  pool: Pool,
  input: { tenantId: string; sagaName: string; correlationId: string; claimKey: string },
): Promise<AggregateEvent[]> {
  const { rows } = await pool.query<{ event: AggregateEvent; sequence: string; id: string }>(
    `UPDATE runner.unmatched_events
        SET status = 'delivered', claimed_by = $4, delivered_at = COALESCE(delivered_at, now())
      WHERE tenant_id = $1 AND saga_name = $2 AND correlation_id = $3 AND kind = 'unmatched'
        AND (status = 'pending' OR (status = 'delivered' AND claimed_by = $4))
      RETURNING event, sequence, id`,
    [input.tenantId, input.sagaName, input.correlationId, input.claimKey],
  );
  // UPDATE … RETURNING has no order: the id is the recording order.
  return rows
    .sort((a, b) => Number(a.sequence) - Number(b.sequence) || Number(a.id) - Number(b.id))
    .map((row) => row.event);
}

/**
 * Records a change of an instance in one transaction, idempotently: appends its events to the log (a repeat
 * appends nothing), upserts its compensations, marks the pending unmatched rows of the applied events delivered
 * (an event recorded unmatched may reach the instance by a direct signal too), and writes the instance only when
 * (startedAt, revision) is newer than the stored one, so an older or replayed write changes nothing.
 * @returns whether the instance row changed.
 */
export async function recordSagaProgress(pool: Pool, progress: SagaProgress): Promise<{ changed: boolean }> {
  const { tenantId, sagaName, correlationId } = progress;
  return withTransaction(pool, async (client) => {
    await appendLog(
      client,
      progress.events.map((e) => logRow(e.event, sagaName, correlationId, e.outcome, e.via, null)),
    );
    for (const c of progress.compensations) {
      await client.query(
        `INSERT INTO runner.saga_compensations AS c (tenant_id, saga_name, correlation_id, step, status, error, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, saga_name, correlation_id, step) DO UPDATE
           SET status = EXCLUDED.status, error = EXCLUDED.error, recorded_at = EXCLUDED.recorded_at
         WHERE c.recorded_at <= EXCLUDED.recorded_at`,
        [tenantId, sagaName, correlationId, c.step, c.status, c.error ?? null, c.at],
      );
    }
    const applied = progress.events.filter((e) => e.outcome === 'applied');
    if (applied.length > 0) {
      await client.query(
        `UPDATE runner.unmatched_events SET status = 'delivered', delivered_at = now()
         WHERE tenant_id = $1 AND saga_name = $2 AND correlation_id = $3 AND kind = 'unmatched'
           AND status = 'pending' AND event_id = ANY ($4)`,
        [tenantId, sagaName, correlationId, applied.map((e) => e.event.eventId)],
      );
    }
    const result = await client.query(
      `INSERT INTO runner.saga_instances AS i
         (tenant_id, saga_name, correlation_id, workflow_id, status, state, reason, last_event, revision, applied_events,
          started_at, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (tenant_id, saga_name, correlation_id) DO UPDATE SET
         workflow_id = EXCLUDED.workflow_id, status = EXCLUDED.status, state = EXCLUDED.state,
         reason = EXCLUDED.reason, last_event = EXCLUDED.last_event, revision = EXCLUDED.revision,
         applied_events = EXCLUDED.applied_events, started_at = EXCLUDED.started_at,
         finished_at = EXCLUDED.finished_at, updated_at = now()
       WHERE (i.started_at, i.revision) < (EXCLUDED.started_at, EXCLUDED.revision)`,
      [
        tenantId,
        sagaName,
        correlationId,
        progress.workflowId,
        progress.status,
        JSON.stringify(progress.state ?? null),
        progress.reason,
        progress.lastEvent ? JSON.stringify(progress.lastEvent) : null,
        progress.revision,
        progress.appliedEvents,
        progress.startedAt,
        progress.finishedAt,
      ],
    );
    return { changed: (result.rowCount ?? 0) > 0 };
  });
}

/** A saga instance as the projection holds it. */
export interface SagaInstance {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  status: SagaStatus;
  state: unknown;
  reason: string | null;
  lastEvent: SagaEventSummary | null;
  revision: number;
  appliedEvents: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

interface SagaInstanceRow {
  tenant_id: string;
  saga_name: string;
  correlation_id: string;
  workflow_id: string;
  status: SagaStatus;
  state: unknown;
  reason: string | null;
  last_event: SagaEventSummary | null;
  revision: string;
  applied_events: number;
  started_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

const INSTANCE_COLUMNS = `tenant_id, saga_name, correlation_id, workflow_id, status, state, reason, last_event, revision,
  applied_events, started_at, updated_at, finished_at`;

const instanceOf = (r: SagaInstanceRow): SagaInstance => ({
  tenantId: r.tenant_id,
  sagaName: r.saga_name,
  correlationId: r.correlation_id,
  workflowId: r.workflow_id,
  status: r.status,
  state: r.state,
  reason: r.reason,
  lastEvent: r.last_event,
  revision: Number(r.revision),
  appliedEvents: r.applied_events,
  startedAt: r.started_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  finishedAt: r.finished_at?.toISOString() ?? null,
});

/** An instance of the tenant, or undefined. */
export async function getSagaInstance(
  pool: Pool,
  tenantId: string,
  sagaName: string,
  correlationId: string,
): Promise<SagaInstance | undefined> {
  const { rows } = await pool.query<SagaInstanceRow>(
    `SELECT ${INSTANCE_COLUMNS} FROM runner.saga_instances
     WHERE tenant_id = $1 AND saga_name = $2 AND correlation_id = $3`,
    [tenantId, sagaName, correlationId],
  );
  return rows[0] && instanceOf(rows[0]);
}

/** Position of a page of instances: the last item's (startedAt, sagaName, correlationId). */
export interface SagaInstanceCursor {
  startedAt: string;
  sagaName: string;
  correlationId: string;
}

/** Filters of {@link listSagaInstances}. */
export interface SagaInstanceFilter {
  sagaName?: string;
  status?: SagaStatus;
  correlationId?: string;
  limit: number;
  cursor?: SagaInstanceCursor;
}

/** Newest-first page of a tenant's instances (keyset pagination); `next` is set when more exist. */
export async function listSagaInstances(
  pool: Pool,
  tenantId: string,
  filter: SagaInstanceFilter,
): Promise<{ items: SagaInstance[]; next?: SagaInstanceCursor }> {
  const where = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.sagaName) add('saga_name = ?', filter.sagaName);
  if (filter.status) add('status = ?', filter.status);
  if (filter.correlationId) add('correlation_id = ?', filter.correlationId);
  if (filter.cursor) {
    params.push(filter.cursor.startedAt, filter.cursor.sagaName, filter.cursor.correlationId);
    const n = params.length;
    where.push(`(started_at, saga_name, correlation_id) < ($${n - 2}::timestamptz, $${n - 1}, $${n})`);
  }
  params.push(filter.limit + 1);
  const { rows } = await pool.query<SagaInstanceRow>(
    `SELECT ${INSTANCE_COLUMNS} FROM runner.saga_instances WHERE ${where.join(' AND ')}
     ORDER BY started_at DESC, saga_name DESC, correlation_id DESC LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, filter.limit).map(instanceOf);
  const last = items[items.length - 1];
  return {
    items,
    ...(rows.length > filter.limit && last
      ? { next: { startedAt: last.startedAt, sagaName: last.sagaName, correlationId: last.correlationId } }
      : {}),
  };
}

/** One entry of an instance's timeline. */
export interface SagaLogEntry {
  eventId: string;
  eventType: string;
  aggregateId: string;
  sequence: number;
  outcome: SagaLogOutcome;
  via: SagaEventDelivery['via'];
  reason: string | null;
  recordedAt: string;
}

/** The event log of an instance, oldest first (at most `limit` entries). */
export async function listSagaEventLog(
  pool: Pool,
  tenantId: string,
  sagaName: string,
  correlationId: string,
  limit = 1000,
): Promise<SagaLogEntry[]> {
  const { rows } = await pool.query<{
    event_id: string;
    event_type: string;
    aggregate_id: string;
    sequence: string;
    outcome: SagaLogOutcome;
    via: SagaEventDelivery['via'];
    reason: string | null;
    recorded_at: Date;
  }>(
    `SELECT event_id, event_type, aggregate_id, sequence, outcome, via, reason, recorded_at FROM runner.saga_event_log
     WHERE tenant_id = $1 AND saga_name = $2 AND correlation_id = $3 ORDER BY id LIMIT $4`,
    [tenantId, sagaName, correlationId, limit],
  );
  return rows.map((r) => ({
    eventId: r.event_id,
    eventType: r.event_type,
    aggregateId: r.aggregate_id,
    sequence: Number(r.sequence),
    outcome: r.outcome,
    via: r.via,
    reason: r.reason,
    recordedAt: r.recorded_at.toISOString(),
  }));
}

/** The compensations of an instance, in recording order. */
export async function listSagaCompensations(
  pool: Pool,
  tenantId: string,
  sagaName: string,
  correlationId: string,
): Promise<CompensationRecord[]> {
  const { rows } = await pool.query<{
    step: string;
    status: CompensationRecord['status'];
    error: string | null;
    recorded_at: Date;
  }>(
    `SELECT step, status, error, recorded_at FROM runner.saga_compensations
     WHERE tenant_id = $1 AND saga_name = $2 AND correlation_id = $3 ORDER BY recorded_at, step`,
    [tenantId, sagaName, correlationId],
  );
  return rows.map((r) => ({
    step: r.step,
    status: r.status,
    ...(r.error !== null ? { error: r.error } : {}),
    at: r.recorded_at.toISOString(),
  }));
}

/** An unmatched or late event. */
export interface UnmatchedEvent {
  id: string;
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  eventId: string;
  sequence: number;
  event: AggregateEvent;
  kind: UnmatchedEventKind;
  reason: string;
  status: UnmatchedEventStatus;
  claimedBy: string | null;
  redelivery: Redelivery | null;
  recordedAt: string;
  deliveredAt: string | null;
}

interface UnmatchedEventRow {
  id: string;
  tenant_id: string;
  saga_name: string;
  correlation_id: string;
  workflow_id: string;
  event_id: string;
  sequence: string;
  event: AggregateEvent;
  kind: UnmatchedEventKind;
  reason: string;
  status: UnmatchedEventStatus;
  claimed_by: string | null;
  redelivery: Redelivery | null;
  recorded_at: Date;
  delivered_at: Date | null;
}

const UNMATCHED_COLUMNS = `id::text AS id, tenant_id, saga_name, correlation_id, workflow_id, event_id, sequence, event,
  kind, reason, status, claimed_by, redelivery, recorded_at, delivered_at`;

const unmatchedOf = (r: UnmatchedEventRow): UnmatchedEvent => ({
  id: r.id,
  tenantId: r.tenant_id,
  sagaName: r.saga_name,
  correlationId: r.correlation_id,
  workflowId: r.workflow_id,
  eventId: r.event_id,
  sequence: Number(r.sequence),
  event: r.event,
  kind: r.kind,
  reason: r.reason,
  status: r.status,
  claimedBy: r.claimed_by,
  redelivery: r.redelivery,
  recordedAt: r.recorded_at.toISOString(),
  deliveredAt: r.delivered_at?.toISOString() ?? null,
});

/** Filters of {@link listUnmatchedEvents}. */
export interface UnmatchedEventFilter {
  kind?: UnmatchedEventKind;
  status?: UnmatchedEventStatus;
  sagaName?: string;
  limit: number;
  /** Id of the last item of the previous page. */
  afterId?: string;
}

/** Newest-first page of a tenant's unmatched and late events; `next` (an id) is set when more exist. */
export async function listUnmatchedEvents(
  pool: Pool,
  tenantId: string,
  filter: UnmatchedEventFilter,
): Promise<{ items: UnmatchedEvent[]; next?: string }> {
  const where = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.kind) add('kind = ?', filter.kind);
  if (filter.status) add('status = ?', filter.status);
  if (filter.sagaName) add('saga_name = ?', filter.sagaName);
  if (filter.afterId) add('id < ?::bigint', filter.afterId);
  params.push(filter.limit + 1);
  const { rows } = await pool.query<UnmatchedEventRow>(
    `SELECT ${UNMATCHED_COLUMNS} FROM runner.unmatched_events WHERE ${where.join(' AND ')}
     ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, filter.limit).map(unmatchedOf);
  const last = items[items.length - 1];
  return { items, ...(rows.length > filter.limit && last ? { next: last.id } : {}) };
}

/** An unmatched or late event of the tenant, or undefined; `forUpdate` locks the row in the caller's transaction. */
export async function getUnmatchedEvent(
  db: Pool | PoolClient,
  tenantId: string,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<UnmatchedEvent | undefined> {
  const { rows } = await db.query<UnmatchedEventRow>(
    `SELECT ${UNMATCHED_COLUMNS} FROM runner.unmatched_events WHERE tenant_id = $1 AND id = $2::bigint
     ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [tenantId, id],
  );
  return rows[0] && unmatchedOf(rows[0]);
}

/**
 * Marks a row redelivered with what the redelivery did and appends `redelivered` to the instance's event log, in the
 * caller's transaction.
 */
export async function markRedelivered(client: PoolClient, row: UnmatchedEvent, redelivery: Redelivery): Promise<void> {
  await client.query(
    `UPDATE runner.unmatched_events SET status = 'redelivered', redelivery = $3, delivered_at = now()
     WHERE tenant_id = $1 AND id = $2::bigint`,
    [row.tenantId, row.id, JSON.stringify(redelivery)],
  );
  await appendLog(client, [
    logRow(
      row.event,
      row.sagaName,
      row.correlationId,
      'redelivered',
      'redelivered',
      `${row.kind} event redelivered by ${redelivery.requestedBy}`,
    ),
  ]);
}

/**
 * Ids of the tenant's pending unmatched and late events recorded in [`from`, `to`), of one saga when `sagaName` is
 * set, oldest first, at most `limit`; `total` counts every match (the bulk replay's dry run).
 */
export async function selectUnmatchedForReplay(
  pool: Pool,
  tenantId: string,
  filter: { sagaName?: string; from: string; to: string },
  limit: number,
): Promise<{ ids: string[]; total: number }> {
  const params: unknown[] = [tenantId, filter.from, filter.to];
  if (filter.sagaName) params.push(filter.sagaName);
  params.push(limit);
  const { rows } = await pool.query<{ id: string; total: string }>(
    `SELECT id::text AS id, count(*) OVER () AS total FROM runner.unmatched_events
     WHERE tenant_id = $1 AND status = 'pending' AND recorded_at >= $2::timestamptz AND recorded_at < $3::timestamptz
     ${filter.sagaName ? 'AND saga_name = $4' : ''}
     ORDER BY recorded_at, id LIMIT $${params.length}`,
    params,
  );
  return { ids: rows.map((r) => r.id), total: Number(rows[0]?.total ?? 0) };
}
