/**
 * Replay through the payload codec, as every product worker replays: the committed histories recorded before the
 * codec (plain JSON payloads) replay unchanged with the product's data converter, and histories recorded through the
 * codec — one recorded live here, and the ones committed in `histories-encrypted/` (written by this file with
 * `RECORD_HISTORIES=1`, so a change of the codec's format that could not read earlier histories is caught) — replay
 * with the key that encrypted them, and fail naming that key's id with a ring that lacks it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import type { DataConverter, Payload } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ReplayError, Worker, type ReplayResult, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfCheckActivities } from '../../activities/self-check/index.js';
import {
  createPayloadCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  PAYLOAD_FAILURE_CONVERTER_PATH,
  type PayloadCodecKey,
} from '../../core/payload-codec.js';
import { bundleWorkflows } from '../../workers/host.js';
import { SELF_CHECK_WORKFLOW_TYPE, type SelfCheckInput } from '../../workflows/self-check/definitions.js';
import { HISTORIES_DIR, recordHistory } from '../support/histories.js';
import { createDevServerEnv, uniqueName } from '../support/temporal.js';

/** Histories recorded through the codec under {@link TEST_KEY}. */
const ENCRYPTED_HISTORIES_DIR = fileURLToPath(new URL('./histories-encrypted/', import.meta.url));

/** The key the encrypted histories were recorded with: committed with them, so it protects nothing. */
const TEST_KEY: PayloadCodecKey = {
  id: 'replay-test-1',
  key: Buffer.from('nGfGbyL3Yh7+U6kfcC6AXFtjleQmHK/BXfyh14sU66s=', 'base64'),
};
/** A ring of another key only: what a worker configured without the recording key has. */
const OTHER_KEY: PayloadCodecKey = {
  id: 'replay-test-2',
  key: Buffer.from('3q5mC1mJc0P2Qy3W1x6pQd3n2m9zN0lVd8B1m5o2r0s=', 'base64'),
};

/** The product's data converter (as `dataConverterOf` builds it) over `keys`. */
const converterOf = (keys: PayloadCodecKey[]): DataConverter => ({
  payloadCodecs: [createPayloadCodec(keys)],
  failureConverterPath: PAYLOAD_FAILURE_CONVERTER_PATH,
});

type History = ReturnType<typeof historyFromJSON>;
interface Recorded {
  workflowId: string;
  history: History;
}

/** The histories of `dir`, named by their file. */
async function readHistories(dir: string): Promise<Recorded[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(await readFile(`${dir}${file}`, 'utf8'))),
    })),
  );
}

let bundle: WorkflowBundleWithSourceMap;
let env: TestWorkflowEnvironment;
let plain: Recorded[];
let live: Recorded[];
let committed: Recorded[];

/** Replays `histories` with `dataConverter`; every result, failed or not. */
async function replay(histories: Recorded[], dataConverter: DataConverter): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, dataConverter }, histories))
    results.push(result);
  return results;
}

/** Each failed replay as `<id>: <message>` (every one named, not only the first). */
const failuresOf = (results: ReplayResult[]) =>
  results
    .filter((r) => r.error !== undefined)
    .map((r) => `${r.workflowId}: ${r.error instanceof Error ? r.error.message : String(r.error)}`);

/** Every payload of `history`'s events: inputs, results and encoded failure attributes. */
function payloadsOf(history: History): Payload[] {
  const found: Payload[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
      const metadata = (value as { metadata?: unknown }).metadata;
      if (metadata !== null && typeof metadata === 'object' && 'encoding' in metadata) found.push(value as Payload);
      else Object.values(value).forEach(walk);
    }
  };
  walk(history.events);
  return found;
}

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

