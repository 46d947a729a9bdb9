/**
 * The saga toolkit and the two sagas on the dev server, with the real bookkeeping, effect and Gateway activities, the
 * reference services on loopback and the ingress' routing: deduplication, events before their start event and
 * before their wait, late events, continue-as-new with the dedupe set, cancel → compensation, each mirror-export
 * step failing in turn, and a compensation that fails.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSagaEventLog, listUnmatchedEvents, getSagaInstance } from '../../db/queries/sagas.js';
import {
  cancelSagaUpdate,
  commandIdOf,
  sagaEventSignal,
  sagaWorkflowId,
  type SagaInput,
  type SagaView,
} from '../../workflows/sagas/definitions.js';
import { recordHistory } from '../support/histories.js';
import { eventually } from '../support/http-sinks.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startSagaStack, type SagaStack } from '../support/saga-stack.js';
import {
  advisoryPublished,
  exportRequested,
  MIRROR_SAGA,
  RAPID_RESET,
  RAPID_RESET_IMAGES,
  RESCAN_SAGA,
  scanCompleted,
} from '../support/sagas.js';
import { createDevServerEnv } from '../support/temporal.js';

const TENANT = 'acme';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
/** Scans complete 50 ms after they were requested. */
let stack: SagaStack;
/** Scans never complete. */
let stuck: SagaStack;

