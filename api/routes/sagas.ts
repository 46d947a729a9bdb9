/**
 * Sagas: the event ingress (`POST /api/v1/events`, scope `Runner.Events:Write`), saga instances from the projection
 * (`Runner.Sagas:Read`), cancel, reset, and the unmatched and late events with their redelivery
 * (`Runner.Sagas:Operate`).
 * Every route is tenant-scoped by the token. Routing and delivery are the ingress service's
 * (`api/services/saga-ingress.ts`), shared with the other transports.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Scope } from '../../core/scopes.js';
import { listAudit, recordAudit } from '../../db/queries/audit.js';
import {
  getSagaInstance,
  listSagaCompensations,
  listSagaEventLog,
  listSagaInstances,
  listUnmatchedEvents,
  type SagaInstance,
  type SagaInstanceCursor,
  type UnmatchedEvent,
} from '../../db/queries/sagas.js';
import { sagaWorkflowId } from '../../workflows/sagas/definitions.js';
import { sagaByName } from '../../workflows/sagas/registry.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef, forbidden, notFound, validationFailed, type FieldError } from '../errors.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import { isPostgresDateTime } from '../plugins/strict-input.js';
import {
  AggregateEvent as AggregateEventSchema,
  CancelSagaBody,
  EventResult,
  EventsBody,
  EventsResponse,
  InstanceOutcome,
  ListSagasQuery,
  ListUnmatchedQuery,
  MAX_EVENTS_PER_REQUEST,
  RedeliverResponse,
  ResetSagaBody,
  ResetSagaResponse,
  SagaDetail,
  SagaInstanceDoc,
  SagaList,
  SagaParams,
  SagaViewDoc,
  UnmatchedEventDoc,
  UnmatchedList,
  UnmatchedParams,
} from '../schemas/sagas.js';
import { checkAggregateEvent, createSagaIngress, type EventFieldError } from '../services/saga-ingress.js';
import { createSagaTemporal } from '../temporal/sagas.js';

const READ_SCOPES = [Scope.RunnerSagasRead, Scope.RunnerSagasOperate];
const OPERATE_SCOPES = [Scope.RunnerSagasOperate];
const EVENTS = '/api/v1/events';
const SAGAS_PATH = '/api/v1/sagas';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const plainText = (value: unknown): value is string => typeof value === 'string' && !value.includes('\u0000');

/** The position a saga-list cursor names; anything this API did not encode is a 400. */
function decodeSagaCursor(cursor: string): SagaInstanceCursor {
  return decodeCursor(cursor, (value) => {
    if (!Array.isArray(value) || value.length !== 3) return undefined;
    const [startedAt, sagaName, correlationId] = value as unknown[];
    return plainText(startedAt) && isPostgresDateTime(startedAt) && plainText(sagaName) && plainText(correlationId)
      ? { startedAt, sagaName, correlationId }
      : undefined;
  });
}

/** The id an unmatched-list cursor names. */
function decodeUnmatchedCursor(cursor: string): string {
  return decodeCursor(cursor, (value) =>
    typeof value === 'string' && /^[1-9][0-9]{0,17}$/.test(value) ? value : undefined,
  );
}

const instanceDoc = (i: SagaInstance) => {
  const { revision: _revision, ...doc } = i;
  return doc;
};
const unmatchedDoc = (e: UnmatchedEvent) => {
  const { tenantId: _tenantId, ...doc } = e;
  return doc;
};

