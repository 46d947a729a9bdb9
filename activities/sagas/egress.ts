/**
 * The egress of sagas: effect results, Gateway-command outcomes, saga facts and approval decisions published to the
 * workflow stream (`WORKFLOW_EVENTS`) from the activities that produce them, so other services react to what the
 * Runner did without polling it. Subjects sit under the stream's `{prefix}.>` filter:
 *
 * | message                 | subject                                              | `Nats-Msg-Id`                              |
 * | ----------------------- | ---------------------------------------------------- | ------------------------------------------ |
 * | effect result           | `{prefix}.{tenant}.effect.{effectName}.{resultType}` | the command id                             |
 * | Gateway-command outcome | `{prefix}.{tenant}.command.{commandType}.{outcome}`  | the command id                             |
 * | saga fact               | `{prefix}.{tenant}.saga.{sagaName}.{fact}`           | `{workflowId}:{generation}:{fact}`         |
 * | approval decision       | `{prefix}.{tenant}.approval.{decision}`              | `{approvalWorkflowId}:decision:{decision}` |
 *
 * The tenant token is written with `tenantSubjectToken` (a dot as `%2E`), names the same way. Headers are exactly
 * `tenant-id`, `command-id` (effects and commands), `effect-name` (effects), `x-correlation-id`, `traceparent` (when
 * known) and `Nats-Msg-Id`, plus the `Nats-Expected-Stream` of the publish itself (the server refuses a message
 * that would land in another stream than the workflow stream). The body of an effect result is the `EffectResult` contract object as the saga receives
 * it; the others are the small objects below (identities and outcomes, never a saga's state).
 *
 * Every publish waits for the stream's ack before the activity completes; a publish that is not acked throws a
 * retryable failure, so the activity runs again — its upstream call is idempotent by command id, and the repeated
 * publish carries the same `Nats-Msg-Id`, which JetStream drops as a duplicate. That deduplication only spans the
 * stream's duplicate window (2 minutes as `ensureSagaStreams` creates it): a retry later than that (a long outage,
 * a worker that died after publishing) is stored again, so consumers deduplicate on `command-id` — or, for facts and
 * decisions, on `Nats-Msg-Id` — beyond the window.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { NatsStreamConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { Decision } from '../../workflows/pack-approval/definitions.js';
import {
  SagaFailure,
  type EffectResult,
  type GatewayResult,
  type SagaStatus,
} from '../../workflows/sagas/definitions.js';
import { FailureType } from '../../workflows/shared/failures.js';
import type { RunnerMetrics } from '../../workers/runner-metrics.js';
import { tenantSubjectToken } from '../../workers/saga-streams.js';

/** Kinds of messages on the workflow stream (the `kind` label of the published counter). */
export const WORKFLOW_EVENT_KINDS = ['effect', 'command', 'saga', 'approval'] as const;
export type WorkflowEventKind = (typeof WORKFLOW_EVENT_KINDS)[number];

/** One message for the workflow stream, as the pure builders below make it. */
export interface WorkflowEvent {
  kind: WorkflowEventKind;
  subject: string;
  /** The `Nats-Msg-Id`: the same for every attempt of one logical message. */
  msgId: string;
  /** Every header of the message, `Nats-Msg-Id` included. */
  headers: Record<string, string>;
  body: unknown;
}

/** Correlation and trace context of a message, when known. */
export interface EventContext {
  correlationId?: string | undefined;
  traceparent?: string | undefined;
}

/** What became of a Gateway command: the Gateway's answer, or `failed` when it refused for good or gave up. */
export type CommandOutcome = GatewayResult['outcome'] | 'failed';

/** Body of a Gateway-command outcome: the command's identity (not its payload) and the Gateway's answer. */
export interface CommandOutcomeEvent {
  tenantId: string;
  commandId: string;
  commandType: string;
  aggregateType: string;
  aggregateId: string;
  correlationId: string;
  causationId: string;
  outcome: CommandOutcome;
  /** The Gateway's status; null when it never answered. */
  httpStatus: number | null;
  /** The Gateway's answer body (accepted), or the refusal or failure message. */
  body: Record<string, unknown>;
  timestamp: string;
}

/** Facts of a saga instance: it started, or reached a status other than `running`. */
export type SagaFactName = 'started' | Exclude<SagaStatus, 'running'>;

/** Body of a saga fact. */
export interface SagaFactEvent {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  /** Starts of the instance after a finished one count up (0 for the first). */
  generation: number;
  fact: SagaFactName;
  status: SagaStatus;
  /** Why the saga failed, was cancelled or compensated. */
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** The projection revision the fact was seen in. */
  revision: number;
  traceparent?: string | undefined;
}

/** Body of an approval decision. */
export interface ApprovalDecisionEvent {
  tenantId: string;
  runId: string;
  approvalId: string;
  /** The approval workflow's id (`pack-approval/{tenant}/{runId}/{approvalId}`). */
  workflowId: string;
  decision: Decision;
  decidedBy: string;
  decidedAt: string;
  comment?: string;
  correlationId: string;
}

