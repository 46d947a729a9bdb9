/**
 * The pack-approval event contract (`PackApprovalRequested`, `PackApprovalUpdated`) and the ack API, as TypeBox
 * schemas: the API validates with them and `npm run contracts` publishes them under docs/contracts/.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DECISIONS, PackApprovalRequested, PackApprovalUpdated } from '../../workflows/pack-approval/definitions.js';
import { Id } from '../../workflows/shared/schemas.js';

// The event schemas live with the workflow definitions, which derive the event types from them.
export { PackApprovalRequested, PackApprovalUpdated };

/**
 * Body of the ingestion route: either event, by reference to the schemas the route registers (so the OpenAPI
 * document names them), typed as the union of both.
 */
export const PackApprovalEventBody = Type.Unsafe<PackApprovalRequested | PackApprovalUpdated>(
  Type.Union([Type.Ref('PackApprovalRequested'), Type.Ref('PackApprovalUpdated')]),
);
export type PackApprovalEventBody = Static<typeof PackApprovalEventBody>;

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
