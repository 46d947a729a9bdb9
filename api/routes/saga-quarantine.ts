/**
 * Quarantine and controlled replay of aggregate events: the messages the JetStream bridge could not route
 * (`/api/v1/events/quarantined`: list, read, redeliver, discard) and the bulk replay of unmatched or quarantined
 * events (`POST /api/v1/events/replay`). Reading needs `Runner.Sagas:Read` (or `…:Operate`), every change
 * `Runner.Sagas:Operate`; every route is tenant-scoped by the token. The actions are the quarantine service's
 * (`api/services/saga-quarantine.ts`), which routes through the one ingress path.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Scope } from '../../core/scopes.js';
import { getQuarantinedEvent, listQuarantinedEvents, type QuarantinedEvent } from '../../db/queries/saga-quarantine.js';
import type { AppDeps } from '../deps.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { commonErrorResponses, errorRef, notFound, validationFailed } from '../errors.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import {
  DiscardQuarantinedBody,
  ListQuarantinedQuery,
  QuarantineActionResponse,
  QuarantinedEventDoc,
  QuarantinedList,
  QuarantineParams,
  RedeliverQuarantinedBody,
  ReplayBody,
  ReplayResponse,
} from '../schemas/saga-quarantine.js';
import { createSagaIngress } from '../services/saga-ingress.js';
import { utf8TextOf } from '../services/saga-ingress.js';
import { createSagaQuarantine } from '../services/saga-quarantine.js';
import { createSagaTemporal } from '../temporal/sagas.js';

const READ_SCOPES = [Scope.RunnerSagasRead, Scope.RunnerSagasOperate];
const OPERATE_SCOPES = [Scope.RunnerSagasOperate];
const QUARANTINED = '/api/v1/events/quarantined';

/** The id a quarantine-list cursor names; anything this API did not encode is a 400. */
function decodeQuarantineCursor(cursor: string): string {
  return decodeCursor(cursor, (value) =>
    typeof value === 'string' && /^[1-9][0-9]{0,17}$/.test(value) ? value : undefined,
  );
}

/** A row as the API shows it: the bytes as base64 and, when they are UTF-8, as text; no tenant (the token's). */
const quarantinedDoc = (e: QuarantinedEvent) => {
  const { tenantId: _tenantId, payload, ...doc } = e;
  return { ...doc, payloadBase64: payload.toString('base64'), payloadText: utf8TextOf(payload) ?? null };
};

/** A [from, to) range must not be empty. */
function checkRange(from: string | undefined, to: string | undefined, part: 'querystring' | 'body'): void {
  if (from && to && Date.parse(from) >= Date.parse(to)) {
    throw validationFailed([{ in: part, pointer: '/to', message: 'must be after from' }]);
  }
}

