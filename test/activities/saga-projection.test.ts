/**
 * The saga bookkeeping activities against real Postgres (as the application role): the claim of unmatched events
 * at an instance's start, and the projection of its progress — ordering, idempotency, the revision guard and the
 * append-only event log.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSagaActivities } from '../../activities/sagas/index.js';
import { recordIngestedEvent, type SagaRouteOutcome } from '../../db/queries/sagas.js';
import {
  sagaWorkflowId,
  type AggregateEvent,
  type SagaEventDelivery,
  type SagaProgress,
} from '../../workflows/sagas/definitions.js';
import { FailureType } from '../../workflows/shared/failures.js';
import { rejectionOf } from '../support/assertions.js';
import { memoryLogger } from '../support/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { sagaProgress } from '../support/sagas.js';
import { runActivity } from '../support/temporal.js';

const SAGA = 'advisory-impact-rescan';
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function activities() {
  return createSagaActivities({ pool: db.pool, logger: memoryLogger().logger });
}

/** A tenant of its own per test, so tests sharing the database never see each other's rows. */
const freshTenant = () => `tenant-${randomUUID().slice(0, 8)}`;

function scanCompleted(tenantId: string, correlationId: string, sequence: number): AggregateEvent {
  return {
    tenantId,
    eventId: `evt-${randomUUID()}`,
    aggregateType: 'Scan',
    aggregateId: `scan-${sequence}`,
    eventType: 'Scan.Completed',
    sequence,
    correlationId,
    occurredAt: new Date().toISOString(),
    payload: { image: `registry.local/app:${sequence}` },
    // A field of a later contract version: kept in the recorded event.
    ...{ futureField: { kept: true } },
  };
}

/** Records `event` as the ingress does when no instance exists yet. */
async function recordWaiting(event: AggregateEvent, kind: 'unmatched' | 'late' = 'unmatched') {
  const correlationId = event.correlationId!;
  const outcome: SagaRouteOutcome = {
    sagaName: SAGA,
    correlationId,
    workflowId: sagaWorkflowId(event.tenantId, SAGA, correlationId),
    outcome: kind,
    reason: kind === 'late' ? 'the instance has finished (completed)' : 'no instance yet',
  };
  expect(await recordIngestedEvent(db.pool, event, [outcome])).toMatchObject({ recorded: true });
}

async function rows<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
  return (await db.pool.query<T>(sql, params)).rows;
}

const progress = (tenantId: string, correlationId: string, overrides: Partial<SagaProgress> = {}) =>
  sagaProgress(tenantId, { sagaName: SAGA, correlationId, ...overrides });

const applied = (event: AggregateEvent, via: SagaEventDelivery['via'] = 'ingress') => ({
  event,
  outcome: 'applied' as const,
  via,
});

describe('claimUnmatchedEvents', () => {
  it('returns the instance’s unmatched events in sequence order, unknown fields kept, and marks them claimed', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    const [third, first, second] = [3, 1, 2].map((s) => scanCompleted(tenant, 'adv-1', s));
    for (const event of [third!, first!, second!]) await recordWaiting(event);
    await recordWaiting(scanCompleted(tenant, 'adv-other', 0)); // another instance's
    await recordWaiting(scanCompleted(tenant, 'adv-1', 0), 'late'); // late: only an operator redelivers it

    const input = { tenantId: tenant, sagaName: SAGA, correlationId: 'adv-1', workflowId: 'w', claimKey: 'run-a' };
    const claimed = await runActivity(env, activities().claimUnmatchedEvents, input);

    expect(claimed.map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(claimed[0]).toEqual(first);
    expect(claimed[0]).toMatchObject({ futureField: { kept: true } });
    expect(
      await rows(
        `SELECT correlation_id, kind, status, claimed_by FROM runner.unmatched_events WHERE tenant_id = $1
         ORDER BY correlation_id, kind, sequence`,
        [tenant],
      ),
    ).toEqual([
      { correlation_id: 'adv-1', kind: 'late', status: 'pending', claimed_by: null },
      ...[1, 2, 3].map(() => ({
        correlation_id: 'adv-1',
        kind: 'unmatched',
        status: 'delivered',
        claimed_by: 'run-a',
      })),
      { correlation_id: 'adv-other', kind: 'unmatched', status: 'pending', claimed_by: null },
    ]);
  });

  it('answers a retry with the same claim key the same events, another key none', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    const events = [2, 1].map((s) => scanCompleted(tenant, 'adv-2', s));
    for (const event of events) await recordWaiting(event);
    const input = { tenantId: tenant, sagaName: SAGA, correlationId: 'adv-2', workflowId: 'w', claimKey: 'run-b' };
    const { claimUnmatchedEvents } = activities();

    const first = await runActivity(env, claimUnmatchedEvents, input);
    const retried = await runActivity(env, claimUnmatchedEvents, input);
    const other = await runActivity(env, claimUnmatchedEvents, { ...input, claimKey: 'run-c' });

    expect(first.map((e) => e.sequence)).toEqual([1, 2]);
    expect(retried).toEqual(first);
    expect(other).toEqual([]);
  });
});

