/**
 * Saga timers on the real time-skipping server, with the real activities and reference services: the advisory
 * rescan's reminder and deadline (hours of server time in seconds), and effect retries — Retry-After honoured until
 * the provider answers, and the manifest's attempts exhausted into a `failed` result the saga acts on.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandIdOf, sagaWorkflowId, type SagaView } from '../../workflows/sagas/definitions.js';
import { recordHistory } from '../support/histories.js';
import { startSagaStackWithServers, type SagaStack, type SagaStackWithServers } from '../support/saga-stack.js';
import { advisoryPublished, RAPID_RESET, RAPID_RESET_IMAGES, RESCAN_SAGA } from '../support/sagas.js';
import { createTimeSkippingEnv } from '../support/temporal.js';

const TENANT = 'acme';

let servers: SagaStackWithServers | undefined;
let env: TestWorkflowEnvironment;
let stack: SagaStack;

beforeAll(async () => {
  servers = await startSagaStackWithServers(createTimeSkippingEnv, {
    reference: { neverCompleteImages: RAPID_RESET_IMAGES },
  });
  ({ env, stack } = servers);
});
afterAll(() => servers?.close());

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
/** The final view; awaiting it through the environment's client lets the server skip time. */
const finished = (workflowId: string) => env.client.workflow.getHandle(workflowId).result() as Promise<SagaView>;

describe('advisory impact rescan timers', () => {
  it('reminds, then at the deadline cancels the outstanding rescans and records the partial result', async () => {
    const correlationId = fresh('deadline');
    const workflowId = sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId);
    const wallStart = Date.now();
    await stack.post(
      advisoryPublished(
        RAPID_RESET,
        { rescanReminderSeconds: 3600, rescanDeadlineSeconds: 6 * 3600 },
        { tenantId: TENANT, correlationId },
      ),
    );
    const view = await finished(workflowId);
    expect(Date.now() - wallStart).toBeLessThan(60_000); // six hours of server time
    expect(view.status).toBe('compensated');
    expect(view.reason).toBe('Deadline passed with 3 of 3 rescans outstanding; cancelling them');
    const state = view.state as {
      phase: string;
      remindedAt: string;
      summary: { outstanding: number; impacted: number };
    };
    expect(state.phase).toBe('deadline-passed');
    expect(state.summary).toMatchObject({ impacted: 3, outstanding: 3 });
    expect(Date.parse(state.remindedAt) - Date.parse(view.startedAt)).toBe(3600 * 1000);
    expect(Date.parse(view.finishedAt!) - Date.parse(view.startedAt)).toBeGreaterThanOrEqual(6 * 3600 * 1000);
    expect(view.compensations.map((c) => [c.step, c.status])).toEqual(
      [...RAPID_RESET_IMAGES].reverse().map((image) => [`rescan:${image}`, 'compensated']),
    );
    for (const image of RAPID_RESET_IMAGES) {
      const cancel = commandIdOf(
        { tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId },
        `compensate:rescan:${image}`,
      );
      expect(stack.reference.counters.commandsReceived()[cancel]).toBe(1);
    }
    await recordHistory(env.client.workflow.getHandle(workflowId), 'saga-advisory-rescan-deadline');
  });
});

describe('effect retries', () => {
  const resolveKey = (correlationId: string) =>
    commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, 'resolve-impact');

  it('retries an unavailable provider after its Retry-After until it answers', async () => {
    const correlationId = fresh('retry');
    await stack.fault({
      effect: 'impact-index.resolve',
      mode: 'unavailable',
      times: 4,
      key: resolveKey(correlationId),
    });
    await stack.post(
      advisoryPublished(
        RAPID_RESET,
        { rescanReminderSeconds: 60, rescanDeadlineSeconds: 120 },
        { tenantId: TENANT, correlationId },
      ),
    );
    const view = await finished(sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId));
    // The impact index answered on the fifth call; the saga went on (to its deadline: scans never complete here).
    expect(stack.reference.counters.providerCalls()[resolveKey(correlationId)]).toBe(5);
    expect(view.state).toMatchObject({ snapshot: { imageCount: 3 } });
    const history = await env.client.workflow
      .getHandle(sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId))
      .fetchHistory();
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    expect(started[1]?.activityTaskStartedEventAttributes?.attempt).toBe(5); // after the claim: the effect's last attempt
  });

  it('ends the effect as failed once the manifest’s attempts are spent, and the saga fails', async () => {
    const correlationId = fresh('exhausted');
    await stack.fault({ effect: 'impact-index.resolve', mode: 'unavailable', key: resolveKey(correlationId) });
    await stack.post(advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }));
    const view = await finished(sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId));
    expect(view.status).toBe('failed');
    expect(view.reason).toBe(`The impact index failed advisory ${RAPID_RESET}`);
    // The bundled manifest allows 10 attempts; after 5 consecutive failures the upstream's breaker opened and the
    // remaining attempts failed fast without calling the provider.
    expect(stack.reference.counters.providerCalls()[resolveKey(correlationId)]).toBe(5);
    const history = await env.client.workflow
      .getHandle(sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId))
      .fetchHistory();
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    expect(started[1]?.activityTaskStartedEventAttributes?.attempt).toBe(10);
  });
});