/**
 * The literal prefix the egress publishes under: that of the first `{prefix}.>` filter of the workflow stream.
 * @throws Error when the stream has no such filter, or its prefix has wildcards.
 */
export function egressPrefixOf(stream: NatsStreamConfig): string {
  const filter = stream.subjects.find((subject) => subject.endsWith('.>'));
  const prefix = filter?.slice(0, -2);
  if (prefix === undefined || prefix.split('.').some((token) => token === '' || /[\s*>]/.test(token))) {
    throw new Error(
      `stream ${stream.name} has no {prefix}.> filter with a literal prefix for the egress to publish under ` +
        `(subjects: ${stream.subjects.join(', ')})`,
    );
  }
  return prefix;
}

/** A name as one subject token, dots written `%2E` like tenant ids. @throws Error naming `what`. */
function tokenOf(what: string, value: string): string {
  try {
    return tenantSubjectToken(value);
  } catch {
    throw new Error(`${what} "${value}" cannot be a subject token (no blanks, wildcards or '%')`);
  }
}

/** The headers of a message; absent context left out. @throws Error for a value a header cannot carry. */
function headersOf(fields: Record<string, string | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === '') continue;
    if (/[\r\n]/.test(value)) throw new Error(`header ${name} cannot carry a line break`);
    headers[name] = value;
  }
  return headers;
}

/** The message of an effect's final result; the body is the result as the saga receives it. */
export function effectResultEvent(prefix: string, result: EffectResult, context: EventContext = {}): WorkflowEvent {
  const tenant = tokenOf('tenantId', result.tenantId);
  return {
    kind: 'effect',
    subject: `${prefix}.${tenant}.effect.${tokenOf('effectName', result.effectName)}.${result.resultType}`,
    msgId: result.commandId,
    headers: headersOf({
      'tenant-id': result.tenantId,
      'command-id': result.commandId,
      'effect-name': result.effectName,
      'x-correlation-id': context.correlationId,
      traceparent: context.traceparent,
      'Nats-Msg-Id': result.commandId,
    }),
    body: result,
  };
}

/** The message of a Gateway command's final outcome. */
export function commandOutcomeEvent(
  prefix: string,
  outcome: CommandOutcomeEvent,
  context: Pick<EventContext, 'traceparent'> = {},
): WorkflowEvent {
  const tenant = tokenOf('tenantId', outcome.tenantId);
  return {
    kind: 'command',
    subject: `${prefix}.${tenant}.command.${tokenOf('commandType', outcome.commandType)}.${outcome.outcome}`,
    msgId: outcome.commandId,
    headers: headersOf({
      'tenant-id': outcome.tenantId,
      'command-id': outcome.commandId,
      'x-correlation-id': outcome.correlationId,
      traceparent: context.traceparent,
      'Nats-Msg-Id': outcome.commandId,
    }),
    body: outcome,
  };
}

/** The fact id of a saga fact: one per instance start (generation) and fact, whatever retries or replays. */
export function sagaFactId(fact: Pick<SagaFactEvent, 'workflowId' | 'generation' | 'fact'>): string {
  return `${fact.workflowId}:${fact.generation}:${fact.fact}`;
}

/** The message of a saga fact. */
export function sagaFactEvent(prefix: string, fact: SagaFactEvent): WorkflowEvent {
  const msgId = sagaFactId(fact);
  const tenant = tokenOf('tenantId', fact.tenantId);
  return {
    kind: 'saga',
    subject: `${prefix}.${tenant}.saga.${tokenOf('sagaName', fact.sagaName)}.${fact.fact}`,
    msgId,
    headers: headersOf({
      'tenant-id': fact.tenantId,
      'x-correlation-id': fact.correlationId,
      traceparent: fact.traceparent,
      'Nats-Msg-Id': msgId,
    }),
    body: fact,
  };
}

/** The message of an approval decision; its id is the approval's and the decision's, like the resume callback's key. */
export function approvalDecisionEvent(
  prefix: string,
  decision: ApprovalDecisionEvent,
  context: Pick<EventContext, 'traceparent'> = {},
): WorkflowEvent {
  const msgId = `${decision.workflowId}:decision:${decision.decision}`;
  return {
    kind: 'approval',
    subject: `${prefix}.${tokenOf('tenantId', decision.tenantId)}.approval.${decision.decision}`,
    msgId,
    headers: headersOf({
      'tenant-id': decision.tenantId,
      'x-correlation-id': decision.correlationId,
      traceparent: context.traceparent,
      'Nats-Msg-Id': msgId,
    }),
    body: decision,
  };
}

/**
 * Which facts a projection write stands for, decided from the row stored before it: `started` when the write is of
 * an instance start the row does not hold yet (no row, or one of an earlier start), and the new status when it is
 * not `running` and differs from the stored one. A write the stored row is already as new as (same start, revision
 * at least as high) stands for nothing: it is a retry of a write that succeeded, or an older one arriving late.
 */
