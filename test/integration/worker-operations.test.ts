/**
 * The worker's operations port on real worker processes (`tsx workers/main.ts`) against a real Temporal dev server,
 * Postgres and nats-server: /health, /ready and /info in each WORKER_MODE, /metrics with the SDK's and the bridge's
 * series, the admin routes' token check, reload of the effects manifest and of the tenant placement (an invalid one
 * refused with nothing replaced), and drain — by `POST /admin/drain` and by SIGTERM — with a saga's effect in flight:
 * `/ready` turns 503 first, the effect finishes, and nothing new is polled until another worker takes over.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { BUNDLED_EFFECTS_MANIFEST, REFERENCE_SERVICES_PLACEHOLDER } from '../../activities/sagas/effects-manifest.js';
import { loadOrCreateLocalKey, mintToken } from '../../core/local-keys.js';
import { Scope } from '../../core/scopes.js';
import { startReferenceServices, type RunningReferenceServices } from '../../reference-services/server.js';
import { startEmbeddedNats, type EmbeddedNatsHandle } from '../../stack/nats.js';
import { sagaWorkflowId } from '../../workflows/sagas/definitions.js';
import { aggregateEventSubject } from '../../workers/saga-streams.js';
import { eventually } from '../support/http-sinks.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { exportRequested } from '../support/sagas.js';
import { createDevServerEnv } from '../support/temporal.js';
import {
  killAllWorkerProcesses,
  signalWorkerProcess,
  startWorkerProcess,
  workerProcessDataConverter,
  workerProcessEnv,
  type WorkerProcess,
} from '../support/worker-process.js';

const TENANT = 'acme';
const MIRROR = 'mirror-bundle-export';
const RESERVE_PATH = '/providers/mirror/quota/reserve';
const TEST_TIMEOUT_MS = 240_000;
const { EventType } = proto.temporal.api.enums.v1;

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let nats: EmbeddedNatsHandle;
let publisher: NatsConnection;
let reference: RunningReferenceServices;
let hold: Awaited<ReturnType<typeof startHoldingProxy>>;
let dataDir: string;
let manifestPath: string;
/** The manifest the workers start with: the bundled one on the reference services, quota reservations held. */
let manifestDocument: { providers: { name: string; url: string; timeoutMs?: number }[] };
let adminToken: string;
let readerToken: string;

/**
 * A provider in front of the reference services that holds every request until {@link release} is called, then
 * forwards it and answers what the reference services answered: an effect kept in flight for as long as a test needs.
 */