describe('recordSagaProgress', () => {
  it('projects the instance, its timeline and compensations once; a repeat appends and changes nothing', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    const start = scanCompleted(tenant, 'adv-3', 0);
    const repeat = scanCompleted(tenant, 'adv-3', 1);
    const write = progress(tenant, 'adv-3', {
      revision: 4,
      status: 'compensation_failed',
      state: { images: ['a', 'b'] },
      reason: 'deadline reached',
      finishedAt: '2026-03-01T11:00:00.000Z',
      appliedEvents: 2,
      lastEvent: {
        eventId: repeat.eventId,
        eventType: 'Scan.Completed',
        aggregateId: repeat.aggregateId,
        sequence: 1,
        receivedAt: '2026-03-01T10:30:00.000Z',
      },
      events: [applied(start), { event: repeat, outcome: 'duplicate', via: 'ingress' }, applied(repeat, 'unmatched')],
      compensations: [
        { step: 'rescan:a', status: 'compensated', at: '2026-03-01T10:59:00.000Z' },
        { step: 'rescan:b', status: 'failed', error: 'gateway refused', at: '2026-03-01T10:59:30.000Z' },
      ],
    });
    const { recordSagaProgress } = activities();

    await runActivity(env, recordSagaProgress, write);
    await runActivity(env, recordSagaProgress, write);

    expect(
      await rows(
        `SELECT workflow_id, status, state, reason, revision, applied_events, started_at, finished_at,
                last_event->>'eventId' AS last_event_id
         FROM runner.saga_instances WHERE tenant_id = $1`,
        [tenant],
      ),
    ).toEqual([
      {
        workflow_id: `saga/${tenant}/${SAGA}/adv-3`,
        status: 'compensation_failed',
        state: { images: ['a', 'b'] },
        reason: 'deadline reached',
        revision: '4',
        applied_events: 2,
        started_at: new Date('2026-03-01T10:00:00.000Z'),
        finished_at: new Date('2026-03-01T11:00:00.000Z'),
        last_event_id: repeat.eventId,
      },
    ]);
    expect(
      await rows('SELECT event_id, outcome, via FROM runner.saga_event_log WHERE tenant_id = $1 ORDER BY id', [tenant]),
    ).toEqual([
      { event_id: start.eventId, outcome: 'applied', via: 'ingress' },
      { event_id: repeat.eventId, outcome: 'duplicate', via: 'ingress' },
      { event_id: repeat.eventId, outcome: 'applied', via: 'unmatched' },
    ]);
    expect(
      await rows('SELECT step, status, error FROM runner.saga_compensations WHERE tenant_id = $1 ORDER BY step', [
        tenant,
      ]),
    ).toEqual([
      { step: 'rescan:a', status: 'compensated', error: null },
      { step: 'rescan:b', status: 'failed', error: 'gateway refused' },
    ]);
  });

  it('never lets an older revision overwrite a newer one; a new generation (later start) replaces the instance', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    const { recordSagaProgress } = activities();
    const statusOf = async () =>
      (
        await rows<{ status: string; revision: string }>(
          'SELECT status, revision FROM runner.saga_instances WHERE tenant_id = $1',
          [tenant],
        )
      )[0];

    await runActivity(env, recordSagaProgress, progress(tenant, 'adv-4', { revision: 5, status: 'completed' }));
    await runActivity(env, recordSagaProgress, progress(tenant, 'adv-4', { revision: 3, status: 'running' }));
    expect(await statusOf()).toEqual({ status: 'completed', revision: '5' });

    await runActivity(
      env,
      recordSagaProgress,
      progress(tenant, 'adv-4', { revision: 1, status: 'running', startedAt: '2026-03-02T08:00:00.000Z' }),
    );
    expect(await statusOf()).toEqual({ status: 'running', revision: '1' });
  });

  it('marks the pending unmatched rows of applied events delivered (an event can also arrive by direct signal)', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    const signalled = scanCompleted(tenant, 'adv-5', 1);
    const stillWaiting = scanCompleted(tenant, 'adv-5', 2);
    await recordWaiting(signalled);
    await recordWaiting(stillWaiting);

    await runActivity(
      env,
      activities().recordSagaProgress,
      progress(tenant, 'adv-5', { events: [applied(signalled)] }),
    );

    expect(
      await rows(
        `SELECT event_id, status, delivered_at IS NOT NULL AS delivered FROM runner.unmatched_events
         WHERE tenant_id = $1 ORDER BY sequence`,
        [tenant],
      ),
    ).toEqual([
      { event_id: signalled.eventId, status: 'delivered', delivered: true },
      { event_id: stillWaiting.eventId, status: 'pending', delivered: false },
    ]);
  });

  it('fails at once (DataRejected, not retried) on data Postgres refuses', async () => {
    const env = new MockActivityEnvironment();
    const failure = await rejectionOf(
      runActivity(
        env,
        activities().recordSagaProgress,
        progress(freshTenant(), 'adv-6', { state: { note: 'a\u0000b' } }),
      ),
      ApplicationFailure,
    );
    expect(failure.type).toBe(FailureType.DataRejected);
    expect(failure.nonRetryable).toBe(true);
  });
});

