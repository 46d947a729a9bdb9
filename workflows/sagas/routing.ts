/**
 * Routing of aggregate events to saga instances: pure, shared by every transport (the HTTP ingress and the event
 * bridges), so an event is routed the same way whichever way it came.
 */
import { ID_PATTERN } from '../shared/schemas.js';
import { sagaWorkflowId, type AggregateEvent, type SagaDefinition } from './definitions.js';

/** One saga instance an event goes to. */
export interface SagaRoute {
  sagaName: string;
  workflowType: string;
  correlationId: string;
  workflowId: string;
  /** Whether the event may start the instance (signalWithStart) or only reach a running one (signal). */
  starts: boolean;
}

/** A saga the event triggers but cannot be routed to (no usable correlation id). */
export interface RoutingProblem {
  sagaName: string;
  path: string;
  message: string;
}

const ID = new RegExp(ID_PATTERN);

/** Whether `definition` has a trigger for `event` (and whether that trigger starts instances). */
export function triggerOf(definition: SagaDefinition, event: Pick<AggregateEvent, 'aggregateType' | 'eventType'>) {
  return definition.triggers.find((t) => t.aggregateType === event.aggregateType && t.eventType === event.eventType);
}

/**
 * Every saga instance `event` goes to: one route per saga with a matching trigger, plus a problem for each matching
 * saga whose correlation function finds no usable id in the event.
 */
export function routeEvent(
  event: AggregateEvent,
  sagas: readonly SagaDefinition[],
): { routes: SagaRoute[]; problems: RoutingProblem[] } {
  const routes: SagaRoute[] = [];
  const problems: RoutingProblem[] = [];
  for (const saga of sagas) {
    const trigger = triggerOf(saga, event);
    if (!trigger) continue;
    const correlationId = saga.correlate(event);
    if (correlationId === undefined || !ID.test(correlationId)) {
      problems.push({
        sagaName: saga.name,
        path: 'correlationId',
        message:
          correlationId === undefined
            ? `${saga.name} needs a correlation id (correlationId or metadata.correlationId) on ${event.eventType}`
            : `${saga.name}: the correlation id must match ${ID_PATTERN}`,
      });
      continue;
    }
    routes.push({
      sagaName: saga.name,
      workflowType: saga.workflowType,
      correlationId,
      workflowId: sagaWorkflowId(event.tenantId, saga.name, correlationId),
      starts: trigger.starts,
    });
  }
  return { routes, problems };
}

/** The correlation id an event carries itself: its own field first, then its metadata's. */
export function carriedCorrelationId(event: AggregateEvent): string | undefined {
  return event.correlationId ?? event.metadata?.correlationId;
}
