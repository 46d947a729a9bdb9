/**
 * Delivering aggregate events to saga instances, starting instances again, reading, cancelling and resetting them in
 * Temporal.
 */
import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import protos from '@temporalio/proto';
import {
  cancelSagaUpdate,
  getSagaQuery,
  SAGA_TASK_QUEUE,
  SagaFailure,
  sagaEventSignal,
  type AggregateEvent,
  type CancelSagaArgs,
  type SagaEventDelivery,
  type SagaInput,
  type SagaView,
} from '../../workflows/sagas/definitions.js';
import { sagaByName } from '../../workflows/sagas/registry.js';
import type { SagaRoute } from '../../workflows/sagas/routing.js';
import { CORRELATION_ID, SAGA_NAME, TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { conflict, notFound } from '../errors.js';
import type { TemporalFacade } from './facade.js';

// CommonJS: Node's ESM loader sees only its default export (a named import works under vitest alone).
const proto = protos.temporal;

/** What delivering an event to one instance did. */
export type SagaDelivery = { outcome: 'accepted' } | { outcome: 'unmatched' | 'late'; reason: string };

/** What starting a late start event again did. */
export interface SagaRestart {
  /** `signalled`: an instance was running (meanwhile) and took the event; `started`: a new instance. */
  delivery: 'signalled' | 'started';
  /** Generation of the new instance; null when signalled. */
  generation: number | null;
}

/** Identifies one saga instance. */
export interface SagaInstanceIds {
  tenantId: string;
  sagaName: string;
  correlationId: string;
  workflowId: string;
}

/** Where a reset takes an instance back to: its first or its last completed workflow task. */
export const SAGA_RESET_POINTS = ['first-workflow-task', 'last-workflow-task'] as const;
export type SagaResetPoint = (typeof SAGA_RESET_POINTS)[number];

/** What an operator asks of a reset. */
export interface SagaResetArgs {
  to: SagaResetPoint;
  reason: string;
  requestedBy: string;
}

/** What a reset did. */
export interface SagaReset {
  /** The run the reset started (the current run), and the run it was reset from. */
  runId: string;
  baseRunId: string;
  /** The `WorkflowTaskCompleted` event of the base run the new run continues after. */
  eventId: number;
  /** True when the current run is the one this same request started before: nothing was done again. */
  repeated: boolean;
}

/** The saga capability's calls to Temporal, bound to its task queue. */
export interface SagaTemporal {
  /**
   * Delivers `event` to the instance of `route`: a start trigger by signalWithStart (the first event starts the
   * instance), any other by signal only. Needs no worker. `late` when the instance has finished (the reason names
   * its final status), `unmatched` when a non-start event finds no instance.
   */
  deliver(route: SagaRoute, event: AggregateEvent, via: SagaEventDelivery['via']): Promise<SagaDelivery>;
  /** Signals `event` to the instance of `route` when one is running now; false when none is. */
  signalIfRunning(route: SagaRoute, event: AggregateEvent, via: SagaEventDelivery['via']): Promise<boolean>;
  /**
   * Starts the instance of `route` again with a late start event: a new generation (the finished execution's plus
   * one) with `ALLOW_DUPLICATE`, for this explicit call only. An instance running meanwhile gets the event instead.
   */
  startAgain(route: SagaRoute, event: AggregateEvent): Promise<SagaRestart>;
  /**
   * Cancels a running instance through its `cancelSaga` Update; answers the view the Update returns.
   * @throws 404 unknown instance, 409 when it no longer runs.
   */
  cancel(ids: SagaInstanceIds, args: CancelSagaArgs): Promise<SagaView>;
  /** The instance's own view (its query; needs a worker), or undefined when there is no such execution. */
  query(workflowId: string): Promise<SagaView | undefined>;
  /**
   * Resets the current run of an instance (running or finished) to its first or last completed workflow task: a new
   * run replays the saga's code from there, with the signals received after that point reapplied. Effects and
   * commands it calls again carry the same command ids, so their receivers answer without acting twice. The request
   * id is derived from the instance, `to` and `reason`: a repeat of the same call answers the run it started.
   * @throws 404 unknown instance, 409 when the run has no completed workflow task or Temporal refuses the reset.
   */
  reset(ids: SagaInstanceIds, args: SagaResetArgs): Promise<SagaReset>;
}

const { EventType, WorkflowTaskFailedCause } = proto.api.enums.v1;

/** A UUID-shaped id derived from `parts`: the same reset request always sends the same request id. */
function derivedRequestId(parts: readonly string[]): string {
  const hex = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** How long the cancel Update may take: it answers once compensation has begun. */
const CANCEL_DEADLINE_MS = 30_000;

/** Binds the saga calls to `temporal` and the task queue once, for the ingress and the routes. */
export function createSagaTemporal(temporal: TemporalFacade, settings: { taskQueuePrefix: string }): SagaTemporal {
  const { client } = temporal;
  const withDeadline = <T>(fn: () => Promise<T>, ms?: number) => temporal.withDeadline(fn, ms);
  const taskQueue = `${settings.taskQueuePrefix}${SAGA_TASK_QUEUE}`;

  const describe = (handle: WorkflowHandle): Promise<WorkflowExecutionDescription | undefined> =>
    withDeadline(() => handle.describe()).catch((error: unknown) => {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    });

  /** Why an event for the finished execution `description` is late: the saga's own final status when it has one. */
  const lateReason = async (handle: WorkflowHandle, description: WorkflowExecutionDescription): Promise<string> => {
    let finished = description.status.name.toLowerCase();
    if (description.status.name === 'COMPLETED') {
      // Every saga returns its final view: read its status from the close event (no worker needed).
      const view = (await withDeadline(() => handle.result()).catch(() => undefined)) as SagaView | undefined;
      if (view?.status) finished = view.reason ? `${view.status}: ${view.reason}` : view.status;
    }
    const at = description.closeTime ? ` at ${description.closeTime.toISOString()}` : '';
    return `The instance ${description.workflowId} has finished (${finished})${at}; an event only reaches a running instance`;
  };

  const startOptions = (route: SagaRoute, event: AggregateEvent, via: SagaEventDelivery['via'], input: SagaInput) => {
    const definition = sagaByName(route.sagaName);
    return {
      workflowId: route.workflowId,
      taskQueue,
      args: [input] as [SagaInput],
      signal: sagaEventSignal,
      signalArgs: [{ event, via }] as [SagaEventDelivery],
      typedSearchAttributes: [
        { key: TENANT_ID, value: event.tenantId },
        { key: SAGA_NAME, value: route.sagaName },
        { key: CORRELATION_ID, value: route.correlationId },
      ],
      ...(definition ? { staticSummary: definition.summary(event, route.correlationId) } : {}),
    };
  };
  const inputOf = (route: SagaRoute, event: AggregateEvent): SagaInput => ({
    tenantId: event.tenantId,
    sagaName: route.sagaName,
    correlationId: route.correlationId,
  });

  const signal = async (route: SagaRoute, event: AggregateEvent, via: SagaEventDelivery['via']): Promise<boolean> => {
    try {
      await withDeadline(() => client.workflow.getHandle(route.workflowId).signal(sagaEventSignal, { event, via }));
      return true;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  };

  /** The generation of the latest execution of `workflowId`, from its start event's input (0 when it has none). */
  const generationOf = async (workflowId: string): Promise<number> => {
    const { history } = await withDeadline(() =>
      temporal.connection.workflowService.getWorkflowExecutionHistory({
        namespace: temporal.namespace,
        execution: { workflowId },
        maximumPageSize: 1,
      }),
    );
    // A raw history holds payloads as the client's codecs wrote them (encrypted): decoded as the client would.
    const { payloadConverter, payloadCodecs } = client.workflow.options.loadedDataConverter;
    let payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.slice(0, 1) ?? [];
    for (const codec of [...payloadCodecs].reverse()) payloads = await codec.decode(payloads);
    const input = payloads[0] ? payloadConverter.fromPayload<SagaInput | undefined>(payloads[0]) : undefined;
    return input?.generation ?? 0;
  };

  return {
    async deliver(route, event, via) {
      const handle = client.workflow.getHandle(route.workflowId);
      if (route.starts) {
        try {
          await withDeadline(() =>
            client.workflow.signalWithStart(route.workflowType, {
              ...startOptions(route, event, via, inputOf(route, event)),
              workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            }),
          );
          return { outcome: 'accepted' };
        } catch (error) {
          if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
          const description = await describe(handle);
          // Closed a moment ago and gone (retention) is as late as closed.
          return {
            outcome: 'late',
            reason: description
              ? await lateReason(handle, description)
              : `The instance ${route.workflowId} has finished; an event only reaches a running instance`,
          };
        }
      }
      if (await signal(route, event, via)) return { outcome: 'accepted' };
      const description = await describe(handle);
      if (description) return { outcome: 'late', reason: await lateReason(handle, description) };
      return {
        outcome: 'unmatched',
        reason:
          `No instance of ${route.sagaName} for correlation id ${route.correlationId} yet; ` +
          'the event is delivered when it starts',
      };
    },

    async signalIfRunning(route, event, via) {
      const description = await describe(client.workflow.getHandle(route.workflowId));
      if (description?.status.name !== 'RUNNING') return false;
      return signal(route, event, via);
    },

    async startAgain(route, event) {
      const description = await describe(client.workflow.getHandle(route.workflowId));
      if (description?.status.name === 'RUNNING' && (await signal(route, event, 'redelivered'))) {
        return { delivery: 'signalled', generation: null };
      }
      const generation = description ? (await generationOf(route.workflowId)) + 1 : 0;
      const handle = await withDeadline(() =>
        client.workflow.signalWithStart(route.workflowType, {
          ...startOptions(route, event, 'redelivered', {
            ...inputOf(route, event),
            ...(generation > 0 ? { generation } : {}),
          }),
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        }),
      );
      // signalWithStart signals an instance that started meanwhile instead of starting another.
      const started = description?.runId !== handle.signaledRunId;
      return started ? { delivery: 'started', generation } : { delivery: 'signalled', generation: null };
    },

    async cancel(ids, args) {
      const handle = client.workflow.getHandle(ids.workflowId);
      const label = `${ids.sagaName}/${ids.correlationId}`;
      try {
        return await withDeadline(() => handle.executeUpdate(cancelSagaUpdate, { args: [args] }), CANCEL_DEADLINE_MS);
      } catch (error) {
        // The Update's validator rejects it with `SagaNotRunning` once the saga no longer runs.
        if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
          throw conflict(
            error.cause.type === SagaFailure.NotRunning ? error.cause.message : `Saga ${label}: ${error.cause.message}`,
          );
        }
        if (!(error instanceof WorkflowNotFoundError)) throw error;
        // The server answers "not found" for an Update to a closed execution too: tell the two apart.
        if (await describe(handle)) throw conflict(`Saga ${label} has already finished`);
        throw notFound(`Saga ${label} not found`);
      }
    },

    async reset(ids, args) {
      const label = `${ids.sagaName}/${ids.correlationId}`;
      const description = await describe(client.workflow.getHandle(ids.workflowId));
      if (!description) throw notFound(`Saga ${label} not found`);
      const baseRunId = description.runId;
      const requestId = derivedRequestId([ids.workflowId, args.to, args.reason]);
      const history = await withDeadline(() => client.workflow.getHandle(ids.workflowId, baseRunId).fetchHistory());
      const events = history.events ?? [];
      // The run a reset started begins with its base's events up to the reset point, then the failed workflow task
      // that names the reset (its reason carries the request id): the last such task created the current run.
      const resets = events.filter(
        (e) =>
          e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED &&
          e.workflowTaskFailedEventAttributes?.cause ===
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW,
      );
      const lastReset = resets[resets.length - 1]?.workflowTaskFailedEventAttributes;
      if (lastReset?.newRunId === baseRunId && lastReset.failure?.message?.includes(`request ${requestId}`)) {
        return {
          runId: baseRunId,
          baseRunId: lastReset.baseRunId ?? '',
          eventId: Number(resets[resets.length - 1]!.eventId),
          repeated: true,
        };
      }
      const completed = events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
      const point = args.to === 'first-workflow-task' ? completed[0] : completed[completed.length - 1];
      if (!point?.eventId) throw conflict(`Saga ${label} has no completed workflow task to reset to`);
      try {
        const { runId } = await withDeadline(() =>
          temporal.connection.workflowService.resetWorkflowExecution({
            namespace: temporal.namespace,
            workflowExecution: { workflowId: ids.workflowId, runId: baseRunId },
            workflowTaskFinishEventId: point.eventId,
            requestId,
            reason: `${args.reason} (reset to ${args.to} by ${args.requestedBy}; request ${requestId})`,
            resetReapplyType: proto.api.enums.v1.ResetReapplyType.RESET_REAPPLY_TYPE_SIGNAL,
          }),
        );
        return { runId, baseRunId, eventId: Number(point.eventId), repeated: false };
      } catch (error) {
        // INVALID_ARGUMENT / FAILED_PRECONDITION: Temporal refuses this reset (e.g. the run changed meanwhile).
        const code = (error as { code?: unknown }).code;
        if (code === 3 || code === 9) throw conflict(`Saga ${label} cannot be reset: ${(error as Error).message}`);
        throw error;
      }
    },

    async query(workflowId) {
      try {
        return await withDeadline(() => client.workflow.getHandle(workflowId).query(getSagaQuery));
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      }
    },
  };
}
