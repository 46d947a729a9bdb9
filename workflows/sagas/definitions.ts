/**
 * Sagas (the platform's Runner): aggregates emit events, sagas react to them, call external providers (effects),
 * submit commands to aggregates through the Gateway, wait on durable timers and compensate when something fails.
 * One workflow per (tenant, saga, correlation id). This module holds the contracts (TypeBox schemas published in
 * docs/contracts/), ids, messages and the failure catalogue shared by the workflows, the activities, the API and
 * the transports. It is plain data: the API and the event bridges import it without loading workflow code.
 */
import { Type, type Static } from '@sinclair/typebox';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { Id } from '../shared/schemas.js';

/** Task queue of every saga workflow and its bookkeeping activities (projection, unmatched events). */
export const SAGA_TASK_QUEUE = 'saga';
/** Task queue of effect and Gateway-command activities: the only outbound calls of sagas. */
export const EFFECTS_TASK_QUEUE = 'effects';

/** Builds the business-key workflow id `saga/{tenant}/{saga}/{correlationId}`. */
export function sagaWorkflowId(tenantId: string, sagaName: string, correlationId: string): string {
  return `saga/${tenantId}/${sagaName}/${correlationId}`;
}

/** A W3C trace context header value. */
const Traceparent = Type.String({ pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' });
const Name = (description: string) => Type.String({ pattern: '^[A-Za-z][A-Za-z0-9._-]{0,99}$', description });
/** A JSON object: the payloads of events, effects and commands. */
const Payload = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });

/**
 * An aggregate event, as aggregates publish it (HTTP ingress, and JetStream in the bridge). Forward compatible:
 * unknown fields are ignored by routing and kept in the recorded event, never a rejection.
 */