async function startHoldingProxy(target: () => string) {
  const arrived: string[] = [];
  let releaseAll: () => void = () => undefined;
  let released = new Promise<void>((resolve) => (releaseAll = resolve));
  const bodyOf = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const server = createServer((req, res) => {
    void (async () => {
      const body = await bodyOf(req);
      arrived.push(String(req.headers['idempotency-key']));
      await released;
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          (entry): entry is [string, string] =>
            typeof entry[1] === 'string' && !['host', 'content-length', 'connection'].includes(entry[0]),
        ),
      );
      const answer = await fetch(`${target()}${req.url}`, { method: req.method!, headers, body });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await answer.arrayBuffer()));
    })().catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    arrived,
    /** Lets every held request (and later ones) through. */
    release: () => releaseAll(),
    /** Holds the requests that arrive from now on. */
    holdAgain: () => {
      released = new Promise<void>((resolve) => (releaseAll = resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        releaseAll();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const workerEnv = (extra: Record<string, string>): Record<string, string> => ({
  ...workerProcessEnv({ dataDir, env, db }),
  NATS_URL: nats.url,
  EFFECTS_MANIFEST: manifestPath,
  GATEWAY_URL: reference.url,
  // Longer than any hold here: only the tests end an effect in flight, never the grace time.
  WORKER_SHUTDOWN_GRACE_SECONDS: '120',
  ...extra,
});

async function get(worker: WorkerProcess, path: string) {
  const response = await fetch(`${worker.opsUrl}${path}`);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: parseBody(text) };
}

async function post(worker: WorkerProcess, path: string, token?: string) {
  const response = await fetch(`${worker.opsUrl}${path}`, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await response.text();
  return { status: response.status, body: parseBody(text) };
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
}

async function writeManifest(document: unknown): Promise<void> {
  await writeFile(manifestPath, typeof document === 'string' ? document : stringifyYaml(document));
}

/** Publishes `MirrorBundle.ExportRequested` to the aggregate stream (the bridge's way in); returns the workflow id. */
async function requestExport(): Promise<string> {
  const bundleId = `ops-bundle-${randomUUID().slice(0, 8)}`;
  const event = exportRequested(bundleId, { tenantId: TENANT });
  await jetstream(publisher).publish(aggregateEventSubject('aggregate', event), JSON.stringify(event), {
    msgID: event.eventId,
  });
  return sagaWorkflowId(TENANT, MIRROR, bundleId);
}

/** The workflow's history events (type and the identity that started a task, when one did). */
async function historyOf(workflowId: string): Promise<{ type: string; identity?: string; activity?: string }[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).map((event) => {
    const type = EventType[event.eventType ?? 0] ?? String(event.eventType);
    const identity =
      event.workflowTaskStartedEventAttributes?.identity ?? event.activityTaskStartedEventAttributes?.identity;
    const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
    return { type, ...(identity ? { identity } : {}), ...(activity ? { activity } : {}) };
  });
}

const typeName = (type: string) => type.replace(/^EVENT_TYPE_/, '');

/** Resolves once the saga's workflow (started by the bridge, some time after the publish) has completed. */
async function finished(workflowId: string): Promise<void> {
  // With the workers' data converter: the result is encrypted.
  const client = new Client({
    connection: env.connection,
    namespace: env.namespace ?? 'default',
    dataConverter: await workerProcessDataConverter(dataDir),
  });
  const handle = client.workflow.getHandle(workflowId);
  await eventually(
    () =>
      handle.describe().then(
        () => true,
        () => undefined,
      ),
    60_000,
  );
  await handle.result();
}

beforeAll(async () => {
  let natsPort: number;
  [env, db, dataDir, natsPort] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    mkdtemp(join(tmpdir(), 'stellaops-worker-ops-')),
    freePort(),
  ]);
  nats = await startEmbeddedNats({ storeDir: join(dataDir, 'nats'), port: natsPort });
  publisher = await connect({ servers: nats.url });
  reference = await startReferenceServices({ host: '127.0.0.1', port: 0 });
  hold = await startHoldingProxy(() => reference.url);
  hold.release();

  manifestPath = join(dataDir, 'effects.yaml');
  const bundled = (await readFile(BUNDLED_EFFECTS_MANIFEST, 'utf8')).replaceAll(
    REFERENCE_SERVICES_PLACEHOLDER,
    reference.url,
  );
  manifestDocument = parseYaml(bundled) as typeof manifestDocument;
  for (const provider of manifestDocument.providers) {
    if (provider.name === 'mirror.reserve-quota') {
      provider.url = `${hold.url}${RESERVE_PATH}`;
      provider.timeoutMs = 120_000;
    }
  }
  await writeManifest(manifestDocument);

  const key = await loadOrCreateLocalKey(dataDir);
  const tokenWith = (scopes: string[]) =>
    mintToken(key, {
      tenant: TENANT,
      scopes,
      issuer: 'stellaops-local',
      audience: 'stellaops-workflows',
      expiresIn: '1h',
    });
  adminToken = await tokenWith([Scope.SystemAdmin]);
  readerToken = await tokenWith([Scope.RunnerSagasRead, Scope.RunnerSagasOperate]);
}, 120_000);

