/**
 * The product's own entry points encrypt what they hand Temporal: the API (`startApiServer`) and the workers
 * (`startWorkers`) on one data directory share the generated local key, a deep readiness check round-trips through
 * them, and a client WITHOUT the codec reads the raw history: workflow input, activity input and output, the result
 * and a failure's message are `binary/encrypted` under the local key id, with none of their plaintext.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../api/server.js';
import { createSagaTemporal } from '../../api/temporal/sagas.js';
import { startSelfCheck } from '../../api/temporal/self-check.js';
import { loadConfig, type AppConfig } from '../../core/config.js';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA, payloadCodecKeysOf } from '../../core/payload-codec.js';
import { startWorkers, type RunningWorkers } from '../../workers/main.js';
import { mirrorBundleExport } from '../../workflows/mirror-bundle-export/definitions.js';
import { sagaWorkflowId } from '../../workflows/sagas/definitions.js';
import { eventually } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { exportRequested } from '../support/sagas.js';
import { inProcessProductEnv } from '../support/config.js';
import { createDevServerEnv } from '../support/temporal.js';

const TENANT = `codec-${randomUUID().slice(0, 8)}`;
const { EventType } = proto.temporal.api.enums.v1;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let dataDir: string;
let config: AppConfig;
let workers: RunningWorkers | undefined;
let api: ApiServer | undefined;

beforeAll(async () => {
  const { logger } = memoryLogger();
  [env, db, dataDir] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    mkdtemp(join(tmpdir(), 'payload-codec-wiring-')),
  ]);
  // No PAYLOAD_CODEC_KEYS: the key generated under DATA_DIR, as `npm start` runs.
  config = loadConfig(
    inProcessProductEnv(
      { dataDir, temporalAddress: env.address, namespace: env.namespace, databaseUrl: db.url },
      { WORKER_QUEUES: 'policy-simulation', SELF_CHECK_TENANT: TENANT },
    ),
  );
  // The test setup installed the SDK runtime, without a metrics exporter: /metrics is not asked for here.
  workers = await startWorkers(config, logger, { sdkMetricsUrl: 'http://127.0.0.1:1/metrics' });
  api = await startApiServer(config, logger);
}, 180_000);

afterAll(async () => {
  await api?.close();
  await workers?.stop();
  await env?.teardown();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The history of `workflowId` as the server stores it, read by the test environment's client (no codec). */