export const AggregateEvent = Type.Object(
  {
    tenantId: Id('Tenant; must equal the token’s tenant'),
    eventId: Id('Unique id of the event; a repeat is answered as a duplicate'),
    aggregateType: Name('Type of the aggregate that emitted the event, e.g. Advisory'),
    aggregateId: Id('Id of the aggregate instance'),
    eventType: Name('Event type, e.g. Advisory.Published'),
    sequence: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Sequence in the aggregate' }),
    correlationId: Type.Optional(Id('Correlation id of the business process the event belongs to')),
    occurredAt: Type.String({ format: 'date-time', description: 'When the aggregate emitted the event' }),
    payload: Payload('Event data'),
    metadata: Type.Optional(
      Type.Object(
        {
          traceparent: Type.Optional(Traceparent),
          causationId: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
          correlationId: Type.Optional(Id('Correlation id, when the aggregate carries it in metadata')),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { $id: 'AggregateEvent', title: 'AggregateEvent', additionalProperties: true },
);
export type AggregateEvent = Static<typeof AggregateEvent>;

/** An effect command: one call of a provider declared in the effects manifest. */
export const EffectCommand = Type.Object(
  {
    tenantId: Id('Tenant'),
    commandId: Type.String({ minLength: 1, maxLength: 512, description: 'Deterministic id; the Idempotency-Key' }),
    effectName: Name('Provider name in the effects manifest'),
    payload: Payload('Input of the provider'),
    metadata: Type.Object(
      {
        correlationId: Type.Optional(Type.String({ maxLength: 200 })),
        causationId: Type.Optional(Type.String({ maxLength: 512 })),
        traceparent: Type.Optional(Traceparent),
        workflowId: Type.Optional(Type.String({ maxLength: 1000 })),
      },
      { additionalProperties: true },
    ),
  },
  { $id: 'EffectCommand', title: 'EffectCommand', additionalProperties: true },
);
export type EffectCommand = Static<typeof EffectCommand>;

/** What became of an effect: `rejected` is the provider's final refusal (4xx), which the saga can act on. */
export const EFFECT_RESULT_TYPES = ['succeeded', 'failed', 'rejected'] as const;
export type EffectResultType = (typeof EFFECT_RESULT_TYPES)[number];

/** The result of an effect command. */
export const EffectResult = Type.Object(
  {
    tenantId: Id('Tenant'),
    commandId: Type.String({ minLength: 1, maxLength: 512 }),
    effectName: Name('Provider name'),
    resultType: Type.Union(EFFECT_RESULT_TYPES.map((t) => Type.Literal(t))),
    payload: Payload('Provider answer (or the refusal: status and message)'),
    timestamp: Type.String({ format: 'date-time' }),
  },
  { $id: 'EffectResult', title: 'EffectResult', additionalProperties: true },
);
export type EffectResult = Static<typeof EffectResult>;

/** A command submitted to an aggregate through the Gateway. */
export const GatewayCommand = Type.Object(
  {
    tenantId: Id('Tenant'),
    commandId: Type.String({ minLength: 1, maxLength: 512, description: 'Deterministic id; the Idempotency-Key' }),
    aggregateType: Name('Type of the target aggregate'),
    aggregateId: Id('Id of the target aggregate'),
    commandType: Name('Command type, e.g. RequestRescan'),
    payload: Payload('Command data'),
    expectedSequence: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    correlationId: Id('Correlation id the aggregate copies into the events it emits'),
    causationId: Type.String({ minLength: 1, maxLength: 512, description: 'What caused the command' }),
  },
  { $id: 'GatewayCommand', title: 'GatewayCommand', additionalProperties: true },
);
export type GatewayCommand = Static<typeof GatewayCommand>;

/** The Gateway's answer to a command: `rejected` when the aggregate refused it (409/422), for the saga to act on. */
export interface GatewayResult {
  commandId: string;
  outcome: 'accepted' | 'rejected';
  httpStatus: number;
  /** The Gateway's answer body (accepted) or refusal message (rejected). */
  body: Record<string, unknown>;
}

/** Statuses of a saga instance; every status but `running` and `compensating` is final. */
export const SAGA_STATUSES = [
  'running',
  'completed',
  'compensating',
  'compensated',
  'compensation_failed',
  'failed',
  'cancelled',
] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];
/** Final statuses. */
export const FINAL_SAGA_STATUSES = [
  'completed',
  'compensated',
  'compensation_failed',
  'failed',
  'cancelled',
] as const satisfies readonly SagaStatus[];

/** Whether `status` is final. */
export function isFinalSagaStatus(status: SagaStatus): boolean {
  return (FINAL_SAGA_STATUSES as readonly string[]).includes(status);
}

/** One trigger of a saga: events of this aggregate and event type are routed to it. */
export interface SagaTrigger {
  aggregateType: string;
  eventType: string;
  /** Whether this event may start an instance (signalWithStart); others only reach a running one. */
  starts: boolean;
}

/**
 * The routing-side definition of a saga: plain data and pure functions, in the saga's own `definitions.ts`, so the
 * API and the event bridges route events without loading workflow code. Register it in `workflows/sagas/registry.ts`
 * and export its workflow from `workflows/index.ts`.
 */
export interface SagaDefinition {
  /** Saga name, kebab-case (part of the workflow id; never rename). */
  name: string;
  /** Workflow type: the exported workflow function's name (never rename). */
  workflowType: string;
  /** One line for operators. */
  description: string;
  triggers: readonly SagaTrigger[];
  /**
   * The correlation id of the instance an event belongs to, or undefined when the event carries none (the event is
   * then answered `invalid` for this saga). Must return an id matching `ID_PATTERN`.
   */
  correlate(event: AggregateEvent): string | undefined;
  /** Effect providers the saga calls; each must be declared in the effects manifest (checked at start-up). */
  effects: readonly string[];
  /** The readable summary of an instance in the Temporal Web UI. */
  summary(event: AggregateEvent, correlationId: string): string;
}

/** An event as the saga receives it: the aggregate event and how it got there. */
export interface SagaEventDelivery {
  event: AggregateEvent;
  /**
   * `ingress`: over HTTP; `jetstream`: by the bridge from the aggregate stream; `unmatched`: recorded before the
   * instance existed and delivered when it started; `redelivered`: by an operator.
   */
  via: 'ingress' | 'jetstream' | 'unmatched' | 'redelivered';
}

/** A compensation that ran, or failed after its retries. */
export interface CompensationRecord {
  step: string;
  status: 'compensated' | 'failed';
  error?: string;
  at: string;
}

/** Input of every saga workflow; also what continue-as-new carries. */
export interface SagaInput {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  /** Starts after a finished instance (an explicit redelivery of a late event) count up: part of the command ids. */
  generation?: number;
  /** Continue-as-new after this many applied events (tests; default: when Temporal suggests it). */
  continueAsNewAfterEvents?: number;
  /** Carried over by continue-as-new. */
  carried?: CarriedSagaState;
}

/** What a saga instance carries into its next run: its whole memory. */
export interface CarriedSagaState {
  status: SagaStatus;
  /** Event ids already received (deduplication survives continue-as-new). */
  seen: string[];
  /** Received events not consumed by the saga yet. */
  inbox: SagaEventDelivery[];
  /**
   * Results of completed steps, waits and timers by key: a continued run replays the saga's code over them at once,
   * which also rebuilds its state and its compensation stack.
   */
  memo: Record<string, unknown>;
  appliedEvents: number;
  startedAt: string;
  lastEvent: SagaEventSummary | null;
  /** Revision of the last projection write. */
  revision: number;
  /** Runs of this instance so far (1 before the first continue-as-new). */
  runs: number;
}

/**
 * How to undo a step: an effect or a Gateway command, run with the toolkit's compensation retries.
 * `rejectionMeansUndone`: a refusal means there is nothing left to undo (e.g. cancelling a scan that already ended).
 */
export type CompensationCall = { rejectionMeansUndone?: boolean } & (
  { kind: 'effect'; effectName: string; payload: Record<string, unknown> } | { kind: 'command'; command: SagaCommand }
);

/** A Gateway command as a saga writes it: the toolkit adds tenant, command id, correlation and causation. */
export type SagaCommand = Omit<GatewayCommand, 'tenantId' | 'commandId' | 'correlationId' | 'causationId'>;

/** The last event an instance received. */
export interface SagaEventSummary {
  eventId: string;
  eventType: string;
  aggregateId: string;
  sequence: number;
  receivedAt: string;
}

/** Readable state of an instance (query, API). */
export interface SagaView {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  status: SagaStatus;
  /** The saga's own state. */
  state: unknown;
  /** What the saga waits for now, if anything. */
  waitingFor: string | null;
  lastEvent: SagaEventSummary | null;
  compensations: CompensationRecord[];
  startedAt: string;
  finishedAt: string | null;
  /** Why the saga failed, was cancelled or compensated. */
  reason: string | null;
  /** Events received (duplicates not counted). */
  appliedEvents: number;
}

/** Arguments of the cancel Update. */
export interface CancelSagaArgs {
  reason: string;
  requestedBy: string;
}

/** Signal: an aggregate event (deduplicated by eventId inside the workflow). */
export const sagaEventSignal = defineSignal<[SagaEventDelivery]>('sagaEvent');
/** Query: the instance's view. */
export const getSagaQuery = defineQuery<SagaView>('getSaga');
/** Update: cancel with a reason; completed steps are compensated. Rejected when the saga is no longer running. */
export const cancelSagaUpdate = defineUpdate<SagaView, [CancelSagaArgs]>('cancelSaga');

/** Failure types of sagas (stable strings, compared on `ApplicationFailure.type`; never renamed). */
export const SagaFailure = {
  /** The cancel Update: the saga is no longer running. */
  NotRunning: 'SagaNotRunning',
  /** The saga's own code decided it cannot go on (a rejected effect or command, a deadline): compensate. */
  Aborted: 'SagaAborted',
  /** An effect provider refused the call (4xx other than 408/429): final, never retried. */
  EffectRejected: 'EffectRejected',
  /** An effect provider could not be reached or failed (5xx, 408, 429, timeout, network, breaker open): retried. */
  EffectUnavailable: 'EffectUnavailable',
  /** The effect is not declared in the manifest, or the manifest's retries are exhausted: final. */
  EffectNotConfigured: 'EffectNotConfigured',
  /** The Gateway refused the command for a reason other than the aggregate's state: final. */
  CommandRejected: 'CommandRejected',
  /** The Gateway could not be reached or failed: retried. */
  GatewayUnavailable: 'GatewayUnavailable',
  /** The workflow stream did not ack a published result or fact: retried (the message keeps its `Nats-Msg-Id`). */
  WorkflowEventsUnavailable: 'WorkflowEventsUnavailable',
} as const;
export type SagaFailure = (typeof SagaFailure)[keyof typeof SagaFailure];

/**
 * The deterministic command id of a step: from the workflow's identity and the step key, so a retry, a worker crash,
 * a continue-as-new or a reset sends the same `Idempotency-Key` and never duplicates an external call. A new
 * generation (an instance started again after it finished) gets new ids.
 */
export function commandIdOf(
  input: Pick<SagaInput, 'tenantId' | 'sagaName' | 'correlationId' | 'generation'>,
  step: string,
): string {
  const generation = input.generation ? `~${input.generation}` : '';
  return `${input.tenantId}:${input.sagaName}:${input.correlationId}${generation}:${step}`;
}

/** What the projection activity records (one call per change of an instance). */
export interface SagaProgress {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
  /** Monotonic per instance (across continue-as-new): an older write never overwrites a newer one. */
  revision: number;
  status: SagaStatus;
  state: unknown;
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** Events received so far (duplicates not counted). */
  appliedEvents: number;
  lastEvent: SagaEventSummary | null;
  /** Events received (or found duplicate) since the last record, for the append-only saga event log. */
  events: { event: AggregateEvent; outcome: 'applied' | 'duplicate'; via: SagaEventDelivery['via'] }[];
  /** Compensations recorded since the last record. */
  compensations: CompensationRecord[];
  /** The instance's generation (`SagaInput.generation`, 0 for the first start): part of its fact ids. */
  generation?: number;
  /** Trace context of the start event, for the instance's facts on the workflow stream. */
  traceparent?: string;
  /** Saga timers (sleeps, wait deadlines) that fired since the last record, for the timer lateness metric. */
  timersFired?: SagaTimerFiring[];
}

/** A saga timer that fired: when it was due and when the workflow woke up (epoch ms, workflow time). */
export interface SagaTimerFiring {
  saga: string;
  dueAt: number;
  firedAt: number;
}

/**
 * The bookkeeping activities of the `saga` queue, as the toolkit calls them (implemented by
 * `createSagaActivities` in `activities/sagas/index.ts`).
 */
export interface SagaBookkeepingActivities {
  /**
   * The instance's events recorded as unmatched (they arrived before it existed), in sequence order, claimed for
   * `claimKey` (the first-execution run id: a retried call answers the same events).
   */
  claimUnmatchedEvents(input: {
    tenantId: string;
    sagaName: string;
    correlationId: string;
    workflowId: string;
    claimKey: string;
  }): Promise<AggregateEvent[]>;
  /** Writes the projection (instance, event log, compensations); idempotent, guarded by `revision`. */
  recordSagaProgress(progress: SagaProgress): Promise<void>;
}

/** The outbound activities of the `effects` queue (`activities/sagas/effects.ts`, `activities/sagas/gateway.ts`). */
export interface SagaOutboundActivities {
  /** Calls the provider of `command.effectName`; a refusal comes back as a `rejected` result, not a failure. */
  runEffect(command: EffectCommand): Promise<EffectResult>;
  /** Submits a command to the Gateway; 409/422 come back as a `rejected` result. */
  submitGatewayCommand(input: { command: GatewayCommand; traceparent?: string }): Promise<GatewayResult>;
}
