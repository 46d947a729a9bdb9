/**
 * The saga toolkit: what every saga workflow is built from. A saga's `workflow.ts` is one call of {@link runSaga}
 * with its definition, its initial state and its code; the toolkit does the rest:
 *
 * - **Inbox**: every `sagaEvent` signal lands in an inbox, deduplicated by eventId, so an event that arrives before the
 *   code waits for it is never missed. Events recorded as unmatched (they overtook the start event) are claimed at the
 *   start and placed right after the start event, in sequence order.
 * - **Memo**: effects, commands, waits and timers are keyed by the saga (`step`, `key`); their results are memoized.
 *   After continue-as-new the code runs again from the top and every completed call returns its recorded result at
 *   once, which rebuilds the state and the compensation stack exactly. Derive state only from these results.
 * - **Continue-as-new** when Temporal suggests it (or after `continueAsNewAfterEvents` events in tests), at a wait,
 *   carrying memo, inbox and the dedupe set.
 * - **Effects and commands** run on the `effects` queue with the deterministic command id `commandIdOf(input, step)`
 *   as Idempotency-Key, so retries, worker crashes, continue-as-new and resets never duplicate an external call; the
 *   tenant is the fairness key, so one tenant's burst does not starve the others.
 * - **Compensation**: when the code fails, aborts or is cancelled (Update `cancelSaga`, or a Temporal cancel), the
 *   compensations of completed steps run in reverse order in a non-cancellable scope, each retried; one that still
 *   fails is recorded and the rest still run; the saga ends `compensated`, `compensation_failed`, `failed` (nothing
 *   to compensate) or `cancelled` (nothing to compensate).
 * - **Projection**: the instance, every received event and every compensation are written to Postgres before the
 *   saga blocks and when it ends (idempotent, revisioned).
 */
import {
  allHandlersFinished,
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  TemporalFailure,
  workflowInfo,
} from '@temporalio/workflow';
import { databaseWrite, outboundCall } from '../shared/activity-options.js';
import { failureMessage } from '../shared/failures.js';
import {
  cancelSagaUpdate,
  commandIdOf,
  EFFECTS_TASK_QUEUE,
  getSagaQuery,
  SAGA_TASK_QUEUE,
  SagaFailure,
  sagaEventSignal,
  type AggregateEvent,
  type CancelSagaArgs,
  type CompensationCall,
  type CompensationRecord,
  type EffectResult,
  type GatewayResult,
  type SagaBookkeepingActivities,
  type SagaCommand,
  type SagaDefinition,
  type SagaEventDelivery,
  type SagaEventSummary,
  type SagaInput,
  type SagaOutboundActivities,
  type SagaProgress,
  type SagaStatus,
  type SagaTimerFiring,
  type SagaView,
} from './definitions.js';
import {
  compensationSucceeded,
  currentDetails,
  indexOfMatch,
  insertClaimed,
  shouldContinueAsNew,
  statusAfterCompensation,
} from './state.js';

/** A saga's code and what it starts from. */
export interface SagaCode<S> {
  definition: SagaDefinition;
  /** The state of a new instance, from its start event. */
  initialState(start: AggregateEvent): S;
  /**
   * The deterministic code. It may run again from the top after continue-as-new, when every completed effect,
   * command, wait and timer answers its recorded result at once: compute state only from those results.
   * Throwing (or `saga.abort`) compensates the completed steps.
   */
  run(saga: Saga<S>): Promise<void>;
}

/** Options of a step: how to undo it, given its result (nothing to undo when it answers undefined). */
export interface StepOptions<R> {
  compensate?: (result: R) => CompensationCall | undefined;
}

/** What a saga's code works with. */
export interface Saga<S> {
  readonly tenantId: string;
  readonly correlationId: string;
  readonly workflowId: string;
  /** The event that started the instance. */
  readonly startEvent: AggregateEvent;
  /** When the instance started (epoch ms, workflow time): the base of its deadlines. */
  readonly startedAtMs: number;
  /** The saga's state: shown by the query, the API and the projection. */
  readonly state: S;
  setState(next: S): void;
  /** Calls an effect provider (manifest) once per `step`; a refusal is a `rejected` result, not a throw. */
  effect(
    step: string,
    effectName: string,
    payload: Record<string, unknown>,
    options?: StepOptions<EffectResult>,
  ): Promise<EffectResult>;
  /** Submits a Gateway command once per `step`; 409/422 from the aggregate are an `outcome: 'rejected'` result. */
  command(step: string, command: SagaCommand, options?: StepOptions<GatewayResult>): Promise<GatewayResult>;
  /**
   * Takes the first event in the inbox that `match`es, waiting for one until `until` (epoch ms, workflow time);
   * undefined once `until` has passed. `description` says what the saga waits for (query, Web UI).
   */
  waitFor(
    key: string,
    match: (event: AggregateEvent) => boolean,
    options: { until?: number; description: string },
  ): Promise<AggregateEvent | undefined>;
  /** A durable timer until `at` (epoch ms, workflow time). */
  sleepUntil(key: string, at: number): Promise<void>;
  /** The compensation of `step` is no longer needed (what it started has finished downstream). */
  settle(step: string): void;
  /** Ends the code with `reason`: the completed steps are compensated. */
  abort(reason: string): never;
}