beforeAll(async () => {
  [env, db] = await Promise.all([createDevServerEnv(), createTestDatabase()]);
  [stack, stuck] = await Promise.all([
    startSagaStack(env, db.pool, { reference: { scanDelayMs: 50 } }),
    startSagaStack(env, db.pool, { reference: { neverCompleteImages: RAPID_RESET_IMAGES } }),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([stack?.close(), stuck?.close()]);
  await db?.drop();
  await env?.teardown();
});

const fresh = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const rescanId = (correlationId: string) => sagaWorkflowId(TENANT, RESCAN_SAGA, correlationId);
const mirrorId = (bundleId: string) => sagaWorkflowId(TENANT, MIRROR_SAGA, bundleId);
const received = (s: SagaStack, commandId: string) => s.reference.counters.commandsReceived()[commandId] ?? 0;
const rescanCommand = (correlationId: string, imageId: string) =>
  commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, `rescan:${imageId}`);
const untilRequested = (s: SagaStack, workflowId: string, count: number) =>
  eventually(async () => {
    const view = await s.view(workflowId).catch(() => undefined);
    const state = view?.state as { images?: { rescan: string }[] } | undefined;
    return state?.images?.filter((i) => i.rescan === 'requested').length === count ? view : undefined;
  });

describe('advisory impact rescan', () => {
  it('runs the loop: effect → one command per image → Scan.Completed from the Gateway → completed', async () => {
    const correlationId = fresh('run');
    const [answer] = await stack.post(advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }));
    expect(answer).toMatchObject({ status: 'accepted', instances: [{ workflowId: rescanId(correlationId) }] });

    const view = await stack.result(rescanId(correlationId));
    expect(view).toMatchObject({ status: 'completed', reason: null, appliedEvents: 4, compensations: [] });
    expect(view.state).toMatchObject({
      phase: 'completed',
      snapshot: { imageCount: 3 },
      summary: { impacted: 3, completed: 3, rejected: 0, outstanding: 0 },
    });
    // One command per image, each received once: the deterministic command id is the Idempotency-Key.
    for (const image of RAPID_RESET_IMAGES) expect(received(stack, rescanCommand(correlationId, image))).toBe(1);
    const projected = await eventually(async () => {
      const row = await getSagaInstance(db.pool, TENANT, RESCAN_SAGA, correlationId);
      return row?.status === 'completed' ? row : undefined;
    });
    expect(projected).toMatchObject({ workflowId: rescanId(correlationId), appliedEvents: 4 });
    await recordHistory(
      stack.temporal.client.workflow.getHandle(rescanId(correlationId)),
      'saga-advisory-rescan-completed',
    );
  });

  it('delivers events that overtook their start event when the instance starts, and records late events after the end', async () => {
    const correlationId = fresh('early');
    const early = scanCompleted(RAPID_RESET_IMAGES[0]!, correlationId, { tenantId: TENANT, payload: { findings: 9 } });
    expect((await stuck.post(early))[0]).toMatchObject({ status: 'unmatched' });
    const [pending] = (await listUnmatchedEvents(db.pool, TENANT, { sagaName: RESCAN_SAGA, limit: 200 })).items.filter(
      (e) => e.eventId === early.eventId,
    );
    expect(pending).toMatchObject({ kind: 'unmatched', status: 'pending' });

    await stuck.post(advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }));
    await untilRequested(stuck, rescanId(correlationId), 2); // the early one is consumed at once
    for (const image of RAPID_RESET_IMAGES.slice(1))
      await stuck.post(scanCompleted(image, correlationId, { tenantId: TENANT }));
    const view = await stuck.result(rescanId(correlationId));
    expect(view.status).toBe('completed');
    const images = (view.state as { images: { imageId: string; findings: number }[] }).images;
    expect(images.find((i) => i.imageId === RAPID_RESET_IMAGES[0])?.findings).toBe(9);

    const log = await listSagaEventLog(db.pool, TENANT, RESCAN_SAGA, correlationId);
    expect(log.find((e) => e.eventId === early.eventId && e.outcome === 'applied')?.via).toBe('unmatched');
    const delivered = (await listUnmatchedEvents(db.pool, TENANT, { sagaName: RESCAN_SAGA, limit: 200 })).items.find(
      (e) => e.eventId === early.eventId,
    );
    expect(delivered?.status).toBe('delivered');

    // After the end: recorded as late with the reason, never dropped.
    const late = scanCompleted(RAPID_RESET_IMAGES[0]!, correlationId, { tenantId: TENANT });
    const [answer] = await stuck.post(late);
    expect(answer).toMatchObject({ status: 'late' });
    expect(answer && 'reason' in answer ? answer.reason : '').toMatch(/has finished \(completed\)/);
    await recordHistory(
      stuck.temporal.client.workflow.getHandle(rescanId(correlationId)),
      'saga-advisory-rescan-early-events',
    );
  });

  it('keeps events that arrive before the saga waits for them', async () => {
    const correlationId = fresh('before-wait');
    // The impact index is unavailable once (retried after its Retry-After of 1 s): the completions arrive while the
    // saga has not even requested its rescans.
    await stuck.fault({
      effect: 'impact-index.resolve',
      mode: 'unavailable',
      times: 1,
      key: commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, 'resolve-impact'),
    });
    await stuck.post(advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }));
    for (const image of RAPID_RESET_IMAGES) await stuck.post(scanCompleted(image, correlationId, { tenantId: TENANT }));
    const view = await stuck.result(rescanId(correlationId));
    expect(view).toMatchObject({ status: 'completed', appliedEvents: 4 });
    expect(
      stuck.reference.counters.providerCalls()[
        commandIdOf({ tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId }, 'resolve-impact')
      ],
    ).toBe(2);
  });

  it('deduplicates by eventId, also across continue-as-new, and never repeats a command after it', async () => {
    const correlationId = fresh('can');
    const workflowId = rescanId(correlationId);
    const start = advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId });
    const handle = await stuck.temporal.client.workflow.signalWithStart('advisoryImpactRescanWorkflow', {
      workflowId,
      taskQueue: `${stuck.taskQueuePrefix}saga`,
      args: [
        { tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId, continueAsNewAfterEvents: 2 } satisfies SagaInput,
      ],
      signal: sagaEventSignal,
      signalArgs: [{ event: start, via: 'ingress' }],
    });
    const firstRun = handle.signaledRunId;
    await untilRequested(stuck, workflowId, 3);
    const first = scanCompleted(RAPID_RESET_IMAGES[0]!, correlationId, { tenantId: TENANT });
    await handle.signal(sagaEventSignal, { event: first, via: 'ingress' });
    await handle.signal(sagaEventSignal, { event: first, via: 'ingress' }); // a duplicate in the same run
    // Two events received in the first run: the instance continues as new at its next wait.
    const continued = await eventually(async () => {
      const description = await stuck.temporal.client.workflow.getHandle(workflowId).describe();
      return description.runId !== firstRun ? description : undefined;
    });
    expect(continued.status.name).toBe('RUNNING');
    expect(firstRun).toMatch(/^[0-9a-f-]{36}$/);
    // The same event again, now in the continued run: still a duplicate.
    await handle.signal(sagaEventSignal, { event: first, via: 'ingress' });
    for (const image of RAPID_RESET_IMAGES.slice(1)) {
      await handle.signal(sagaEventSignal, {
        event: scanCompleted(image, correlationId, { tenantId: TENANT }),
        via: 'ingress',
      });
    }
    const view = (await stuck.temporal.client.workflow.getHandle(workflowId).result()) as SagaView;
    expect(view).toMatchObject({ status: 'completed', appliedEvents: 4 });
    expect((view.state as { summary: { completed: number } }).summary.completed).toBe(3);
    // The continued run replayed its code over the memo: no command went out twice.
    for (const image of RAPID_RESET_IMAGES) expect(received(stuck, rescanCommand(correlationId, image))).toBe(1);
    const log = await listSagaEventLog(db.pool, TENANT, RESCAN_SAGA, correlationId);
    expect(
      log
        .filter((e) => e.eventId === first.eventId)
        .map((e) => e.outcome)
        .sort(),
    ).toEqual(['applied', 'duplicate']);
  });

  it('cancel (Update with a reason) compensates the outstanding rescans in reverse order', async () => {
    const correlationId = fresh('cancel');
    const workflowId = rescanId(correlationId);
    await stuck.post(advisoryPublished(RAPID_RESET, {}, { tenantId: TENANT, correlationId }));
    await untilRequested(stuck, workflowId, 3);
    const handle = stuck.temporal.client.workflow.getHandle(workflowId);
    const answer = await handle.executeUpdate(cancelSagaUpdate, {
      args: [{ reason: 'advisory withdrawn', requestedBy: 'ops-alice' }],
    });
    expect(['compensating', 'compensated']).toContain(answer.status);
    const view = (await handle.result()) as SagaView;
    expect(view.status).toBe('compensated');
    expect(view.reason).toBe('cancelled by ops-alice: advisory withdrawn');
    expect(view.compensations.map((c) => [c.step, c.status])).toEqual(
      [...RAPID_RESET_IMAGES].reverse().map((image) => [`rescan:${image}`, 'compensated']),
    );
    for (const image of RAPID_RESET_IMAGES) {
      const cancel = commandIdOf(
        { tenantId: TENANT, sagaName: RESCAN_SAGA, correlationId },
        `compensate:rescan:${image}`,
      );
      expect(received(stuck, cancel)).toBe(1);
    }
    // A second cancel is refused: the saga no longer runs.
    await expect(
      handle.executeUpdate(cancelSagaUpdate, { args: [{ reason: 'again', requestedBy: 'ops-alice' }] }),
    ).rejects.toThrow();
    await recordHistory(handle, 'saga-advisory-rescan-cancelled');
  });
});