describe('runner.saga_event_log', () => {
  it('is append-only: UPDATE, DELETE and TRUNCATE are refused, for the owner role too', async () => {
    const env = new MockActivityEnvironment();
    const tenant = freshTenant();
    await runActivity(
      env,
      activities().recordSagaProgress,
      progress(tenant, 'adv-7', { events: [applied(scanCompleted(tenant, 'adv-7', 0))] }),
    );
    const owner = new pg.Client({ connectionString: db.ownerUrl });
    await owner.connect();
    try {
      for (const [client, statements] of [
        [db.pool, ['UPDATE runner.saga_event_log SET reason = $1 WHERE tenant_id = $1']],
        [
          owner,
          [
            'UPDATE runner.saga_event_log SET reason = $1 WHERE tenant_id = $1',
            'DELETE FROM runner.saga_event_log WHERE tenant_id = $1',
          ],
        ],
      ] as const) {
        for (const sql of statements) {
          await expect(client.query(sql, [tenant]), sql).rejects.toThrow(/append-only|permission denied/);
        }
      }
      await expect(db.pool.query('DELETE FROM runner.saga_event_log WHERE tenant_id = $1', [tenant])).rejects.toThrow(
        /permission denied/,
      );
      await expect(owner.query('TRUNCATE runner.saga_event_log')).rejects.toThrow(/append-only/);
      await expect(
        owner.query('UPDATE runner.saga_event_log SET reason = $1 WHERE tenant_id = $1', [tenant]),
      ).rejects.toThrow(/append-only \(UPDATE refused\)/);
    } finally {
      await owner.end();
    }
    expect(await rows('SELECT reason FROM runner.saga_event_log WHERE tenant_id = $1', [tenant])).toEqual([
      { reason: null },
    ]);
  });
});
