/**
 * The pack-approval event contract (`PackApprovalRequested`, `PackApprovalUpdated`) and the ack API, as TypeBox
 * schemas: the API validates with them and `npm run contracts` publishes them under docs/contracts/.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DECISIONS, PACK_UPDATE_STATUSES } from '../../workflows/pack-approval/definitions.js';

const Id = (description: string) => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', description });
const DateTime = (description: string) => Type.String({ format: 'date-time', description });
const StringMap = (description: string) =>
  Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 2000 }), { maxProperties: 100, description });

const PolicyGate = Type.Object(
  {
    gateId: Id('Policy gate id'),
    parameters: StringMap('Gate parameters shown to approvers'),
    messages: Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 50, description: 'Gate messages' }),
  },
  { additionalProperties: false },
);

const common = {
  eventId: Id('Unique id of this event; a repeat is acknowledged as a duplicate'),
  tenantId: Id('Tenant; must equal the token’s tenant'),
  runId: Id('Task Runner run id'),
  approvalId: Id('Approval id within the run'),
  planHash: Type.String({ pattern: '^[A-Za-z0-9:+/=_-]{8,200}$', description: 'Hash of the pack plan' }),
  requiredGrants: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
    maxItems: 50,
    description: 'Grants an approver needs',
  }),
  stepIds: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
    maxItems: 500,
    description: 'Plan steps behind the approval',
  }),
  message: Type.Object(
    {
      templateId: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,99}$' }),
      parameters: StringMap('Template parameters'),
    },
    { additionalProperties: false, description: 'Message template and parameters' },
  ),
  resumeCallback: Type.Optional(
    Type.Object(
      {
        url: Type.String({ format: 'uri', maxLength: 2000, description: 'Task Runner resume endpoint' }),
        token: Type.String({
          minLength: 8,
          maxLength: 4000,
          description: 'Secret resume token; never leaves in clear',
        }),
      },
      { additionalProperties: false },
    ),
  ),
  policyGate: Type.Optional(PolicyGate),
  requestedBy: Type.String({ minLength: 1, maxLength: 200 }),
  requestedAt: DateTime('When the approval was requested'),
  expiresAt: Type.Optional(DateTime('When the approval expires')),
  locale: Type.Optional(
    Type.String({ pattern: '^[a-z]{2}(-[A-Z]{2})?$', description: 'Preferred locale, e.g. de-DE' }),
  ),
  correlationId: Type.String({ minLength: 1, maxLength: 200 }),
  traceparent: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' })),
};

export const PackApprovalRequested = Type.Object(
  {
    type: Type.Literal('PackApprovalRequested'),
    kind: Type.Union([Type.Literal('pack.approval'), Type.Literal('pack.policy.gate')]),
    ...common,
  },
  { $id: 'PackApprovalRequested', additionalProperties: false, title: 'PackApprovalRequested' },
);

export const PackApprovalUpdated = Type.Object(
  {
    type: Type.Literal('PackApprovalUpdated'),
    kind: Type.Union([Type.Literal('pack.approval'), Type.Literal('pack.policy.gate')]),
    ...common,
    status: Type.Union(
      PACK_UPDATE_STATUSES.map((s) => Type.Literal(s)),
      { description: 'New status' },
    ),
    reason: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { $id: 'PackApprovalUpdated', additionalProperties: false, title: 'PackApprovalUpdated' },
);

export const PackApprovalEventBody = Type.Union([Type.Ref('PackApprovalRequested'), Type.Ref('PackApprovalUpdated')]);
export type PackApprovalEventBody = Static<typeof PackApprovalRequested> | Static<typeof PackApprovalUpdated>;

export const IngestResponse = Type.Object({
  status: Type.Union([Type.Literal('accepted'), Type.Literal('duplicate')]),
  eventId: Type.String(),
  workflowId: Type.String(),
});

export const ApprovalParams = Type.Object({ runId: Id('Run id'), approvalId: Id('Approval id') });

export const AckBody = Type.Object(
  {
    decision: Type.Union(DECISIONS.map((d) => Type.Literal(d))),
    comment: Type.Optional(Type.String({ maxLength: 2000 })),
    /** Signed link token, instead of a bearer token. */
    token: Type.Optional(Type.String({ maxLength: 4000 })),
  },
  { additionalProperties: false },
);

export const AckResponse = Type.Object({
  runId: Type.String(),
  approvalId: Type.String(),
  decision: Type.Union(DECISIONS.map((d) => Type.Literal(d))),
  decidedBy: Type.String(),
  decidedAt: Type.String({ format: 'date-time' }),
  comment: Type.Optional(Type.String()),
  resumeStatus: Type.String({ description: 'pending | resumed | failed | not-configured' }),
  resumeToken: Type.String({ description: 'Token for CLI use, signed by this service (not the Task Runner secret)' }),
});
