/**
 * Pack approvals: one `packApprovalWorkflow` per (tenant, run, approval) receives the Task Runner's approval
 * events, notifies approvers, takes the human decision (Update) and resumes the run through the Task Runner.
 * Shared by the workflow, its activities and the API.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { Id } from '../shared/schemas.js';

/** Task queue of the workflow and its activities. */
export const PACK_APPROVAL_TASK_QUEUE = 'pack-approval';
/** Workflow type name (the function name; never rename). */
export const PACK_APPROVAL_WORKFLOW_TYPE = 'packApprovalWorkflow';

/** Builds the business-key workflow id `pack-approval/{tenant}/{runId}/{approvalId}`. */
export function packApprovalWorkflowId(tenantId: string, runId: string, approvalId: string): string {
  return `pack-approval/${tenantId}/${runId}/${approvalId}`;
}

/** Event types the Task Runner posts. */
export const PACK_APPROVAL_EVENT_TYPES = ['PackApprovalRequested', 'PackApprovalUpdated'] as const;
export type PackApprovalEventType = (typeof PACK_APPROVAL_EVENT_TYPES)[number];

/** What an event is about: a human approval, or a policy gate that holds the run. */
export const PACK_EVENT_KINDS = ['pack.approval', 'pack.policy.gate'] as const;
export type PackEventKind = (typeof PACK_EVENT_KINDS)[number];

/** Statuses an Updated event can carry. */
export const PACK_UPDATE_STATUSES = ['approved', 'rejected', 'expired', 'cancelled', 'held', 'released'] as const;
export type PackUpdateStatus = (typeof PACK_UPDATE_STATUSES)[number];

/** States of an approval; a policy gate goes held → released, an approval pending → approved | rejected | expired. */
export const APPROVAL_STATES = ['pending', 'held', 'approved', 'rejected', 'expired', 'cancelled', 'released'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

const DateTime = (description: string) => Type.String({ format: 'date-time', description });
const StringMap = (description: string) =>
  Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 2000 }), { maxProperties: 100, description });

/** A policy gate attached to an event. */
export const PolicyGate = Type.Object(
  {
    gateId: Id('Policy gate id'),
    parameters: StringMap('Gate parameters shown to approvers'),
    messages: Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 50, description: 'Gate messages' }),
  },
  { additionalProperties: false },
);
export type PolicyGate = Static<typeof PolicyGate>;

