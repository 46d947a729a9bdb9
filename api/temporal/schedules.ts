/** Recurring policy simulations as Temporal Schedules, one per (tenant, schedule id). */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleDescription,
  type ScheduleHandle,
} from '@temporalio/client';
import {
  POLICY_SIMULATION_TASK_QUEUE,
  POLICY_SIMULATION_WORKFLOW_TYPE,
  policySimulationWorkflowId,
  type PolicySimulationInput,
} from '../../workflows/policy-simulation/definitions.js';
import type { policySimulationWorkflow } from '../../workflows/policy-simulation/workflow.js';
import { TENANT_ID } from '../../workflows/shared/search-attributes.js';
import { badRequest, conflict, notFound } from '../errors.js';
import type { CreateScheduleBody, ScheduleDoc } from '../schemas/schedules.js';
import type { TemporalFacade } from './facade.js';
import { simulationStartOptions } from './policy-simulations.js';

const ID_PREFIX = 'policy-simulation-schedule';

/** Temporal schedule id `policy-simulation-schedule/{tenant}/{scheduleId}`. */
export function temporalScheduleId(tenantId: string, scheduleId: string): string {
  return `${ID_PREFIX}/${tenantId}/${scheduleId}`;
}

interface ScheduleMemo {
  description: string;
  spec: CreateScheduleBody['spec'];
  simulation: CreateScheduleBody['simulation'];
  createdBy: string;
}

function toDoc(tenantId: string, scheduleId: string, d: ScheduleDescription): ScheduleDoc {
  const memo = (d.memo ?? {}) as unknown as ScheduleMemo;
  return {
    scheduleId,
    tenantId,
    description: memo.description ?? '',
    spec: memo.spec ?? {},
    simulation: memo.simulation,
    paused: d.state.paused,
    note: d.state.note ?? '',
    createdBy: memo.createdBy ?? '',
    createdAt: d.info.createdAt ? d.info.createdAt.toISOString() : null,
    nextRunTimes: d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.map((a) => ({
      workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : '',
      scheduledAt: a.scheduledAt.toISOString(),
      startedAt: a.takenAt.toISOString(),
    })),
  };
}

async function mapErrors<T>(scheduleId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) throw notFound(`Schedule ${scheduleId} not found`);
    if (error instanceof ScheduleAlreadyRunning) throw conflict(`Schedule ${scheduleId} already exists`);
    // The client rejects specs it cannot encode (e.g. a malformed cron expression) with a TypeError; the server
    // answers INVALID_ARGUMENT for the rest.
    if (error instanceof TypeError) throw badRequest(`Invalid schedule spec: ${error.message}`);
    if ((error as { code?: unknown }).code === 3) {
      throw badRequest(`Invalid schedule: ${(error as Error).message.replace(/^3 INVALID_ARGUMENT: /, '')}`);
    }
    throw error;
  }
}

/** Manages a tenant's schedules. */
export function createScheduleService(temporal: TemporalFacade, options: { taskQueuePrefix?: string } = {}) {
  const handle = (tenantId: string, scheduleId: string): ScheduleHandle =>
    temporal.client.schedule.getHandle(temporalScheduleId(tenantId, scheduleId));
  const describe = (tenantId: string, scheduleId: string) =>
    mapErrors(scheduleId, async () =>
      toDoc(tenantId, scheduleId, await temporal.withDeadline(() => handle(tenantId, scheduleId).describe())),
    );

  return {
    describe,

    async create(
      tenantId: string,
      scheduleId: string,
      body: CreateScheduleBody,
      createdBy: string,
    ): Promise<ScheduleDoc> {
      if (!body.spec.cron?.length && !body.spec.intervalSeconds) {
        throw badRequest('spec needs cron expressions or intervalSeconds');
      }
      const input: PolicySimulationInput = {
        tenantId,
        policyId: body.simulation.policyId,
        policyVersion: body.simulation.policyVersion,
        inputs: body.simulation.inputs,
        priority: body.simulation.priority ?? 'normal',
        metadata: { ...(body.simulation.metadata ?? {}), scheduleId },
        requestedBy: `schedule:${scheduleId}`,
      };
      const memo: ScheduleMemo = {
        description: body.description ?? '',
        spec: body.spec,
        simulation: body.simulation,
        createdBy,
      };
      await mapErrors(scheduleId, () =>
        temporal.withDeadline(() =>
          temporal.client.schedule.create({
            scheduleId: temporalScheduleId(tenantId, scheduleId),
            spec: {
              ...(body.spec.cron ? { cronExpressions: body.spec.cron } : {}),
              ...(body.spec.intervalSeconds ? { intervals: [{ every: `${body.spec.intervalSeconds}s` }] } : {}),
              ...(body.spec.timezone ? { timezone: body.spec.timezone } : {}),
            },
            action: {
              type: 'startWorkflow',
              workflowType: POLICY_SIMULATION_WORKFLOW_TYPE as unknown as typeof policySimulationWorkflow,
              // Temporal appends the scheduled time, giving each run its own business key.
              ...simulationStartOptions(
                input,
                policySimulationWorkflowId(tenantId, `sched-${scheduleId}`),
                `${options.taskQueuePrefix ?? ''}${POLICY_SIMULATION_TASK_QUEUE}`,
              ),
            },
            policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
            state: { paused: body.paused ?? false, note: body.paused ? `created paused by ${createdBy}` : '' },
            memo: memo as unknown as Record<string, unknown>,
            typedSearchAttributes: [{ key: TENANT_ID, value: tenantId }],
          }),
        ),
      );
      return describe(tenantId, scheduleId);
    },

    async list(tenantId: string): Promise<ScheduleDoc[]> {
      const prefix = `${ID_PREFIX}/${tenantId}/`;
      const ids: string[] = [];
      await temporal.withDeadline(async () => {
        for await (const summary of temporal.client.schedule.list()) {
          if (summary.scheduleId.startsWith(prefix)) ids.push(summary.scheduleId.slice(prefix.length));
        }
      }, 15_000);
      const docs = await Promise.all(ids.sort().map((id) => describe(tenantId, id).catch(() => undefined)));
      return docs.filter((d): d is ScheduleDoc => d !== undefined);
    },

    async pause(tenantId: string, scheduleId: string, note: string): Promise<ScheduleDoc> {
      await mapErrors(scheduleId, () => temporal.withDeadline(() => handle(tenantId, scheduleId).pause(note)));
      return describe(tenantId, scheduleId);
    },

    async unpause(tenantId: string, scheduleId: string, note: string): Promise<ScheduleDoc> {
      await mapErrors(scheduleId, () => temporal.withDeadline(() => handle(tenantId, scheduleId).unpause(note)));
      return describe(tenantId, scheduleId);
    },

    async trigger(tenantId: string, scheduleId: string): Promise<void> {
      await mapErrors(scheduleId, () =>
        temporal.withDeadline(() => handle(tenantId, scheduleId).trigger(ScheduleOverlapPolicy.ALLOW_ALL)),
      );
    },

    async delete(tenantId: string, scheduleId: string): Promise<void> {
      await mapErrors(scheduleId, () => temporal.withDeadline(() => handle(tenantId, scheduleId).delete()));
    },
  };
}