afterAll(async () => {
  await killAllWorkerProcesses();
  await hold?.close();
  await reference?.close();
  await publisher?.close();
  await nats?.stop();
  await db?.drop();
  await env?.teardown();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('a saga worker (WORKER_MODE=saga) with a tenant placement file', () => {
  it(
    'reports its health, readiness and what it runs; reloads its manifest and placement, refusing invalid ones',
    async () => {
      const placementPath = join(dataDir, 'placement.yaml');
      await writeFile(placementPath, stringifyYaml({ tenants: [TENANT] }));
      const worker = await startWorkerProcess(
        workerEnv({
          WORKER_MODE: 'saga',
          NATS_BRIDGE: 'true',
          NATS_BRIDGE_DURABLE: 'ops-shard',
          NATS_BRIDGE_TENANTS_FILE: placementPath,
        }),
      );

      const health = await get(worker, '/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'ok', state: 'serving', checks: { temporal: { status: 'up' } } });
      const ready = await get(worker, '/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({
        status: 'ready',
        checks: { temporal: { status: 'up' }, postgres: { status: 'up' }, nats: { status: 'up' } },
      });

      const info = await get(worker, '/info');
      expect(info.status).toBe(200);
      expect(info.body).toMatchObject({
        mode: 'saga',
        state: 'serving',
        taskQueues: ['policy-simulation', 'pack-approval', 'saga'],
        bridge: { stream: 'AGGREGATE_EVENTS', consumer: 'ops-shard', tenants: [TENANT], connected: true },
      });
      const bridge = info.body.bridge as { filterSubjects: string[] };
      expect(bridge.filterSubjects.length).toBeGreaterThan(0);
      expect(bridge.filterSubjects.every((subject) => subject.startsWith(`aggregate.${TENANT}.`))).toBe(true);
      expect((info.body.sagas as { name: string }[]).map((saga) => saga.name).sort()).toEqual([
        'advisory-impact-rescan',
        MIRROR,
      ]);
      const providersBefore = (info.body.effects as { providers: string[] }).providers;
      expect(providersBefore).toContain('mirror.reserve-quota');

      // Admin routes: a token, and one with system:admin.
      expect((await post(worker, '/admin/reload')).status).toBe(401);
      expect((await post(worker, '/admin/reload', 'not-a-token')).status).toBe(401);
      const forbidden = await post(worker, '/admin/drain', readerToken);
      expect(forbidden.status).toBe(403);
      expect((await get(worker, '/ready')).status).toBe(200);

      // A valid change: one provider more, and a second tenant.
      await writeManifest({
        ...manifestDocument,
        providers: [
          ...manifestDocument.providers,
          { name: 'audit.record', kind: 'http', method: 'POST', url: `${reference.url}/providers/audit` },
        ],
      });
      await writeFile(placementPath, stringifyYaml({ tenants: [TENANT, 'globex'] }));
      const reloaded = await post(worker, '/admin/reload', adminToken);
      expect(reloaded.status).toBe(200);
      expect(reloaded.body).toMatchObject({
        status: 'reloaded',
        effects: { source: manifestPath, added: ['audit.record'], removed: [], changed: [] },
        tenants: { tenants: [TENANT, 'globex'], added: ['globex'], removed: [] },
      });
      const afterReload = await get(worker, '/info');
      expect((afterReload.body.effects as { providers: string[] }).providers).toContain('audit.record');
      const moved = afterReload.body.bridge as { tenants: string[]; filterSubjects: string[] };
      expect(moved.tenants).toEqual([TENANT, 'globex']);
      expect(moved.filterSubjects.some((subject) => subject.startsWith('aggregate.globex.'))).toBe(true);

      // Invalid: both parts refused with their problems, and nothing replaced (not even the valid placement).
      await writeManifest(
        stringifyYaml(manifestDocument)
          .replace('timeoutMs: 120000', 'timeoutMs: 5')
          .replace(/name: mirror\.publish-bundle/, 'name: mirror.publish-bundle\n    color: blue'),
      );
      await writeFile(placementPath, stringifyYaml({ tenants: [TENANT] }));
      const refused = await post(worker, '/admin/reload', adminToken);
      expect(refused.status).toBe(422);
      expect(refused.body.error).toBe('ReloadRefused');
      const problems = (refused.body.errors as { path: string; message: string }[]).map(
        (e) => `${e.path}: ${e.message}`,
      );
      expect(problems.some((p) => p.startsWith('effects: ') && p.includes('timeoutMs'))).toBe(true);
      expect(problems.some((p) => p.startsWith('effects: ') && p.includes('color'))).toBe(true);
      await writeFile(placementPath, stringifyYaml({ tenants: [] }));
      const refusedPlacement = await post(worker, '/admin/reload', adminToken);
      expect(refusedPlacement.status).toBe(422);
      expect(refusedPlacement.body.errors).toEqual(
        expect.arrayContaining([{ path: 'tenants', message: expect.stringContaining('non-empty list') as string }]),
      );
      const kept = await get(worker, '/info');
      expect((kept.body.effects as { providers: string[] }).providers).toContain('audit.record');
      expect((kept.body.bridge as { tenants: string[] }).tenants).toEqual([TENANT, 'globex']);
      expect((await get(worker, '/ready')).status).toBe(200);

      expect(await signalWorkerProcess(worker)).toBe(0);
      await writeManifest(manifestDocument);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('an effect worker (WORKER_MODE=effect)', () => {
  it(
    'polls the effects queue only and runs no bridge',
    async () => {
      const worker = await startWorkerProcess(workerEnv({ WORKER_MODE: 'effect' }));
      const info = await get(worker, '/info');
      expect(info.body).toMatchObject({ mode: 'effect', taskQueues: ['effects'], bridge: null });
      const ready = await get(worker, '/ready');
      expect(ready.status).toBe(200);
      expect(Object.keys(ready.body.checks as object).sort()).toEqual(['postgres', 'temporal']);
      expect(await signalWorkerProcess(worker)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('a combined worker (WORKER_MODE=combined)', () => {
  it(
    'drains on POST /admin/drain: /ready 503 first, the effect in flight finishes, nothing new is polled',
    async () => {
      const first = await startWorkerProcess(workerEnv({ WORKER_MODE: 'combined', NATS_BRIDGE: 'true' }));
      const info = await get(first, '/info');
      expect(info.body).toMatchObject({
        mode: 'combined',
        taskQueues: ['policy-simulation', 'pack-approval', 'saga', 'effects'],
        bridge: { consumer: 'saga-bridge', tenants: [] },
      });

      hold.holdAgain();
      const held = hold.arrived.length;
      const workflowId = await requestExport();
      await eventually(() => (hold.arrived.length > held ? true : undefined), 60_000);

      const metrics = await get(first, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      expect(metrics.text).toMatch(/^temporal_\w+/m);
      expect(metrics.text).toMatch(/^stellaops_runner_bridge_messages_total\{outcome="accepted"\} 1$/m);
      expect(metrics.text).toContain('# TYPE stellaops_runner_quarantine_open gauge');

      const drain = await post(first, '/admin/drain', adminToken);
      expect(drain.status).toBe(202);
      expect(drain.body).toEqual({ state: 'draining' });
      const notReady = await get(first, '/ready');
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({ status: 'unavailable', state: 'draining' });
      // Still draining: the effect is held.
      expect((await post(first, '/admin/drain', adminToken)).body).toEqual({ state: 'draining' });

      hold.release();
      const drained = await eventually(async () => {
        const answer = await post(first, '/admin/drain', adminToken);
        return answer.status === 200 ? answer : undefined;
      }, 60_000);
      expect(drained.body).toEqual({ state: 'drained' });
      expect((await get(first, '/ready')).status).toBe(503);

      // The effect finished on the drained worker; the workflow task its result made was not taken by it.
      const afterDrain = await historyOf(workflowId);
      const effect = afterDrain.findIndex((e) => e.activity === 'runEffect');
      expect(effect).toBeGreaterThan(-1);
      const after = (from: number, type: string) =>
        afterDrain.findIndex((e, i) => i > from && typeName(e.type) === type);
      const completed = after(effect, 'ACTIVITY_TASK_COMPLETED');
      expect(completed).toBeGreaterThan(effect);
      const firstIdentity = afterDrain[after(effect, 'ACTIVITY_TASK_STARTED')]?.identity;
      expect(firstIdentity).toBeDefined();
      expect(afterDrain.slice(completed).map((e) => typeName(e.type))).toEqual([
        'ACTIVITY_TASK_COMPLETED',
        'WORKFLOW_TASK_SCHEDULED',
      ]);

      // Another worker takes over and finishes the saga; a SIGTERM then drains it the same way.
      const second = await startWorkerProcess(workerEnv({ WORKER_MODE: 'combined', NATS_BRIDGE: 'true' }));
      await finished(workflowId);
      const completedHistory = await historyOf(workflowId);
      const takenOver = completedHistory.slice(completed).filter((e) => typeName(e.type) === 'WORKFLOW_TASK_STARTED');
      expect(takenOver.length).toBeGreaterThan(0);
      expect(takenOver.every((e) => e.identity !== firstIdentity)).toBe(true);
      expect(await signalWorkerProcess(first)).toBe(0);

      // A reload reaches the effects of the running worker: quota reservations no longer go through the holding
      // provider; an invalid manifest that would send them there again is refused and changes nothing.
      const direct = structuredClone(manifestDocument);
      direct.providers.find((p) => p.name === 'mirror.reserve-quota')!.url = `${reference.url}${RESERVE_PATH}`;
      await writeManifest(direct);
      const reloaded = await post(second, '/admin/reload', adminToken);
      expect(reloaded.status).toBe(200);
      expect(reloaded.body.effects).toMatchObject({ added: [], removed: [], changed: ['mirror.reserve-quota'] });
      hold.holdAgain();
      const arrivedBefore = hold.arrived.length;
      await finished(await requestExport());
      await writeManifest(stringifyYaml(manifestDocument).replace('kind: http', 'kind: grpc'));
      expect((await post(second, '/admin/reload', adminToken)).status).toBe(422);
      await finished(await requestExport());
      expect(hold.arrived.length).toBe(arrivedBefore);
      await writeManifest(manifestDocument);
      expect((await post(second, '/admin/reload', adminToken)).status).toBe(200);

      hold.holdAgain();
      const heldAgain = hold.arrived.length;
      const secondWorkflowId = await requestExport();
      await eventually(() => (hold.arrived.length > heldAgain ? true : undefined), 60_000);
      const exit = signalWorkerProcess(second);
      await eventually(async () => ((await get(second, '/ready')).status === 503 ? true : undefined), 30_000);
      hold.release();
      expect(await exit).toBe(0);
      const afterSigterm = await historyOf(secondWorkflowId);
      const secondEffect = afterSigterm.findIndex((e) => e.activity === 'runEffect');
      expect(secondEffect).toBeGreaterThan(-1);
      expect(afterSigterm.slice(secondEffect + 1).map((e) => typeName(e.type))).toEqual([
        'ACTIVITY_TASK_STARTED',
        'ACTIVITY_TASK_COMPLETED',
        'WORKFLOW_TASK_SCHEDULED',
      ]);
      expect(second.output()).toContain('"msg":"drained"');
    },
    TEST_TIMEOUT_MS,
  );
});