/** The saga routes; one capability plugin with one bearer check (per-route scopes). */
export const sagaRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { pool } = deps;
  const temporal = createSagaTemporal(deps.temporal, { taskQueuePrefix: deps.taskQueuePrefix });
  const ingress = createSagaIngress({ pool, logger: deps.logger, temporal });

  // Shared by several routes, and named in the OpenAPI document by their ids.
  for (const schema of [
    AggregateEventSchema,
    InstanceOutcome,
    EventResult,
    EventsResponse,
    SagaInstanceDoc,
    UnmatchedEventDoc,
  ]) {
    app.addSchema(schema);
  }
  // onRequest: a caller without the scope learns nothing about the input.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: READ_SCOPES });
  const security = [{ bearer: [] }];
  const tags = ['sagas'];
  const responsesRef = Type.Ref('SagaEventsResponse');

  app.post(
    EVENTS,
    {
      config: { scopes: [Scope.RunnerEventsWrite] },
      // Each event is validated on its own in the handler, so one invalid event of a batch does not refuse the rest.
      attachValidation: true,
      schema: {
        tags,
        summary: 'Ingest aggregate events: one event, or a batch of up to 500',
        description:
          'Each event is routed to every saga that triggers on it and answered on its own, in request order: ' +
          '`accepted` (the instances it reached; none when no saga triggers on it), `duplicate` (same tenant and ' +
          'eventId as before: what the first delivery did), `unmatched` (no instance yet; delivered automatically ' +
          'when it starts), `late` (the instance has finished; see reason, redeliver explicitly), `invalid` (field ' +
          'errors). 202 when at least one event was recorded, 200 when all were duplicates; 400 for a single ' +
          'invalid event or a batch of invalid events only; 403 when any event names another tenant (nothing is ' +
          'accepted); 503 with Retry-After when Temporal or Postgres is unavailable — events answered before stay ' +
          'recorded, so the retried batch answers them `duplicate`. Unknown fields are kept.',
        security,
        body: EventsBody,
        response: { 200: responsesRef, 202: responsesRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const body: unknown = request.body;
      const batch = isRecord(body) && 'events' in body;
      let items: unknown[] = [body];
      if (batch) {
        const events = body['events'];
        if (!Array.isArray(events) || events.length < 1 || events.length > MAX_EVENTS_PER_REQUEST) {
          throw validationFailed([
            { in: 'body', pointer: '/events', message: `must be an array of 1 to ${MAX_EVENTS_PER_REQUEST} events` },
          ]);
        }
        items = events;
      }
      const foreign = items.findIndex((item) => isRecord(item) && 'tenantId' in item && item['tenantId'] !== tenantId);
      if (foreign >= 0) {
        throw forbidden(`${batch ? `Event ${foreign}` : 'The event'} belongs to another tenant than the token’s`);
      }
      const prefix = (index: number) => (batch ? `/events/${index}` : '');
      const checks = items.map(checkAggregateEvent);
      const valid = checks.flatMap((check) => ('event' in check ? [check.event] : []));
      const ingested = await ingress.ingestEvents(valid);

      let next = 0;
      // Field errors of every invalid event, as pointers into the body: the 400 of a request with nothing valid.
      const refused: FieldError[] = [];
      const refuse = (index: number, errors: readonly EventFieldError[]) => {
        const pointed = errors.map((e) => ({
          in: 'body' as const,
          pointer: `${prefix(index)}${e.pointer}`,
          message: e.message,
        }));
        refused.push(...pointed);
        return [...(validationFailed(pointed).fieldErrors ?? [])];
      };
      const results: EventResult[] = checks.map((check, index) => {
        if ('errors' in check) {
          const item = items[index];
          const eventId =
            isRecord(item) && typeof item['eventId'] === 'string' && !check.errors.some((e) => e.pointer === '/eventId')
              ? item['eventId']
              : null;
          return { index, eventId, status: 'invalid', instances: [], errors: refuse(index, check.errors) };
        }
        const result = ingested[next++]!;
        if (result.status === 'invalid') return { ...result, index, errors: refuse(index, result.errors) };
        return { ...result, index };
      });
      if (results.every((r) => r.status === 'invalid')) throw validationFailed(refused);
      const recorded = results.some((r) => r.status === 'accepted' || r.status === 'unmatched' || r.status === 'late');
      return reply.code(recorded ? 202 : 200).send({ results });
    },
  );

  app.get(
    SAGAS_PATH,
    {
      schema: {
        tags,
        summary: 'List the tenant’s saga instances, newest first',
        security,
        querystring: ListSagasQuery,
        response: { 200: SagaList, ...commonErrorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await listSagaInstances(pool, principalOf(request).tenantId, {
        limit: q.limit ?? 50,
        ...(q.saga ? { sagaName: q.saga } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.correlationId ? { correlationId: q.correlationId } : {}),
        ...(q.cursor ? { cursor: decodeSagaCursor(q.cursor) } : {}),
      });
      return {
        items: page.items.map(instanceDoc),
        ...(page.next
          ? { nextCursor: encodeCursor([page.next.startedAt, page.next.sagaName, page.next.correlationId]) }
          : {}),
      };
    },
  );

  app.get(
    `${SAGAS_PATH}/:saga/:correlationId`,
    {
      schema: {
        tags,
        summary: 'Read a saga instance: state, status, timeline and compensations',
        security,
        params: SagaParams,
        response: { 200: SagaDetail, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { saga, correlationId } = request.params;
      const label = `${saga}/${correlationId}`;
      if (!sagaByName(saga)) throw notFound(`Saga ${label} not found`);
      const [stored, timeline, compensations] = await Promise.all([
        getSagaInstance(pool, tenantId, saga, correlationId),
        listSagaEventLog(pool, tenantId, saga, correlationId),
        listSagaCompensations(pool, tenantId, saga, correlationId),
      ]);
      if (stored) return { instance: instanceDoc(stored), timeline, compensations };
      // A just-started instance has not written its projection yet: its own view answers meanwhile.
      const view = await temporal.query(sagaWorkflowId(tenantId, saga, correlationId));
      if (!view) throw notFound(`Saga ${label} not found`);
      const { waitingFor: _waitingFor, compensations: live, ...instance } = view;
      return { instance: { ...instance, updatedAt: new Date().toISOString() }, timeline, compensations: live };
    },
  );

  app.post(
    `${SAGAS_PATH}/:saga/:correlationId/cancel`,
    {
      config: { scopes: OPERATE_SCOPES },
      schema: {
        tags,
        summary: 'Cancel a running saga instance with a reason',
        description:
          'The saga compensates its completed steps in reverse order. Answers the instance’s view (status ' +
          '`compensating`, or `cancelled` when there was nothing to compensate); 409 when it no longer runs.',
        security,
        params: SagaParams,
        body: CancelSagaBody,
        response: { 200: SagaViewDoc, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { saga, correlationId } = request.params;
      if (!sagaByName(saga)) throw notFound(`Saga ${saga}/${correlationId} not found`);
      const ids = {
        tenantId: principal.tenantId,
        sagaName: saga,
        correlationId,
        workflowId: sagaWorkflowId(principal.tenantId, saga, correlationId),
      };
      const view = await temporal.cancel(ids, { reason: request.body.reason, requestedBy: principal.subject });
      await recordAudit(pool, {
        tenantId: principal.tenantId,
        eventType: 'saga.cancel.requested',
        actor: principal.subject,
        subject: `${saga}/${correlationId}`,
        correlationId,
        details: { reason: request.body.reason, workflowId: ids.workflowId, status: view.status },
      });
      return view;
    },
  );

  app.post(
    `${SAGAS_PATH}/:saga/:correlationId/reset`,
    {
      config: { scopes: OPERATE_SCOPES },
      schema: {
        tags,
        summary: 'Reset a saga instance to its first or last completed workflow task',
        description:
          'Explicit intent: `confirm` must be the instance’s workflowId (else 400, nothing done). The current run ' +
          '(running or finished) is reset in Temporal: a new run replays the saga’s code from that point, with the ' +
          'events received after it reapplied. Effects and commands it calls again carry the same command ids, so ' +
          'providers and the Gateway answer them without acting twice. Answers the new run id; audited. Repeating ' +
          'the same call (same to and reason) answers the run it started (`repeated`). 404 when unknown; 409 when ' +
          'the run has no completed workflow task or Temporal refuses the reset.',
        security,
        params: SagaParams,
        body: ResetSagaBody,
        response: { 200: ResetSagaResponse, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { saga, correlationId } = request.params;
      const { confirm, reason, to } = request.body;
      if (!sagaByName(saga)) throw notFound(`Saga ${saga}/${correlationId} not found`);
      const workflowId = sagaWorkflowId(principal.tenantId, saga, correlationId);
      if (confirm !== workflowId) {
        throw validationFailed([
          { in: 'body', pointer: '/confirm', message: `must be the instance’s workflowId ${workflowId}` },
        ]);
      }
      const ids = { tenantId: principal.tenantId, sagaName: saga, correlationId, workflowId };
      const done = await temporal.reset(ids, { to, reason, requestedBy: principal.subject });
      // A repeat audits what an earlier call did not get to record (Postgres failed after Temporal had reset).
      const audited =
        done.repeated &&
        (await listAudit(pool, principal.tenantId, { eventTypePrefix: 'saga.reset' })).some(
          (a) => a.details?.['runId'] === done.runId,
        );
      if (!audited) {
        await recordAudit(pool, {
          tenantId: principal.tenantId,
          eventType: 'saga.reset',
          actor: principal.subject,
          subject: `${saga}/${correlationId}`,
          correlationId,
          details: { reason, to, workflowId, baseRunId: done.baseRunId, runId: done.runId, eventId: done.eventId },
        });
      }
      return { workflowId, to, ...done };
    },
  );

  app.get(
    `${EVENTS}/unmatched`,
    {
      schema: {
        tags,
        summary: 'List the tenant’s unmatched and late events, newest first',
        description:
          '`unmatched`: no instance existed yet (delivered automatically when it starts); `late`: the instance had ' +
          'finished (redeliver explicitly).',
        security,
        querystring: ListUnmatchedQuery,
        response: { 200: UnmatchedList, ...commonErrorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await listUnmatchedEvents(pool, principalOf(request).tenantId, {
        limit: q.limit ?? 50,
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.saga ? { sagaName: q.saga } : {}),
        ...(q.cursor ? { afterId: decodeUnmatchedCursor(q.cursor) } : {}),
      });
      return { items: page.items.map(unmatchedDoc), ...(page.next ? { nextCursor: encodeCursor(page.next) } : {}) };
    },
  );

  app.post(
    `${EVENTS}/unmatched/:id/redeliver`,
    {
      config: { scopes: OPERATE_SCOPES },
      schema: {
        tags,
        summary: 'Redeliver an unmatched or late event',
        description:
          'Routes the recorded event again: to its running instance, or — a late start event — to a new instance of ' +
          'the same correlation id (the next generation). A late event that is not a start event can only go to a ' +
          'running instance (409 when none runs). A second call answers the recorded outcome (`repeated`).',
        security,
        params: UnmatchedParams,
        response: { 200: RedeliverResponse, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { event, repeated } = await ingress.redeliver(principal.tenantId, request.params.id, principal.subject);
      return { event: unmatchedDoc(event), repeated };
    },
  );
};