describe('mirror bundle export', () => {
  const STEPS = ['reserve-quota', 'export-bundle', 'sign-bundle', 'publish-bundle'] as const;
  const EFFECT_OF = {
    'reserve-quota': 'mirror.reserve-quota',
    'export-bundle': 'mirror.export-bundle',
    'sign-bundle': 'mirror.sign-bundle',
    'publish-bundle': 'mirror.publish-bundle',
  } as const;
  const commandOf = (bundleId: string, step: string) =>
    commandIdOf({ tenantId: TENANT, sagaName: MIRROR_SAGA, correlationId: bundleId }, step);

  it('reserves, exports, signs and publishes', async () => {
    const bundleId = fresh('bundle');
    await stack.post(exportRequested(bundleId, { tenantId: TENANT }));
    const view = await stack.result(mirrorId(bundleId));
    expect(view).toMatchObject({ status: 'completed', compensations: [] });
    expect(view.state).toMatchObject({ phase: 'published', steps: { 'publish-bundle': { resultType: 'succeeded' } } });
    for (const step of STEPS) expect(stack.reference.counters.providerCalls()[commandOf(bundleId, step)]).toBe(1);
    await recordHistory(stack.temporal.client.workflow.getHandle(mirrorId(bundleId)), 'saga-mirror-export-published');
  });

  it.each(STEPS.map((step, i) => [step, STEPS.slice(0, i).reverse()] as const))(
    'a refused %s compensates the completed steps in reverse order',
    async (failing, compensated) => {
      const bundleId = fresh(`fail-${failing}`);
      await stack.fault({ effect: EFFECT_OF[failing], mode: 'reject', key: commandOf(bundleId, failing) });
      await stack.post(exportRequested(bundleId, { tenantId: TENANT }));
      const view = await stack.result(mirrorId(bundleId));
      expect(view.status).toBe(compensated.length === 0 ? 'failed' : 'compensated');
      expect(view.reason).toMatch(new RegExp(`^Step ${failing} rejected`));
      expect(view.compensations.map((c) => [c.step, c.status])).toEqual(compensated.map((s) => [s, 'compensated']));
      for (const step of compensated) {
        expect(stack.reference.counters.providerCalls()[commandOf(bundleId, `compensate:${step}`)]).toBe(1);
      }
      // Steps after the failing one never ran.
      for (const step of STEPS.slice(STEPS.indexOf(failing) + 1)) {
        expect(stack.reference.counters.providerCalls()[commandOf(bundleId, step)]).toBeUndefined();
      }
    },
  );

  it('retries a compensation that fails for a while, until it goes through', async () => {
    const bundleId = fresh('comp-retry');
    await stack.fault({ effect: 'mirror.sign-bundle', mode: 'reject', key: commandOf(bundleId, 'sign-bundle') });
    await stack.fault({
      effect: 'mirror.delete-export',
      mode: 'unavailable',
      times: 2,
      key: commandOf(bundleId, 'compensate:export-bundle'),
    });
    await stack.post(exportRequested(bundleId, { tenantId: TENANT }));
    const view = await stack.result(mirrorId(bundleId));
    expect(view.status).toBe('compensated');
    expect(view.compensations.map((c) => [c.step, c.status])).toEqual([
      ['export-bundle', 'compensated'],
      ['reserve-quota', 'compensated'],
    ]);
    expect(stack.reference.counters.providerCalls()[commandOf(bundleId, 'compensate:export-bundle')]).toBe(3);
  });

  it('records a compensation that still fails after its retries, runs the others, and ends compensation_failed', async () => {
    const bundleId = fresh('comp-fail');
    await stack.fault({ effect: 'mirror.sign-bundle', mode: 'reject', key: commandOf(bundleId, 'sign-bundle') });
    await stack.fault({
      effect: 'mirror.delete-export',
      mode: 'reject',
      key: commandOf(bundleId, 'compensate:export-bundle'),
    });
    await stack.post(exportRequested(bundleId, { tenantId: TENANT }));
    const view = await stack.result(mirrorId(bundleId));
    expect(view.status).toBe('compensation_failed');
    expect(view.compensations.map((c) => [c.step, c.status])).toEqual([
      ['export-bundle', 'failed'],
      ['reserve-quota', 'compensated'],
    ]);
    expect(view.compensations[0]?.error).toMatch(/mirror\.delete-export rejected/);
    const projected = await eventually(async () => {
      const row = await getSagaInstance(db.pool, TENANT, MIRROR_SAGA, bundleId);
      return row?.status === 'compensation_failed' ? row : undefined;
    });
    expect(projected.reason).toMatch(/^Step sign-bundle rejected/);
    await recordHistory(
      stack.temporal.client.workflow.getHandle(mirrorId(bundleId)),
      'saga-mirror-export-compensation-failed',
    );
  });
});
