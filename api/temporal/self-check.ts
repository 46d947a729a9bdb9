/** Starting and reading self-check workflows from the API. */
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import {
  SELF_CHECK_WORKFLOW_TYPE,
  selfCheckWorkflowId,
  type SelfCheckInput,
  type SelfCheckResult,
} from '../../workflows/self-check/definitions.js';
import type { selfCheckWorkflow } from '../../workflows/self-check/workflow.js';
import { notFound } from '../errors.js';
import type { SelfCheckStatus } from '../schemas/self-checks.js';
import type { TemporalFacade } from './facade.js';

/** Options of one self-check run. */
export interface StartSelfCheckOptions {
  tenantId: string;
  checkId?: string;
  taskQueue: string;
  activityCount: number;
  activityTaskQueue?: string;
  /** Durable timer after the activities. */
  sleepSeconds?: number;
  /** Closes the run by itself if no worker serves the queue. */
  executionTimeoutSeconds?: number;
}

/** Starts a self-check; with an existing `checkId` (running or closed) it throws `WorkflowExecutionAlreadyStartedError`. */
export async function startSelfCheck(temporal: TemporalFacade, options: StartSelfCheckOptions) {
  const checkId = options.checkId ?? randomUUID();
  const input: SelfCheckInput = {
    tenantId: options.tenantId,
    activityCount: options.activityCount,
    ...(options.activityTaskQueue ? { activityTaskQueue: options.activityTaskQueue } : {}),
    ...(options.sleepSeconds ? { sleepSeconds: options.sleepSeconds } : {}),
  };
  const handle = await temporal.withDeadline(() =>
    temporal.client.workflow.start<typeof selfCheckWorkflow>(SELF_CHECK_WORKFLOW_TYPE, {
      workflowId: selfCheckWorkflowId(options.tenantId, checkId),
      taskQueue: options.taskQueue,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowExecutionTimeout: `${options.executionTimeoutSeconds ?? 300}s`,
      typedSearchAttributes: [{ key: TENANT_ID, value: options.tenantId }],
      staticSummary: `Self-check of ${options.taskQueue}: ${options.activityCount} activities on ${options.activityTaskQueue ?? options.taskQueue}`,
    }),
  );
  return { checkId, handle };
}

/** Outcome of one queue's readiness self-check. */
export interface QueueCheck {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

/**
 * Proves the round trip API → Temporal → worker → activity on each queue: one self-check per workflow queue,
 * plus one whose activities run on `effects` when that queue is served.
 */
export async function runReadinessSelfChecks(
  temporal: TemporalFacade,
  options: { tenantId: string; workflowQueues: string[]; effectsQueue?: string; timeoutMs: number; prefix?: string },
): Promise<Record<string, QueueCheck>> {
  const prefix = options.prefix ?? '';
  const targets = options.workflowQueues.map((queue) => ({ name: queue, taskQueue: queue, activityQueue: queue }));
  if (options.effectsQueue && options.workflowQueues[0]) {
    targets.push({
      name: options.effectsQueue,
      taskQueue: options.workflowQueues[0],
      activityQueue: options.effectsQueue,
    });
  }
  const entries = await Promise.all(
    targets.map(async (target): Promise<[string, QueueCheck]> => {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const { handle } = await startSelfCheck(temporal, {
          tenantId: options.tenantId,
          checkId: `ready-${target.name}-${randomUUID()}`,
          taskQueue: `${prefix}${target.taskQueue}`,
          activityCount: 1,
          activityTaskQueue: `${prefix}${target.activityQueue}`,
          executionTimeoutSeconds: Math.ceil(options.timeoutMs / 1000) + 30,
        });
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no worker answered within ${options.timeoutMs} ms`)),
            options.timeoutMs,
          );
        });
        const result: SelfCheckResult = await Promise.race([handle.result(), timeout]);
        if (!result.activityTaskQueues.includes(`${prefix}${target.activityQueue}`)) {
          throw new Error(`activity ran on ${result.activityTaskQueues.join(',')}`);
        }
        return [target.name, { status: 'up', latencyMs: Date.now() - started }];
      } catch (error) {
        return [target.name, { status: 'down', latencyMs: Date.now() - started, error: (error as Error).message }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return Object.fromEntries(entries);
}

/** The status document of a self-check run (with its result once completed). */
async function describeSelfCheck(
  temporal: TemporalFacade,
  handle: WorkflowHandle,
  checkId: string,
  tenantId: string,
): Promise<SelfCheckStatus> {
  const description = await temporal.withDeadline(() => handle.describe());
  const status = description.status.name;
  let result: SelfCheckResult | undefined;
  if (status === 'COMPLETED') result = (await temporal.withDeadline(() => handle.result())) as SelfCheckResult;
  return {
    checkId,
    tenantId,
    workflowId: description.workflowId,
    runId: description.runId,
    status,
    startedAt: description.startTime.toISOString(),
    ...(description.closeTime ? { closedAt: description.closeTime.toISOString() } : {}),
    ...(result
      ? { result: { activitiesCompleted: result.activitiesCompleted, activityTaskQueues: result.activityTaskQueues } }
      : {}),
  };
}

/** Self-check calls of the API, bound to the task-queue prefix of this deployment. */
export interface SelfCheckTemporal {
  /**
   * Starts a check on the (prefixed) workflow queue `taskQueue`; a `checkId` already used answers the existing run
   * with `created: false` instead of starting another.
   */
  start(options: {
    tenantId: string;
    checkId: string;
    taskQueue: string;
    activityCount: number;
  }): Promise<{ created: boolean; status: SelfCheckStatus }>;
  /** Reads a check of `tenantId`. @throws 404 when the tenant has no check `checkId`. */
  read(tenantId: string, checkId: string): Promise<SelfCheckStatus>;
  /** {@link runReadinessSelfChecks} on the prefixed queues. */
  readiness(options: {
    tenantId: string;
    workflowQueues: string[];
    effectsQueue?: string;
    timeoutMs: number;
  }): Promise<Record<string, QueueCheck>>;
  /** The served name of task queue `queue`. */
  taskQueue(queue: string): string;
}

/** Binds the self-check calls to `temporal` and the task-queue prefix once. */
export function createSelfCheckTemporal(
  temporal: TemporalFacade,
  settings: { taskQueuePrefix: string },
): SelfCheckTemporal {
  const prefix = settings.taskQueuePrefix;
  const handleOf = (tenantId: string, checkId: string) =>
    temporal.client.workflow.getHandle(selfCheckWorkflowId(tenantId, checkId));
  return {
    async start({ tenantId, checkId, taskQueue, activityCount }) {
      try {
        const { handle } = await startSelfCheck(temporal, {
          tenantId,
          checkId,
          taskQueue: `${prefix}${taskQueue}`,
          activityCount,
        });
        return { created: true, status: await describeSelfCheck(temporal, handle, checkId, tenantId) };
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        const status = await describeSelfCheck(temporal, handleOf(tenantId, checkId), checkId, tenantId);
        return { created: false, status };
      }
    },
    async read(tenantId, checkId) {
      try {
        return await describeSelfCheck(temporal, handleOf(tenantId, checkId), checkId, tenantId);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw notFound(`Self-check ${checkId} not found`);
        throw error;
      }
    },
    readiness: (options) => runReadinessSelfChecks(temporal, { ...options, prefix }),
    taskQueue: (queue) => `${prefix}${queue}`,
  };
}