async function rawHistory(workflowId: string): Promise<HistoryEvent[]> {
  return (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

/** Checks that every payload is ciphertext under `keyId` with none of `plaintexts` in it. */
function expectEncrypted(payloads: readonly Payload[], keyId: string, plaintexts: readonly string[]) {
  expect(payloads.length).toBeGreaterThan(0);
  for (const payload of payloads) {
    expect(text(payload.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(payload.metadata?.[KEY_ID_METADATA])).toBe(keyId);
    for (const plaintext of [...plaintexts, 'json/plain']) expect(text(payload.data)).not.toContain(plaintext);
  }
}

describe('payload encryption of the product API and workers', () => {
  it('round-trips a deep readiness check, and the raw history holds only ciphertext under the local key', async () => {
    const [localKey] = await payloadCodecKeysOf(config);
    expect(localKey!.id).toMatch(/^local-\d{8}$/);

    const ready = await fetch(`${api!.url}/ready?deep=true`);
    const body = (await ready.json()) as { checks: { selfCheck?: Record<string, { status: string }> } };
    expect(ready.status, JSON.stringify(body)).toBe(200);
    expect(body.checks.selfCheck?.['policy-simulation']?.status).toBe('up');

    const [workflowId] = await eventually(async () => {
      const ids: string[] = [];
      const query = `WorkflowType = "selfCheckWorkflow" AND TenantId = "${TENANT}"`;
      for await (const execution of env.client.workflow.list({ query })) ids.push(execution.workflowId);
      return ids.length > 0 ? ids : undefined;
    }, 30_000);
    const events = await rawHistory(workflowId!);
    const of = (type: proto.temporal.api.enums.v1.EventType) => events.filter((event) => event.eventType === type);
    const started = of(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)[0]?.workflowExecutionStartedEventAttributes;
    const scheduled = of(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map(
      (e) => e.activityTaskScheduledEventAttributes,
    );
    const activityDone = of(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED).map(
      (e) => e.activityTaskCompletedEventAttributes,
    );
    const completed = of(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)[0]
      ?.workflowExecutionCompletedEventAttributes;
    expect(scheduled.length).toBeGreaterThan(0);

    // The API's client encrypted the input, the worker the activity input, the activity output and the result.
    expectEncrypted((started?.input?.payloads ?? []) as Payload[], localKey!.id, [TENANT, 'activityCount']);
    expectEncrypted(scheduled.flatMap((a) => a?.input?.payloads ?? []) as Payload[], localKey!.id, ['sequence']);
    expectEncrypted(activityDone.flatMap((a) => a?.result?.payloads ?? []) as Payload[], localKey!.id, [
      'sequence',
      'policy-simulation',
    ]);
    expectEncrypted((completed?.result?.payloads ?? []) as Payload[], localKey!.id, [TENANT, 'activitiesCompleted']);

    // Without the codec the result cannot be read; the API's client, with it, can.
    await expect(env.client.workflow.getHandle(workflowId!).result()).rejects.toThrow();
    const result: unknown = await api!.temporal.client.workflow.getHandle(workflowId!).result();
    expect(result).toMatchObject({ tenantId: TENANT, activityTaskQueues: ['policy-simulation'] });
  });

  it('encrypts a failure message too: only the codec reads why the run failed', async () => {
    const [localKey] = await payloadCodecKeysOf(config);
    const { handle } = await startSelfCheck(api!.temporal, {
      tenantId: TENANT,
      taskQueue: 'policy-simulation',
      activityCount: 5000,
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause?.message).toBe('activityCount must be an integer between 0 and 1000');

    const failed = (await rawHistory(handle.workflowId)).find(
      (event) => event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    )?.workflowExecutionFailedEventAttributes?.failure;
    expect(failed?.message).toBe('Encoded failure');
    expect(failed?.stackTrace ?? '').toBe('');
    expectEncrypted([failed!.encodedAttributes as Payload], localKey!.id, ['activityCount', 'between']);
  });

  it('reads the generation of a saga run from its encrypted start input when the run is started again', async () => {
    const [localKey] = await payloadCodecKeysOf(config);
    const bundleId = `codec-${randomUUID().slice(0, 8)}`;
    const workflowId = sagaWorkflowId(TENANT, mirrorBundleExport.name, bundleId);
    // A closed run under the saga's id whose (encrypted) input carries a generation, run to its end by the worker.
    const earlier = await api!.temporal.client.workflow.start('selfCheckWorkflow', {
      workflowId,
      taskQueue: 'policy-simulation',
      args: [{ tenantId: TENANT, activityCount: 0, generation: 4 }],
    });
    await earlier.result();

    // On a queue no worker serves: only the start is looked at.
    const sagas = createSagaTemporal(api!.temporal, { taskQueuePrefix: 'unserved-' });
    const route = {
      sagaName: mirrorBundleExport.name,
      workflowType: mirrorBundleExport.workflowType,
      correlationId: bundleId,
      workflowId,
      starts: true,
    };
    await expect(sagas.startAgain(route, exportRequested(bundleId, { tenantId: TENANT }))).resolves.toEqual({
      delivery: 'started',
      generation: 5,
    });
    const restarted = (await rawHistory(workflowId)).find(
      (event) => event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    )?.workflowExecutionStartedEventAttributes;
    expectEncrypted((restarted?.input?.payloads ?? []) as Payload[], localKey!.id, [TENANT, bundleId, 'generation']);
    await api!.temporal.client.workflow.getHandle(workflowId).terminate('test over');
  });
});