/** The quarantine and replay routes; one capability plugin with one bearer check (per-route scopes). */
export const sagaQuarantineRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { pool } = deps;
  const temporal = createSagaTemporal(deps.temporal, { taskQueuePrefix: deps.taskQueuePrefix });
  const ingress = createSagaIngress({ pool, logger: deps.logger, temporal });
  const quarantine = createSagaQuarantine({ pool, logger: deps.logger, ingress });

  app.addSchema(QuarantinedEventDoc);
  // onRequest: a caller without the scope learns nothing about the input.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: READ_SCOPES });
  const security = [{ bearer: [] }];
  const tags = ['sagas'];

  app.get(
    QUARANTINED,
    {
      schema: {
        tags,
        summary: 'List the tenant’s quarantined event messages, newest first',
        description:
          'Messages the JetStream bridge could not route, byte for byte with their subject, headers and stream ' +
          'sequence. Filters: status, errorKind, sagaName (the payload routes to it), subject, from/to (first seen, ' +
          '[from, to)); cursor pagination.',
        security,
        querystring: ListQuarantinedQuery,
        response: { 200: QuarantinedList, ...commonErrorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      checkRange(q.from, q.to, 'querystring');
      const page = await listQuarantinedEvents(pool, principalOf(request).tenantId, {
        limit: q.limit ?? 50,
        ...(q.status ? { status: q.status } : {}),
        ...(q.errorKind ? { errorKind: q.errorKind } : {}),
        ...(q.sagaName ? { sagaName: q.sagaName } : {}),
        ...(q.subject ? { subject: q.subject } : {}),
        ...(q.from ? { from: q.from } : {}),
        ...(q.to ? { to: q.to } : {}),
        ...(q.cursor ? { afterId: decodeQuarantineCursor(q.cursor) } : {}),
      });
      return {
        items: page.items.map(quarantinedDoc),
        ...(page.next ? { nextCursor: encodeCursor(page.next) } : {}),
      };
    },
  );

  app.get(
    `${QUARANTINED}/:id`,
    {
      schema: {
        tags,
        summary: 'Read a quarantined event message',
        security,
        params: QuarantineParams,
        response: { 200: Type.Ref('QuarantinedEvent'), 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const row = await getQuarantinedEvent(pool, principalOf(request).tenantId, request.params.id);
      if (!row) throw notFound(`Quarantined event ${request.params.id} not found`);
      return quarantinedDoc(row);
    },
  );

  app.post(
    `${QUARANTINED}/:id/redeliver`,
    {
      config: { scopes: OPERATE_SCOPES },
      // The note is optional, and so is the body that carries it.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags,
        summary: 'Redeliver a quarantined event message (after a fix)',
        description:
          'Decodes the stored bytes again, checks them as an event of the subject’s tenant and routes the event like ' +
          'any other (`via: redelivered`; a repeat of an event id answers `duplicate`). Answers the row, ' +
          '`redelivered` with the ingress’ result; audited. 422 with the field errors when the bytes still are not a ' +
          'routable event, and 503 when Temporal or Postgres is unavailable: the row stays as it was. A second call ' +
          'answers the recorded resolution (`repeated`); 409 for a discarded one.',
        security,
        params: QuarantineParams,
        body: RedeliverQuarantinedBody,
        response: {
          200: QuarantineActionResponse,
          404: errorRef,
          409: errorRef,
          422: errorRef,
          ...commonErrorResponses,
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const note = request.body.note;
      const done = await quarantine.redeliver(principal.tenantId, request.params.id, {
        subject: principal.subject,
        ...(note ? { note } : {}),
      });
      return { event: quarantinedDoc(done.event), repeated: done.repeated };
    },
  );

  app.post(
    `${QUARANTINED}/:id/discard`,
    {
      config: { scopes: OPERATE_SCOPES },
      schema: {
        tags,
        summary: 'Discard a quarantined event message with a reason',
        description:
          'Marks the row `discarded` with the reason (required, not blank); audited. A second discard answers the ' +
          'recorded resolution (`repeated`); 409 for a redelivered one.',
        security,
        params: QuarantineParams,
        body: DiscardQuarantinedBody,
        response: { 200: QuarantineActionResponse, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const done = await quarantine.discard(principal.tenantId, request.params.id, {
        subject: principal.subject,
        reason: request.body.reason,
      });
      return { event: quarantinedDoc(done.event), repeated: done.repeated };
    },
  );

  app.post(
    '/api/v1/events/replay',
    {
      config: { scopes: OPERATE_SCOPES },
      schema: {
        tags,
        summary: 'Replay the unmatched or quarantined events of a time range, after a dry-run count',
        description:
          'A dry run (the default) answers how many events match (pending unmatched and late events by recording ' +
          'time, or open quarantined messages by first seen, in [from, to), of one saga when sagaName is set) and ' +
          'the ids a run would handle, oldest first (at most limit). A real run needs `dryRun: false` and ' +
          '`expectedCount` equal to the current count (else 409 with the current count, nothing done); it ' +
          'redelivers each event as its own redelivery does (each audited) and answers per-outcome counts; the batch ' +
          'is audited once. 503 when Temporal or Postgres becomes unavailable: the events handled before stay handled.',
        security,
        body: ReplayBody,
        response: { 200: ReplayResponse, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      checkRange(request.body.from, request.body.to, 'body');
      const principal = principalOf(request);
      return quarantine.replay(principal.tenantId, request.body, principal.subject);
    },
  );
};
