/**
 * Saga timers report when they fired: on the real time-skipping server with the real activities and reference
 * services, the advisory rescan's reminder and deadline (wait deadlines) reach the projection writes as
 * `timersFired` — due time and workflow time at wake-up — for the timer lateness metric, each once.
 */
import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sagaWorkflowId, type SagaProgress, type SagaView } from '../../workflows/sagas/definitions.js';
import { startSagaStackWithServers, type SagaStack, type SagaStackWithServers } from '../support/saga-stack.js';
import { advisoryPublished, RESCAN_SAGA } from '../support/sagas.js';
import { createTimeSkippingEnv } from '../support/temporal.js';

const TENANT = 'acme';
const IMAGES = ['payments-api:3.8.2', 'auth-service:2.1.0'];

let servers: SagaStackWithServers | undefined;
let env: TestWorkflowEnvironment;
let stack: SagaStack;

beforeAll(async () => {
  servers = await startSagaStackWithServers(createTimeSkippingEnv, { reference: { neverCompleteImages: IMAGES } });
  ({ env, stack } = servers);
});
afterAll(() => servers?.close());

/** The inputs of every `recordSagaProgress` the workflow scheduled, in order. */
async function progressWrites(workflowId: string): Promise<SagaProgress[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((event) => {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'recordSagaProgress') return [];
    return [defaultPayloadConverter.fromPayload<SagaProgress>(scheduled.input!.payloads![0]!)];
  });
}

describe('saga timer lateness', () => {
  it('passes each fired wait deadline with its due time and wake-up time in the next projection write', async () => {
    const correlationId = `lateness-${randomUUID().slice(0, 8)}`;
    const workflowId = sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId);
    await stack.post(
      advisoryPublished(
        'CVE-2023-44487',
        { rescanReminderSeconds: 3600, rescanDeadlineSeconds: 2 * 3600 },
        { tenantId: TENANT, correlationId },
      ),
    );
    const view = (await env.client.workflow.getHandle(workflowId).result()) as SagaView;
    expect(view.status).toBe('compensated');

    const writes = await progressWrites(workflowId);
    const fired = writes.flatMap((write) => write.timersFired ?? []);
    const startedAt = Date.parse(view.startedAt);
    expect(fired.map((timer) => [timer.saga, timer.dueAt])).toEqual([
      [RESCAN_SAGA, startedAt + 3600 * 1000],
      [RESCAN_SAGA, startedAt + 2 * 3600 * 1000],
    ]);
    for (const timer of fired) expect(timer.firedAt).toBeGreaterThanOrEqual(timer.dueAt);
    // Every write of the instance carries its generation, and none is added for the timers.
    expect(writes.every((write) => write.generation === 0)).toBe(true);
  });
});