export function sagaFactsOf(
  stored: { status: SagaStatus; startedAt: string; revision: number } | undefined,
  progress: { status: SagaStatus; startedAt: string; revision: number },
): SagaFactName[] {
  const storedStart = stored ? Date.parse(stored.startedAt) : undefined;
  const start = Date.parse(progress.startedAt);
  const newStart = storedStart === undefined || storedStart < start;
  if (!newStart && (storedStart > start || stored!.revision >= progress.revision)) return [];
  const facts: SagaFactName[] = newStart ? ['started'] : [];
  if (progress.status !== 'running' && (newStart || stored!.status !== progress.status)) facts.push(progress.status);
  return facts;
}

// Stryker disable all: from here on the egress publishes to NATS; test/activities/saga-egress.test.ts exercises it on a
// real server, the mutation run covers the pure builders above.

/** What the stream answered. */
export interface PublishedEvent {
  subject: string;
  /** The stream sequence of the message (of the first copy, for a duplicate). */
  seq: number;
  /** Whether the stream had the `Nats-Msg-Id` already (within its duplicate window) and dropped this copy. */
  duplicate: boolean;
}

/** Publishes to the workflow stream; each call resolves once the stream acked the message. */
export interface WorkflowEventPublisher {
  /** The subject prefix (`{prefix}` of the stream's `{prefix}.>`). */
  readonly prefix: string;
  publishEffectResult(result: EffectResult, context?: EventContext): Promise<PublishedEvent>;
  publishCommandOutcome(
    outcome: CommandOutcomeEvent,
    context?: Pick<EventContext, 'traceparent'>,
  ): Promise<PublishedEvent>;
  publishSagaFact(fact: SagaFactEvent): Promise<PublishedEvent>;
  publishApprovalDecision(
    decision: ApprovalDecisionEvent,
    context?: Pick<EventContext, 'traceparent'>,
  ): Promise<PublishedEvent>;
  /** Publishes a message the builders made. */
  publish(event: WorkflowEvent): Promise<PublishedEvent>;
}

/** Options of {@link createWorkflowEventPublisher}. */
export interface WorkflowEventPublisherOptions {
  connection: NatsConnection;
  /** The workflow stream (`config.nats.workflowStream`): the ack must come from it. */
  stream: NatsStreamConfig;
  metrics?: RunnerMetrics | undefined;
  logger: Logger;
  /** Milliseconds to wait for the stream's ack (default 5 000): well inside an activity's heartbeat timeout. */
  ackTimeoutMs?: number;
}

/**
 * Creates the publisher on an open connection (the caller owns and closes it).
 * @throws Error when the stream has no `{prefix}.>` filter to publish under.
 */
export function createWorkflowEventPublisher(options: WorkflowEventPublisherOptions): WorkflowEventPublisher {
  const { stream, metrics, logger } = options;
  const prefix = egressPrefixOf(stream);
  const js: JetStreamClient = jetstream(options.connection, { timeout: options.ackTimeoutMs ?? 5_000 });

  const publish = async (event: WorkflowEvent): Promise<PublishedEvent> => {
    const fields = { subject: event.subject, msgId: event.msgId, kind: event.kind };
    const headers = natsHeaders();
    for (const [name, value] of Object.entries(event.headers)) headers.set(name, value);
    try {
      const ack = await js.publish(event.subject, JSON.stringify(event.body), {
        msgID: event.msgId,
        headers,
        expect: { streamName: stream.name },
      });
      if (!ack.duplicate) metrics?.effects.published.inc({ kind: event.kind });
      logger.debug({ ...fields, seq: ack.seq, duplicate: ack.duplicate }, 'workflow event published');
      return { subject: event.subject, seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      const message = `workflow event ${event.subject} not acked by stream ${stream.name}: ${(error as Error).message}`;
      logger.warn(fields, message);
      throw ApplicationFailure.create({ message, type: SagaFailure.WorkflowEventsUnavailable, cause: error as Error });
    }
  };

  /** A message the builders refuse (a tenant or name no subject can carry) is the data's fault: final. */
  const built = (build: () => WorkflowEvent): WorkflowEvent => {
    try {
      return build();
    } catch (error) {
      throw ApplicationFailure.create({
        message: `workflow event not published: ${(error as Error).message}`,
        type: FailureType.InvalidInput,
        nonRetryable: true,
      });
    }
  };

  return {
    prefix,
    publish,
    publishEffectResult: (result, context) => publish(built(() => effectResultEvent(prefix, result, context))),
    publishCommandOutcome: (outcome, context) => publish(built(() => commandOutcomeEvent(prefix, outcome, context))),
    publishSagaFact: (fact) => publish(built(() => sagaFactEvent(prefix, fact))),
    publishApprovalDecision: (decision, context) =>
      publish(built(() => approvalDecisionEvent(prefix, decision, context))),
  };
}