/** Fields both event types carry. */
const eventFields = {
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
  /** Where and how to resume the run; the token is a secret and never leaves in clear. */
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
const EventKind = Type.Union(PACK_EVENT_KINDS.map((k) => Type.Literal(k)));

/** `PackApprovalRequested`, as published in docs/contracts/ and validated by the API. */
export const PackApprovalRequested = Type.Object(
  { type: Type.Literal('PackApprovalRequested'), kind: EventKind, ...eventFields },
  { $id: 'PackApprovalRequested', additionalProperties: false, title: 'PackApprovalRequested' },
);
export type PackApprovalRequested = Static<typeof PackApprovalRequested>;

/** `PackApprovalUpdated`, as published in docs/contracts/ and validated by the API. */
export const PackApprovalUpdated = Type.Object(
  {
    type: Type.Literal('PackApprovalUpdated'),
    kind: EventKind,
    ...eventFields,
    status: Type.Union(
      PACK_UPDATE_STATUSES.map((s) => Type.Literal(s)),
      { description: 'New status' },
    ),
    reason: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { $id: 'PackApprovalUpdated', additionalProperties: false, title: 'PackApprovalUpdated' },
);
export type PackApprovalUpdated = Static<typeof PackApprovalUpdated>;

/**
 * An event from the Task Runner as the workflow, routing and templates read it: either schema above, with `status`
 * (and `reason`) only on Updated events.
 */
export type PackApprovalEvent = Omit<PackApprovalUpdated, 'type' | 'status'> & {
  type: PackApprovalEventType;
  /** Updated events only. */
  status?: PackUpdateStatus;
};

/** A human decision. */
export const DECISIONS = ['approve', 'reject'] as const;
export type Decision = (typeof DECISIONS)[number];

/** Arguments of the ack update. */
export interface AckApprovalArgs {
  decision: Decision;
  comment?: string;
  decidedBy: string;
  /** Grants of the deciding principal (scopes); the approval's requiredGrants must be covered. */
  grants: string[];
}

/** Outcome of the resume callback to the Task Runner. */
export interface ResumeOutcome {
  status: 'pending' | 'resumed' | 'failed' | 'not-configured';
  httpStatus?: number;
  error?: string;
}

/** Result of an ack (also returned for a repeated identical ack). */
export interface AckResult {
  decision: Decision;
  decidedBy: string;
  decidedAt: string;
  comment?: string;
  resumeStatus: ResumeOutcome['status'];
  /** Set when this answers a repeat of an earlier identical ack. */
  repeated?: boolean;
}

/** Input of `packApprovalWorkflow` (set by the API at signalWithStart). */
export interface PackApprovalInput {
  tenantId: string;
  runId: string;
  approvalId: string;
  /** Reminders this many seconds before expiry (default one hour). */
  reminderOffsetsSeconds?: number[];
  /** Expiry when an event has no `expiresAt` (default 7 days after the request). */
  defaultTtlSeconds?: number;
}

/** Readable state of an approval (query); never contains the resume secret. */
export interface ApprovalView {
  tenantId: string;
  runId: string;
  approvalId: string;
  state: ApprovalState;
  kind: PackEventKind;
  planHash: string;
  requiredGrants: string[];
  stepIds: string[];
  requestedBy: string;
  requestedAt: string;
  expiresAt: string | null;
  locale: string;
  correlationId: string;
  /** Message template and parameters of the request (plan metadata for notifications). */
  message: PackApprovalEvent['message'];
  policyGate: PolicyGate | null;
  /** Last status or reason the Task Runner reported. */
  lastReason: string | null;
  decision: AckResult | null;
  resume: ResumeOutcome;
  eventIds: string[];
}

/** Signal: an accepted event from the Task Runner (deduplicated by eventId inside the workflow). */
export const packApprovalEventSignal = defineSignal<[PackApprovalEvent]>('packApprovalEvent');
/** Update: the human decision. Rejected when unknown, decided differently, or the approver lacks the grants. */
export const ackApprovalUpdate = defineUpdate<AckResult, [AckApprovalArgs]>('ackApproval');
/** Query: current view. */
export const getApprovalQuery = defineQuery<ApprovalView>('getApproval');

/** Failure types of this capability (stable strings, compared on `ApplicationFailure.type`; never renamed). */
export const ApprovalFailure = {
  /** The ack Update: the approval is no longer pending. */
  NotPending: 'ApprovalNotPending',
  /** The ack Update: decided differently before. */
  AlreadyDecided: 'ApprovalAlreadyDecided',
  /** The ack Update: the approver lacks required grants. */
  GrantsMissing: 'ApprovalGrantsMissing',
  /** The ack Update: no approval was requested for this run and approval id (yet). */
  NotRequested: 'ApprovalNotRequested',
  /** A notification cannot be delivered (refused by the receiver, invalid recipient, no template): final. */
  DeliveryRejected: 'DeliveryRejected',
  /** A notification or resume call failed in a way another attempt can get past: retried. */
  DeliveryUnavailable: 'DeliveryUnavailable',
  /** The Task Runner refused the resume call (or its callback URL/token is unusable): final. */
  ResumeRejected: 'ResumeRejected',
} as const;
export type ApprovalFailure = (typeof ApprovalFailure)[keyof typeof ApprovalFailure];

/** Delivery channels of notifications. */
export const NOTIFY_CHANNELS = ['email', 'webhook'] as const;
/** Why a notification is sent. */
export const NOTIFY_REASONS = ['requested', 'reminder', 'expired', 'hold', 'released', 'decided'] as const;

/** A notification to deliver, produced by routing. */
export interface NotificationIntent {
  channel: (typeof NOTIFY_CHANNELS)[number];
  /** Email address or webhook URL. */
  recipient: string;
  templateId: string;
  locale: string;
  reason: (typeof NOTIFY_REASONS)[number];
}
