/**
 * Pack approvals: one `packApprovalWorkflow` per (tenant, run, approval) receives the Task Runner's approval
 * events, notifies approvers, takes the human decision (Update) and resumes the run through the Task Runner.
 * Shared by the workflow, its activities and the API.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

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

/** A policy gate attached to an event. */
export interface PolicyGate {
  gateId: string;
  parameters: Record<string, string>;
  messages: string[];
}

/** An event from the Task Runner, as validated by the API. */
export interface PackApprovalEvent {
  eventId: string;
  type: PackApprovalEventType;
  kind: PackEventKind;
  tenantId: string;
  runId: string;
  approvalId: string;
  planHash: string;
  requiredGrants: string[];
  stepIds: string[];
  message: { templateId: string; parameters: Record<string, string> };
  /** Where and how to resume the run; the token is a secret and never leaves in clear. */
  resumeCallback?: { url: string; token: string };
  policyGate?: PolicyGate;
  requestedBy: string;
  requestedAt: string;
  expiresAt?: string;
  locale?: string;
  correlationId: string;
  traceparent?: string;
  /** Updated events only. */
  status?: PackUpdateStatus;
  reason?: string;
}

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

/** Failure types of this capability (stable strings). */
export const ApprovalFailure = {
  NotPending: 'ApprovalNotPending',
  AlreadyDecided: 'ApprovalAlreadyDecided',
  GrantsMissing: 'ApprovalGrantsMissing',
  NotRequested: 'ApprovalNotRequested',
} as const;

/** A notification to deliver, produced by routing. */
export interface NotificationIntent {
  channel: 'email' | 'webhook';
  /** Email address or webhook URL. */
  recipient: string;
  templateId: string;
  locale: string;
  /** Why: 'requested' | 'reminder' | 'expired' | 'hold' | 'released' | 'decided'. */
  reason: 'requested' | 'reminder' | 'expired' | 'hold' | 'released' | 'decided';
}
