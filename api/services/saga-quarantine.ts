/**
 * What an operator does with the aggregate-event messages the JetStream bridge quarantined, and the controlled replay
 * of waiting events: redeliver a quarantined message after a fix (its stored bytes decoded and checked again, then
 * routed through the one ingress path), discard it with a reason, and replay the unmatched or quarantined events of a
 * time range in bulk once a dry run has counted them.
 *
 * Every change of a row is audited in the transaction that changes it, so no row changes without its audit record;
 * a redelivery holds the row's lock while its event is routed, so concurrent calls deliver it once, and a failure
 * (Temporal or Postgres unavailable) rolls back and leaves the row as it was.
 */
import type { Logger } from '../../core/logger.js';
import { withTransaction, type Pool } from '../../db/pool.js';
import { recordAudit } from '../../db/queries/audit.js';
import {
  getQuarantinedEvent,
  resolveQuarantinedEvent,
  selectQuarantinedForReplay,
  type QuarantinedEvent,
  type QuarantineResolution,
} from '../../db/queries/saga-quarantine.js';
import { selectUnmatchedForReplay } from '../../db/queries/sagas.js';
import { conflict, HttpError, notFound, type FieldErrorDoc } from '../errors.js';
import type { ReplayBody, ReplayOutcome, ReplayResponse } from '../schemas/saga-quarantine.js';
import { decodeAggregateEvent, type EventFieldError, type SagaIngress } from './saga-ingress.js';

/** Error code of a 422: the stored message still is not an event the ingress can route. */
export const STILL_INVALID = 'StillInvalid';

/** Answer of a redelivery or discard. */
export interface QuarantineActionOutcome {
  event: QuarantinedEvent;
  /** True when the row had been resolved the same way before: nothing was done again. */
  repeated: boolean;
}

/** The operator's actions on quarantined messages and the bulk replay. */
export interface SagaQuarantine {
  /**
   * Decodes the stored bytes again, checks them as an event of the row's tenant and routes the event through the
   * ingress (`via: redelivered`); marks the row `redelivered` with the ingress' result. A second call answers the row.
   * @throws 404 unknown row (or another tenant's); 409 discarded; 422 the bytes still are not a routable event
   * (field errors; the row stays quarantined).
   */
  redeliver(tenantId: string, id: string, by: { subject: string; note?: string }): Promise<QuarantineActionOutcome>;
  /**
   * Marks a quarantined row `discarded` with the reason. A second discard answers the row.
   * @throws 404 unknown row; 409 redelivered.
   */
  discard(tenantId: string, id: string, by: { subject: string; reason: string }): Promise<QuarantineActionOutcome>;
  /**
   * Counts the events of `request` (a dry run), or — with `dryRun: false` and `expectedCount` equal to the current
   * count — redelivers each of them (at most `limit`, oldest first) and answers per-outcome counts.
   * @throws 409 when `expectedCount` is missing or differs from the current count (the body carries the count).
   */
  replay(tenantId: string, request: ReplayBody, by: string): Promise<ReplayResponse>;
}

/** Field errors of an event as paths into the stored payload (`payload.occurredAt`). */
const payloadErrors = (errors: readonly EventFieldError[]): FieldErrorDoc[] =>
  errors.map((e) => ({
    path: ['payload', ...e.pointer.split('/').filter((segment) => segment !== '')].join('.'),
    message: e.message,
  }));

const stillInvalid = (message: string, errors: FieldErrorDoc[]) =>
  new HttpError(422, STILL_INVALID, message, {}, errors);

/** The event in `row`'s bytes, checked; throws the 422 naming what is still wrong. */
function eventOf(row: QuarantinedEvent) {
  const check = decodeAggregateEvent(row.payload);
  if ('undecodable' in check) {
    const what = check.undecodable === 'is not UTF-8' ? 'UTF-8 text' : 'JSON';
    throw stillInvalid(`The stored message is not ${what}`, [{ path: 'payload', message: check.undecodable }]);
  }
  if ('errors' in check) {
    throw stillInvalid('The stored message still fails the event contract', payloadErrors(check.errors));
  }
  if (check.event.tenantId !== row.tenantId) {
    throw stillInvalid(`The event belongs to another tenant than its subject ${row.subject}`, [
      { path: 'payload.tenantId', message: `must be the subject’s tenant ${row.tenantId}` },
    ]);
  }
  return check.event;
}