/** Runs two self-checks (one that completes, one that fails its input) through the codec on a dev server. */
async function recordThroughCodec(): Promise<Recorded[]> {
  const dataConverter = converterOf([TEST_KEY]);
  const taskQueue = uniqueName('replay-codec');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities: createSelfCheckActivities(),
    dataConverter,
  });
  const client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', dataConverter });
  const runs: [string, SelfCheckInput][] = [
    ['self-check-two-activities', { tenantId: 'replay', activityCount: 2 }],
    ['self-check-invalid-input', { tenantId: 'replay', activityCount: -1 }],
  ];
  return worker.runUntil(async () => {
    const recorded: Recorded[] = [];
    for (const [name, input] of runs) {
      const handle = await client.workflow.start(SELF_CHECK_WORKFLOW_TYPE, {
        workflowId: uniqueName(name),
        taskQueue,
        args: [input],
      });
      await handle.result().catch(() => undefined);
      await recordHistory(handle, name, ENCRYPTED_HISTORIES_DIR);
      recorded.push({ workflowId: name, history: await handle.fetchHistory() });
    }
    return recorded;
  });
}

beforeAll(async () => {
  // One bundle for every ring: the codec runs outside the sandbox, the failure converter inside it.
  [bundle, env, plain] = await Promise.all([
    bundleWorkflows({ dataConverter: converterOf([TEST_KEY]) }),
    createDevServerEnv(),
    readHistories(HISTORIES_DIR),
  ]);
  live = await recordThroughCodec();
  committed = await readHistories(ENCRYPTED_HISTORIES_DIR);
});

afterAll(async () => {
  await env?.teardown();
});

/** The live and the committed histories recorded through the codec, the live ones named apart. */
const encryptedHistories = (): Recorded[] => [
  ...live.map((r) => ({ ...r, workflowId: `live-${r.workflowId}` })),
  ...committed,
];

describe('replay through the payload codec', () => {
  it('replays every history recorded before the codec with the product data converter', async () => {
    expect(plain.length).toBeGreaterThan(0);
    const results = await replay(plain, converterOf([TEST_KEY]));
    expect(results.map((r) => r.workflowId)).toEqual(plain.map((r) => r.workflowId));
    expect(failuresOf(results)).toEqual([]);
  });

  it('holds only payloads encrypted under the test key in the histories recorded through the codec', () => {
    expect(committed.map((r) => r.workflowId)).toEqual(live.map((r) => r.workflowId).sort());
    for (const { workflowId, history } of [...live, ...committed]) {
      const payloads = payloadsOf(history);
      expect(payloads.length, workflowId).toBeGreaterThanOrEqual(2);
      for (const payload of payloads) {
        expect(text(payload.metadata?.encoding), workflowId).toBe(ENCRYPTED_ENCODING);
        expect(text(payload.metadata?.[KEY_ID_METADATA]), workflowId).toBe(TEST_KEY.id);
        expect(text(payload.data), workflowId).not.toContain('activityCount');
      }
    }
  });

  it('replays the histories recorded through the codec, live and committed, without a determinism error', async () => {
    const histories = encryptedHistories();
    // The recording key is no longer the one that encrypts, as after a rotation: payloads decode by the key they name.
    const results = await replay(histories, converterOf([TEST_KEY, OTHER_KEY]));
    expect(results.map((r) => r.workflowId)).toEqual(histories.map((r) => r.workflowId));
    expect(failuresOf(results)).toEqual([]);
  });

  it('fails the replay of each encrypted history with a ring lacking its key, naming the key id', async () => {
    const histories = encryptedHistories();
    // The product's converter: each replay fails, as a failed task rather than a change of the workflow code.
    const results = await replay(histories, converterOf([OTHER_KEY]));
    expect(failuresOf(results)).toHaveLength(histories.length);
    for (const { workflowId, error } of results) {
      expect(error, workflowId).toBeInstanceOf(ReplayError);
      expect(error, workflowId).not.toBeInstanceOf(DeterminismViolationError);
    }
    // Its failure converter encrypts the replay's own failure too (the worker log names the key); without it the
    // result says why.
    const reasons = failuresOf(await replay(histories, { payloadCodecs: [createPayloadCodec([OTHER_KEY])] }));
    expect(reasons).toHaveLength(histories.length);
    for (const reason of reasons)
      expect(reason).toMatch(/names the key \\?"replay-test-1\\?", which is not configured/);
  });
});