/**
 * Runs one saga instance: the body of every saga workflow. Accepts the `sagaEvent` signal, the `getSaga` query and
 * the `cancelSaga` Update (rejected with `SagaNotRunning` once the saga no longer runs). Answers the final view.
 */
export async function runSaga<S>(code: SagaCode<S>, input: SagaInput): Promise<SagaView> {
  const info = workflowInfo();
  const { tenantId, sagaName, correlationId } = input;
  const workflowId = info.workflowId;
  const carried = input.carried;
  const { definition } = code;
  const isStart = (event: AggregateEvent) =>
    definition.triggers.some(
      (t) => t.starts && t.aggregateType === event.aggregateType && t.eventType === event.eventType,
    );

  const seen = new Set(carried?.seen ?? []);
  let inbox: SagaEventDelivery[] = [...(carried?.inbox ?? [])];
  const memo: Record<string, unknown> = { ...(carried?.memo ?? {}) };
  const usedKeys = new Set<string>();
  let status: SagaStatus = carried?.status ?? 'running';
  let state: S | undefined;
  let reason: string | null = null;
  let waitingFor: string | null = null;
  let appliedEvents = carried?.appliedEvents ?? 0;
  let receivedThisRun = 0;
  const startedAt = carried?.startedAt ?? new Date().toISOString();
  let lastEvent: SagaEventSummary | null = carried?.lastEvent ?? null;
  let revision = carried?.revision ?? 0;
  let finishedAt: string | null = null;
  const compensable: { step: string; call: CompensationCall }[] = [];
  const compensations: CompensationRecord[] = [];
  let pendingEvents: SagaProgress['events'] = [];
  let pendingCompensations: CompensationRecord[] = [];
  // Timers that fired ride along with the next write the saga makes anyway: recording them never adds a write (an
  // activity the committed histories do not have).
  let pendingTimers: SagaTimerFiring[] = [];
  let dirty = true;
  let cancelRequest: CancelSagaArgs | undefined;
  let bodyScope: CancellationScope | undefined;
  let causation: AggregateEvent | undefined;
  /** The start event's trace context, once it is known (the first write may come before the start event). */
  const trace: { traceparent?: string | undefined } = {};

  // The effects queue of this deployment: the saga queue's name with `effects` for `saga` (tests prefix both).
  const effectsQueue = `${info.taskQueue.slice(0, info.taskQueue.length - SAGA_TASK_QUEUE.length)}${EFFECTS_TASK_QUEUE}`;
  const { claimUnmatchedEvents, recordSagaProgress } = proxyActivities<SagaBookkeepingActivities>(databaseWrite);
  // Outbound calls retry without a limit of their own: the effects manifest's retry policy decides when an effect has
  // failed for good (the activity then answers a `failed` result), and refusals come back at once.
  const outboundOptions = {
    ...outboundCall,
    taskQueue: effectsQueue,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
    priority: { fairnessKey: tenantId },
  } satisfies ActivityOptions;
  const outbound = proxyActivities<SagaOutboundActivities>(outboundOptions);
  // A compensation that keeps failing (not configured, refused by the Gateway) is recorded after its retries.
  const compensating = proxyActivities<SagaOutboundActivities>({
    ...outboundOptions,
    retry: { ...outboundOptions.retry, maximumAttempts: 10 },
  });

  const view = (): SagaView => ({
    tenantId,
    sagaName,
    correlationId,
    workflowId,
    status,
    state: state ?? null,
    waitingFor,
    lastEvent,
    compensations: [...compensations],
    startedAt,
    finishedAt,
    reason,
    appliedEvents,
  });
  const showDetails = () => setCurrentDetails(currentDetails(status, waitingFor, appliedEvents));
  const receive = (delivery: SagaEventDelivery): boolean => {
    const { event } = delivery;
    if (seen.has(event.eventId)) {
      pendingEvents.push({ event, outcome: 'duplicate', via: delivery.via });
      dirty = true;
      return false;
    }
    seen.add(event.eventId);
    appliedEvents++;
    receivedThisRun++;
    lastEvent = {
      eventId: event.eventId,
      eventType: event.eventType,
      aggregateId: event.aggregateId,
      sequence: event.sequence,
      receivedAt: new Date().toISOString(),
    };
    pendingEvents.push({ event, outcome: 'applied', via: delivery.via });
    dirty = true;
    return true;
  };

  setHandler(sagaEventSignal, (delivery) => {
    if (receive(delivery)) inbox.push(delivery);
  });
  setHandler(getSagaQuery, view);
  setHandler(
    cancelSagaUpdate,
    async (args: CancelSagaArgs) => {
      cancelRequest = args;
      reason = `cancelled by ${args.requestedBy}: ${args.reason}`;
      bodyScope?.cancel();
      await condition(() => status !== 'running');
      return view();
    },
    {
      validator: (_args: CancelSagaArgs) => {
        if (status !== 'running' || cancelRequest) {
          throw ApplicationFailure.nonRetryable(
            `The saga is ${status}; only a running saga can be cancelled`,
            SagaFailure.NotRunning,
          );
        }
      },
    },
  );

  const flush = async () => {
    if (!dirty) return;
    const events = pendingEvents;
    const recorded = pendingCompensations;
    const timersFired = pendingTimers;
    pendingEvents = [];
    pendingCompensations = [];
    pendingTimers = [];
    dirty = false;
    try {
      await recordSagaProgress({
        tenantId,
        sagaName,
        correlationId,
        workflowId,
        revision: ++revision,
        status,
        state: state ?? null,
        reason,
        startedAt,
        finishedAt,
        appliedEvents,
        lastEvent,
        events,
        compensations: recorded,
        generation: input.generation ?? 0,
        ...(trace.traceparent && { traceparent: trace.traceparent }),
        ...(timersFired.length > 0 && { timersFired }),
      });
    } catch (error) {
      // The projection refused the data for good (retries cover outages): the saga itself goes on.
      log.warn('saga projection not written', { error: failureMessage(error) });
    }
  };

  const claim = (key: string) => {
    // A bug in the saga's code: fails the workflow task (retried) until the code is fixed.
    if (usedKeys.has(key)) throw new Error(`Saga ${sagaName} used the step key "${key}" twice`);
    usedKeys.add(key);
  };

  const continueAsNewNow = async (): Promise<never> => {
    await flush();
    await condition(allHandlersFinished);
    const next: SagaInput = {
      ...input,
      carried: {
        status,
        seen: [...seen],
        inbox,
        memo,
        appliedEvents,
        startedAt,
        lastEvent,
        revision,
        runs: (carried?.runs ?? 1) + 1,
      },
    };
    return makeContinueAsNewFunc<(i: SagaInput) => Promise<SagaView>>({ workflowType: definition.workflowType })(next);
  };
  const casDue = () =>
    shouldContinueAsNew(workflowInfo().continueAsNewSuggested, receivedThisRun, input.continueAsNewAfterEvents);

  /** A timer due at `dueAt` woke the saga now (workflow time). */
  const timerFired = (dueAt: number) => pendingTimers.push({ saga: sagaName, dueAt, firedAt: Date.now() });

  const waitFor: Saga<S>['waitFor'] = async (key, match, options) => {
    const memoKey = `wait:${key}`;
    claim(memoKey);
    if (memoKey in memo) {
      const recorded = memo[memoKey] as { event?: AggregateEvent };
      if (recorded.event) causation = recorded.event;
      return recorded.event;
    }
    for (;;) {
      const at = indexOfMatch(inbox, match);
      if (at >= 0) {
        const [delivery] = inbox.splice(at, 1);
        memo[memoKey] = { event: delivery!.event };
        causation = delivery!.event;
        return delivery!.event;
      }
      if (options.until !== undefined && Date.now() >= options.until) {
        memo[memoKey] = {};
        return undefined;
      }
      if (casDue()) await continueAsNewNow();
      await flush();
      waitingFor = options.description;
      showDetails();
      try {
        const woke = await condition(
          () => indexOfMatch(inbox, match) >= 0 || casDue(),
          options.until === undefined ? undefined : Math.max(1, options.until - Date.now()),
        );
        if (!woke && options.until !== undefined) timerFired(options.until);
      } finally {
        waitingFor = null;
      }
    }
  };

  const sleepUntil: Saga<S>['sleepUntil'] = async (key, at) => {
    const memoKey = `timer:${key}`;
    claim(memoKey);
    if (memoKey in memo) return;
    while (Date.now() < at) {
      if (casDue()) await continueAsNewNow();
      await flush();
      if (!(await condition(casDue, Math.max(1, at - Date.now())))) timerFired(at);
    }
    memo[memoKey] = true;
  };

  const metadata = () => ({
    correlationId,
    causationId: (causation ?? startEvent).eventId,
    workflowId,
    ...(startEvent.metadata?.traceparent ? { traceparent: startEvent.metadata.traceparent } : {}),
  });

  const effectCommand = (commandId: string, effectName: string, payload: Record<string, unknown>) => ({
    tenantId,
    commandId,
    effectName,
    payload,
    metadata: metadata(),
  });
  const gatewayCommand = (commandId: string, spec: SagaCommand) => {
    const meta = metadata();
    return {
      command: { ...spec, tenantId, commandId, correlationId, causationId: meta.causationId },
      ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
    };
  };

  /** Runs `call` once per `step` (its result memoized) and stacks the compensation a successful result asks for. */
  const runStep = async <R>(
    step: string,
    call: () => Promise<R>,
    succeeded: (result: R) => boolean,
    compensate: ((result: R) => CompensationCall | undefined) | undefined,
  ): Promise<R> => {
    const memoKey = `step:${step}`;
    claim(memoKey);
    if (!(memoKey in memo)) memo[memoKey] = await call();
    const result = memo[memoKey] as R;
    const undo = succeeded(result) ? compensate?.(result) : undefined;
    if (undo) compensable.push({ step, call: undo });
    return result;
  };

  const effect: Saga<S>['effect'] = (step, effectName, payload, options) =>
    runStep(
      step,
      () => outbound.runEffect(effectCommand(commandIdOf(input, step), effectName, payload)),
      (result) => result.resultType === 'succeeded',
      options?.compensate,
    );

  const command: Saga<S>['command'] = (step, spec, options) =>
    runStep(
      step,
      () => outbound.submitGatewayCommand(gatewayCommand(commandIdOf(input, step), spec)),
      (result) => result.outcome === 'accepted',
      options?.compensate,
    );

  const compensate = async (cause: 'cancelled' | 'failed') => {
    const due = [...compensable].reverse();
    if (due.length > 0) {
      status = 'compensating';
      dirty = true;
      showDetails();
      await flush();
    }
    for (const { step, call } of due) {
      const commandId = commandIdOf(input, `compensate:${step}`);
      let record: CompensationRecord;
      try {
        const answer =
          call.kind === 'effect'
            ? await compensating.runEffect(effectCommand(commandId, call.effectName, call.payload))
            : await compensating.submitGatewayCommand(gatewayCommand(commandId, call.command));
        const outcome = compensationSucceeded(answer, call.rejectionMeansUndone ?? false);
        record = outcome.ok
          ? { step, status: 'compensated', at: new Date().toISOString() }
          : { step, status: 'failed', error: outcome.error, at: new Date().toISOString() };
      } catch (error) {
        record = { step, status: 'failed', error: failureMessage(error), at: new Date().toISOString() };
      }
      if (record.status === 'failed') log.warn('compensation failed', { step, error: record.error });
      compensations.push(record);
      pendingCompensations.push(record);
      dirty = true;
    }
    status = statusAfterCompensation(cause, compensations);
  };

  // Events that overtook the start event were recorded as unmatched: they are claimed once, by the first run.
  if (!carried) {
    const claimed = await claimUnmatchedEvents({
      tenantId,
      sagaName,
      correlationId,
      workflowId,
      claimKey: info.firstExecutionRunId,
    });
    const fresh = claimed.filter((event) => receive({ event, via: 'unmatched' }));
    inbox = insertClaimed(inbox, fresh, isStart);
  }
  const startEvent = (await waitFor('start', isStart, { description: 'the start event' }))!;
  trace.traceparent = startEvent.metadata?.traceparent;
  state = code.initialState(startEvent);

  const saga: Saga<S> = {
    tenantId,
    correlationId,
    workflowId,
    startEvent,
    startedAtMs: Date.parse(startedAt),
    get state() {
      return state as S;
    },
    setState(next) {
      state = next;
      dirty = true;
    },
    effect,
    command,
    waitFor,
    sleepUntil,
    settle(step) {
      const at = compensable.findIndex((c) => c.step === step);
      if (at >= 0) compensable.splice(at, 1);
    },
    abort(why) {
      reason = why;
      throw ApplicationFailure.nonRetryable(why, SagaFailure.Aborted);
    },
  };

  showDetails();
  try {
    await CancellationScope.cancellable(async () => {
      bodyScope = CancellationScope.current();
      if (cancelRequest) bodyScope.cancel();
      await code.run(saga);
    });
    status = 'completed';
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    // Anything but a Temporal failure is a bug in the saga's code: fail the task, to be retried once it is fixed.
    if (!(error instanceof TemporalFailure)) throw error;
    const cause = isCancellation(error) ? 'cancelled' : 'failed';
    reason ??= failureMessage(error);
    await CancellationScope.nonCancellable(() => compensate(cause));
  }
  finishedAt = new Date().toISOString();
  dirty = true;
  showDetails();
  // Events that arrive while the instance finishes are recorded too: Temporal retries a completion that would
  // leave a signal unhandled, so the loop ends only once the last write covered every event received.
  do {
    await CancellationScope.nonCancellable(flush);
    await condition(allHandlersFinished);
  } while (dirty);
  return view();
}
