/**
 * The published contracts: JSON Schema files and OpenAPI fragments generated from the TypeBox schemas the API validates
 * with — pack approvals (the Task Runner's events and the ack API) and sagas (aggregate events, effect commands and
 * results, Gateway commands, and the events ingress).
 */
import { EffectCommand, EffectResult, GatewayCommand } from '../../workflows/sagas/definitions.js';
import { ErrorResponse } from '../errors.js';
import { AckBody, AckResponse, IngestResponse, PackApprovalRequested, PackApprovalUpdated } from './pack-approvals.js';
import { AggregateEvent, EventResult, EventsResponse, InstanceOutcome, MAX_EVENTS_PER_REQUEST } from './sagas.js';

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const schema = (s: object, id: string) => ({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...s, $id: id });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const retryable = (description: string) => ({
  description,
  headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait before retrying' } },
});

/** `schema` with every reference by schema id (`{ $ref: 'X' }`, as the API registers them) pointing into components. */
function componentRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(componentRefs);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) =>
      key === '$ref' && typeof value === 'string' && !value.startsWith('#')
        ? [key, ref(value).$ref]
        : [key, componentRefs(value)],
    ),
  );
}

/** The events-ingress fragment of the saga API. */
function sagaEventsOpenApi() {
  const results = { 'application/json': { schema: ref('SagaEventsResponse') } };
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: ref('ErrorResponse') } },
  });
  return {
    openapi: '3.1.0',
    info: { title: 'StellaOps sagas — aggregate events ingress', version: '1.0.0' },
    paths: {
      '/api/v1/events': {
        post: {
          summary: 'Ingest aggregate events: one event, or a batch',
          description:
            'Each event is routed to every saga that triggers on it and answered on its own, in request order. ' +
            'Scope `Runner.Events:Write`; every event’s tenantId must be the token’s tenant. Unknown fields are kept. ' +
            'Events are deduplicated by (tenantId, eventId): retrying a request is always safe.',
          security: [{ bearer: [] }],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    ref('AggregateEvent'),
                    {
                      type: 'object',
                      required: ['events'],
                      additionalProperties: false,
                      properties: {
                        events: {
                          type: 'array',
                          minItems: 1,
                          maxItems: MAX_EVENTS_PER_REQUEST,
                          items: ref('AggregateEvent'),
                        },
                      },
                    },
                  ],
                },
              },
            },
          },
          responses: {
            '202': {
              description:
                'At least one event was recorded: `accepted` (delivered to the listed instances; none when no saga ' +
                'triggers on the event), `unmatched` (no instance yet: delivered when it starts) or `late` (its ' +
                'instance has finished: recorded with the reason, redelivered only explicitly)',
              content: results,
            },
            '200': { description: 'Every event was a duplicate (or invalid): nothing changed', content: results },
            '400': error('A single invalid event, or a batch of invalid events only; field errors. Do not retry.'),
            '401': error('Missing or invalid bearer token'),
            '403': error('Missing scope, or an event of another tenant: nothing was accepted'),
            '503': {
              ...retryable(
                'Temporal or Postgres unavailable. Retry the whole request with backoff: events answered before the ' +
                  'outage stay recorded and are answered `duplicate`.',
              ),
              content: { 'application/json': { schema: ref('ErrorResponse') } },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: componentRefs({
        AggregateEvent,
        SagaEventsResponse: EventsResponse,
        SagaEventResult: EventResult,
        SagaInstanceOutcome: InstanceOutcome,
        ErrorResponse,
      }),
    },
  };
}

/** File name → content of every contract file. */
export function contractFiles(): Record<string, string> {
  return {
    'aggregate-event.schema.json': json(
      schema(AggregateEvent, 'https://stellaops.dev/contracts/aggregate-event.schema.json'),
    ),
    'effect-command.schema.json': json(
      schema(EffectCommand, 'https://stellaops.dev/contracts/effect-command.schema.json'),
    ),
    'effect-result.schema.json': json(
      schema(EffectResult, 'https://stellaops.dev/contracts/effect-result.schema.json'),
    ),
    'gateway-command.schema.json': json(
      schema(GatewayCommand, 'https://stellaops.dev/contracts/gateway-command.schema.json'),
    ),
    'saga-events.openapi.json': json(sagaEventsOpenApi()),
    'pack-approval-requested.schema.json': json(
      schema(PackApprovalRequested, 'https://stellaops.dev/contracts/pack-approval-requested.schema.json'),
    ),
    'pack-approval-updated.schema.json': json(
      schema(PackApprovalUpdated, 'https://stellaops.dev/contracts/pack-approval-updated.schema.json'),
    ),
    'pack-approvals.openapi.json': json({
      openapi: '3.1.0',
      info: { title: 'StellaOps pack approvals — Task Runner ingestion', version: '1.0.0' },
      paths: {
        '/notifications/pack-approvals': {
          post: {
            summary: 'Ingest a pack approval event',
            security: [{ bearer: [] }],
            parameters: ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => ({
              name,
              in: 'header',
              required: true,
              schema: { type: 'string' },
              description: 'Standard Webhooks signature over `{webhook-id}.{webhook-timestamp}.{raw body}`',
            })),
            requestBody: {
              required: true,
              content: {
                'application/json': { schema: { oneOf: [ref('PackApprovalRequested'), ref('PackApprovalUpdated')] } },
              },
            },
            responses: {
              '202': { description: 'Accepted', content: { 'application/json': { schema: ref('IngestResponse') } } },
              '200': {
                description: 'Duplicate (same eventId); nothing changed',
                content: { 'application/json': { schema: ref('IngestResponse') } },
              },
              '400': { description: 'Invalid event; field errors in the body. Do not retry.' },
              '401': { description: 'Missing/invalid token or signature, stale timestamp, or a replayed signature id' },
              '403': { description: 'Missing scope, tenant mismatch, or address not allowed' },
              '409': { description: 'The approval has already finished. Do not retry.' },
              '429': retryable('Rate limit of the tenant reached. Retry with backoff.'),
              '503': retryable('Temporal or Postgres unavailable. Retry with backoff.'),
            },
          },
        },
        '/notifications/pack-approvals/{runId}/{approvalId}/ack': {
          post: {
            summary: 'Approve or reject',
            parameters: ['runId', 'approvalId'].map((name) => ({
              name,
              in: 'path',
              required: true,
              schema: { type: 'string' },
            })),
            requestBody: { required: true, content: { 'application/json': { schema: ref('AckBody') } } },
            responses: {
              '200': {
                description: 'Decision recorded (or the same decision repeated)',
                content: { 'application/json': { schema: ref('AckResponse') } },
              },
              '403': { description: 'Approver lacks the required grants' },
              '404': { description: 'Unknown approval' },
              '409': { description: 'Decided differently already, or no longer pending' },
            },
          },
        },
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        schemas: { PackApprovalRequested, PackApprovalUpdated, IngestResponse, AckBody, AckResponse },
      },
    }),
  };
}
