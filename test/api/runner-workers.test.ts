/**
 * The workers view (`GET /api/v1/runner/workers`) against a real dev server: the harness's workers listed on every
 * queue by identity, every queue flagged when no worker serves it, a stopped worker flagged once its last poll is
 * older than the liveness window while Temporal still lists it, 403 without `system:admin`, 503 without Temporal.
 */
import { hostname } from 'node:os';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueWorkers, WorkersView } from '../../api/schemas/runner.js';
import { TASK_QUEUES } from '../../core/config.js';
import { Scope } from '../../core/scopes.js';
import { startApiHarness, startAppWithoutTemporal, type ApiHarness } from '../support/api.js';

const WORKERS = '/api/v1/runner/workers';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const get = async (h: ApiHarness, url = WORKERS, token?: string, app = h.app) => {
  const auth = token ?? (await h.signer.token({ tenant: 'ops', scopes: [Scope.SystemAdmin] }));
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auth}` } });
};

/** The view once `done` holds for it (workers start polling a moment after they start). */
async function viewWhen(h: ApiHarness, done: (view: WorkersView) => boolean, url = WORKERS): Promise<WorkersView> {
  let view: WorkersView | undefined;
  for (let i = 0; i < 100; i++) {
    const res = await get(h, url);
    expect(res.statusCode).toBe(200);
    view = res.json<WorkersView>();
    if (done(view)) return view;
    await sleep(200);
  }
  throw new Error(`the workers view never got there: ${JSON.stringify(view)}`);
}

const queueOf = (view: WorkersView, name: string): QueueWorkers => view.queues.find((q) => q.name === name)!;

describe('with the workers running', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists every queue’s workflow and activity pollers by the worker’s identity, all live, none flagged', async () => {
    const identity = `${process.pid}@${hostname()}`;
    const view = await viewWhen(h, (v) => v.queuesWithoutLivePoller.length === 0);
    expect(view.queues.map((q) => q.name)).toEqual([...TASK_QUEUES]);
    expect(view.liveWithinSeconds).toBe(120);
    for (const queue of view.queues) {
      expect(queue.taskQueue).toBe(`${h.taskQueuePrefix}${queue.name}`);
      expect(queue.live).toBe(true);
      // effects runs activities only; the workflow queues run workflows and their activities.
      expect(queue.kinds.map((k) => k.kind)).toEqual(
        queue.name === 'effects' ? ['activity'] : ['workflow', 'activity'],
      );
      for (const kind of queue.kinds) {
        expect(kind.live).toBe(true);
        expect(kind.pollers.map((p) => p.identity)).toEqual([identity]);
        const [poller] = kind.pollers;
        expect(poller!.live).toBe(true);
        expect(poller!.ratePerSecond).toBeUndefined();
        const ageMs = Date.parse(view.observedAt) - Date.parse(poller!.lastAccessTime);
        expect(ageMs).toBeLessThan(70_000);
        expect(poller!.secondsSinceLastAccess).toBeCloseTo(Math.max(0, ageMs / 1000), 0);
      }
    }
  });

  it('answers 401 without a token, 403 without system:admin, 400 for a window out of range', async () => {
    const anonymous = await h.app.inject({ method: 'GET', url: WORKERS });
    expect(anonymous.statusCode).toBe(401);
    const operator = await h.signer.token({ tenant: 'ops', scopes: [Scope.RunnerSagasOperate, Scope.SelfCheck] });
    const refused = await get(h, WORKERS, operator);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'Forbidden' });
    expect(refused.body).not.toContain(h.taskQueuePrefix);
    const tooWide = await get(h, `${WORKERS}?liveWithinSeconds=3601`);
    expect(tooWide.statusCode).toBe(400);
    expect(tooWide.json<{ errors: { path: string }[] }>().errors[0]?.path).toBe('querystring.liveWithinSeconds');
  });
});

describe('with no worker serving the queues', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApiHarness({ workers: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('flags every queue, with no pollers listed', async () => {
    const res = await get(h);
    expect(res.statusCode).toBe(200);
    const view = res.json<WorkersView>();
    expect(view.queuesWithoutLivePoller).toEqual([...TASK_QUEUES]);
    for (const queue of view.queues) {
      expect(queue.live).toBe(false);
      expect(queue.kinds.length).toBeGreaterThan(0);
      for (const kind of queue.kinds) expect(kind).toMatchObject({ live: false, pollers: [] });
    }
  });

  it('shows a worker that stopped as listed but not live once its last poll is older than the window', async () => {
    const identity = 'effects-worker-under-test';
    const worker = await Worker.create({
      connection: h.env.nativeConnection,
      namespace: h.env.namespace ?? 'default',
      taskQueue: `${h.taskQueuePrefix}effects`,
      activities: { noop: async () => undefined },
      identity,
      maxTaskQueueActivitiesPerSecond: 7,
    });
    const running = worker.run();
    let stopped = false;
    try {
      const serving = await viewWhen(h, (v) => queueOf(v, 'effects').live);
      expect(serving.queuesWithoutLivePoller).toEqual(['policy-simulation', 'pack-approval', 'saga']);
      expect(queueOf(serving, 'effects').kinds[0]!.pollers).toMatchObject([{ identity, ratePerSecond: 7, live: true }]);

      worker.shutdown();
      await running;
      stopped = true;
      await sleep(3_000);
      // Temporal keeps listing the stopped worker (for its 5-minute poller history), within the default window live…
      const lingering = await get(h);
      expect(queueOf(lingering.json<WorkersView>(), 'effects').kinds[0]!.pollers).toMatchObject([{ identity }]);
      // …and a window shorter than its silence flags the queue while the poller is still listed.
      const narrow = (await get(h, `${WORKERS}?liveWithinSeconds=2`)).json<WorkersView>();
      expect(narrow.liveWithinSeconds).toBe(2);
      expect(narrow.queuesWithoutLivePoller).toEqual([...TASK_QUEUES]);
      const [poller] = queueOf(narrow, 'effects').kinds[0]!.pollers;
      expect(poller).toMatchObject({ identity, live: false });
      expect(poller!.secondsSinceLastAccess).toBeGreaterThan(2);
    } finally {
      if (!stopped) {
        worker.shutdown();
        await running;
      }
    }
  });

  it('answers 503 with Retry-After when Temporal is unreachable', async () => {
    const { app, close } = await startAppWithoutTemporal(h);
    try {
      const res = await get(h, WORKERS, undefined, app);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json()).toMatchObject({
        error: 'ServiceUnavailable',
        message: 'Temporal is unavailable; retry later',
      });
    } finally {
      await close();
    }
  });
});
