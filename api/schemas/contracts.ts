/** The published pack-approval contract: JSON Schema files and an OpenAPI fragment, generated from TypeBox. */
import { AckBody, AckResponse, IngestResponse, PackApprovalRequested, PackApprovalUpdated } from './pack-approvals.js';

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
const schema = (s: object, id: string) => ({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...s, $id: id });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const retryable = (description: string) => ({
  description,
  headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait before retrying' } },
});

/** File name → content of every contract file. */
export function contractFiles(): Record<string, string> {
  return {
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
