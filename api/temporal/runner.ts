/**
 * Temporal's view of the Runner's workers: who polls each product task queue, from `DescribeTaskQueue`. Temporal
 * does what the original scheduler's worker registry did (registration by polling, heartbeats by the poll times,
 * dead workers by their silence), so the view is read, never kept.
 */
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { TASK_QUEUES, WORKFLOW_TASK_QUEUES, type TaskQueueName } from '../../core/config.js';
import type { QueueKindPollers, QueuePoller, QueueWorkers, TaskKind, WorkersView } from '../schemas/runner.js';
import type { TemporalFacade } from './facade.js';

const { TaskQueueKind, TaskQueueType } = proto.temporal.api.enums.v1;

/**
 * The rate the server reports for a poller that set no task-queue rate limit (its `defaultTaskDispatchRPS`); only
 * activity polls carry a limit (`maxTaskQueueActivitiesPerSecond`), so a workflow poller always shows this one.
 */
const SERVER_DEFAULT_RATE_PER_SECOND = 100_000;

const TASK_QUEUE_TYPE = {
  workflow: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  activity: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
} as const;

/** The kinds of task `queue` carries: the workflow queues run workflows and their activities, effects only activities. */
export function taskKindsOf(queue: TaskQueueName): TaskKind[] {
  return (WORKFLOW_TASK_QUEUES as readonly string[]).includes(queue) ? ['workflow', 'activity'] : ['activity'];
}

/**
 * `Promise.all` that rejects only once every call has settled: an answer never leaves a call retrying behind it,
 * against a connection that may be closed by then.
 */
async function allSettled<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** The Runner's Temporal calls, bound to the deployment's task-queue prefix. */
export interface RunnerTemporal {
  /**
   * The pollers of every product queue and kind; a poller is live when its last access is at most
   * `liveWithinSeconds` old at the time of the call.
   */
  workers(options: { liveWithinSeconds: number }): Promise<WorkersView>;
}

/** Binds the Runner's calls to `temporal` and the task-queue prefix once. */
export function createRunnerTemporal(temporal: TemporalFacade, settings: { taskQueuePrefix: string }): RunnerTemporal {
  const describe = async (taskQueue: string, kind: TaskKind) => {
    const response = await temporal.withDeadline(() =>
      temporal.connection.workflowService.describeTaskQueue({
        namespace: temporal.namespace,
        taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: TASK_QUEUE_TYPE[kind],
      }),
    );
    return response.pollers ?? [];
  };

  return {
    async workers({ liveWithinSeconds }) {
      // One clock for every age, taken before the calls: an access during them is at worst slightly in the future.
      const observedAtMs = Date.now();
      const queues = await allSettled(
        TASK_QUEUES.map(async (name): Promise<QueueWorkers> => {
          const taskQueue = `${settings.taskQueuePrefix}${name}`;
          const kinds = await allSettled(
            taskKindsOf(name).map(async (kind): Promise<QueueKindPollers> => {
              const pollers = (await describe(taskQueue, kind)).map((p): QueuePoller => {
                const lastAccessMs = optionalTsToMs(p.lastAccessTime) ?? 0;
                const secondsSinceLastAccess = Math.max(0, (observedAtMs - lastAccessMs) / 1000);
                const rate = p.ratePerSecond ?? 0;
                return {
                  identity: p.identity ?? '',
                  lastAccessTime: new Date(lastAccessMs).toISOString(),
                  secondsSinceLastAccess: Math.round(secondsSinceLastAccess * 10) / 10,
                  ...(rate > 0 && rate !== SERVER_DEFAULT_RATE_PER_SECOND ? { ratePerSecond: rate } : {}),
                  live: secondsSinceLastAccess <= liveWithinSeconds,
                };
              });
              pollers.sort((a, b) => b.lastAccessTime.localeCompare(a.lastAccessTime));
              return { kind, live: pollers.some((p) => p.live), pollers };
            }),
          );
          return { name, taskQueue, live: kinds.every((k) => k.live), kinds };
        }),
      );
      return {
        observedAt: new Date(observedAtMs).toISOString(),
        liveWithinSeconds,
        queues,
        queuesWithoutLivePoller: queues.filter((q) => !q.live).map((q) => q.name),
      };
    },
  };
}