/** Creates the quarantine actions over the pool and the ingress the routes share. */
export function createSagaQuarantine(deps: { pool: Pool; logger: Logger; ingress: SagaIngress }): SagaQuarantine {
  const { pool, logger, ingress } = deps;

  const resolve = async (
    tenantId: string,
    id: string,
    resolution: QuarantineResolution,
    check: (row: QuarantinedEvent) => Promise<QuarantineResolution['outcome']>,
  ): Promise<QuarantineActionOutcome> =>
    withTransaction(pool, async (client) => {
      const row = await getQuarantinedEvent(client, tenantId, id, { forUpdate: true });
      if (!row) throw notFound(`Quarantined event ${id} not found`);
      if (row.resolution) {
        if (row.resolution.action === resolution.action) return { event: row, repeated: true };
        throw conflict(
          `Quarantined event ${id} was already ${row.resolution.action} by ${row.resolution.by} at ${row.resolution.at}`,
        );
      }
      const done = { ...resolution, outcome: await check(row) };
      await resolveQuarantinedEvent(client, tenantId, id, done);
      await recordAudit(client, {
        tenantId,
        eventType: `saga.quarantine.${resolution.action}`,
        actor: resolution.by,
        subject: `quarantined-event/${id}`,
        details: {
          id,
          stream: row.stream,
          streamSequence: row.streamSequence,
          subject: row.subject,
          eventId: row.eventId,
          errorKind: row.errorKind,
          reason: resolution.reason,
          ...(done.outcome ? { outcome: done.outcome } : {}),
        },
      });
      logger.info(
        { tenantId, id, eventId: row.eventId, action: resolution.action },
        `quarantined event ${resolution.action}`,
      );
      const after = await getQuarantinedEvent(client, tenantId, id);
      return { event: after!, repeated: false };
    });

  const redeliver: SagaQuarantine['redeliver'] = (tenantId, id, by) =>
    resolve(
      tenantId,
      id,
      { action: 'redelivered', by: by.subject, at: new Date().toISOString(), reason: by.note ?? null, outcome: null },
      async (row) => {
        const [result] = await ingress.ingestEvents([eventOf(row)], { via: 'redelivered' });
        if (!result || result.status === 'invalid') {
          throw stillInvalid('The stored event still cannot be routed', payloadErrors(result?.errors ?? []));
        }
        return {
          status: result.status,
          eventId: result.eventId,
          instances: result.instances,
          ...(result.reason ? { reason: result.reason } : {}),
        };
      },
    );

  /** One replayed event's outcome: a refusal (404/409/422) leaves the event as it was and the batch goes on. */
  const replayOne = async (
    run: () => Promise<{ repeated: boolean }>,
  ): Promise<{ outcome: ReplayOutcome; message?: string }> => {
    try {
      return { outcome: (await run()).repeated ? 'repeated' : 'redelivered' };
    } catch (error) {
      if (error instanceof HttpError && [404, 409, 422].includes(error.statusCode)) {
        return { outcome: 'refused', message: error.message };
      }
      // Temporal or Postgres unavailable: stop; the events handled so far stay handled, each with its audit record.
      throw error;
    }
  };

  return {
    redeliver,

    discard: (tenantId, id, by) =>
      resolve(
        tenantId,
        id,
        { action: 'discarded', by: by.subject, at: new Date().toISOString(), reason: by.reason, outcome: null },
        async () => null,
      ),

    async replay(tenantId, request, by) {
      const limit = request.limit ?? 100;
      const filter = {
        ...(request.sagaName ? { sagaName: request.sagaName } : {}),
        from: request.from,
        to: request.to,
      };
      const selected =
        request.source === 'quarantined'
          ? await selectQuarantinedForReplay(pool, tenantId, filter, limit)
          : await selectUnmatchedForReplay(pool, tenantId, filter, limit);
      const base = { source: request.source, count: selected.total, ids: selected.ids };
      if (request.dryRun !== false) return { dryRun: true, ...base };
      if (request.expectedCount !== selected.total) {
        // The current count as a field error too, so a client reads it without parsing the message.
        throw new HttpError(
          409,
          'Conflict',
          `${selected.total} ${request.source} events match now` +
            (request.expectedCount === undefined
              ? '; a real run needs expectedCount (run the dry run first)'
              : `, not the expected ${request.expectedCount}; nothing was replayed`),
          {},
          [{ path: 'body.expectedCount', message: `must equal the current count ${selected.total}` }],
        );
      }
      const items: NonNullable<ReplayResponse['items']> = [];
      for (const id of selected.ids) {
        const done = await replayOne(() =>
          request.source === 'quarantined'
            ? redeliver(tenantId, id, { subject: by, note: 'bulk replay' })
            : ingress.redeliver(tenantId, id, by),
        );
        items.push({ id, ...done });
      }
      const outcomes = { redelivered: 0, repeated: 0, refused: 0 };
      for (const item of items) outcomes[item.outcome]++;
      await recordAudit(pool, {
        tenantId,
        eventType: 'saga.events.replayed',
        actor: by,
        subject: `${request.source}-events`,
        details: { ...filter, source: request.source, count: selected.total, limit, outcomes },
      });
      logger.info({ tenantId, source: request.source, ...filter, outcomes }, 'events replayed');
      return { dryRun: false, ...base, outcomes, items };
    },
  };
}
