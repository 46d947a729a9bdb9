/**
 * The secrets a request hands the product stay out of Temporal: after a pack approval whose event carries a Task Runner
 * resume token, approved so the token is used, and a policy simulation with metadata, the raw history that the
 * `temporal` CLI shows without the codec holds none of them (neither in plain nor base64-encoded), only
 * `binary/encrypted` payloads. The API's codec endpoint decodes those payloads for an operator's token and refuses
 * callers without one (401) or without its scope (403), and the CLI given the endpoint shows the resume token decoded.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../api/server.js';
import type { CodecPayload } from '../../api/schemas/codec.js';
import { loadConfig, type AppConfig } from '../../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../../core/local-keys.js';
import { packEventSecretsOf } from '../../core/local-secrets.js';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA, payloadCodecKeysOf } from '../../core/payload-codec.js';
import { Scope } from '../../core/scopes.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';
import { resolveTemporalCli } from '../../stack/binaries.js';
import { startWorkers, type RunningWorkers } from '../../workers/main.js';
import { packApprovalWorkflowId } from '../../workflows/pack-approval/definitions.js';
import { policySimulationWorkflowId, type PolicyRunStatus } from '../../workflows/policy-simulation/definitions.js';
import { eventually, startReceiver, type ReceivedRequest, type Sink } from '../support/http-sinks.js';
import { memoryLogger, type MemoryLogger } from '../support/logger.js';
import { postSignedEvent, sampleEvent } from '../support/pack-approvals.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { simulationBody } from '../support/simulations.js';
import { inProcessProductEnv } from '../support/config.js';
import { createDevServerEnv } from '../support/temporal.js';

const TENANT = `secrets-${randomUUID().slice(0, 8)}`;
/** The Task Runner's resume token of the approval, and the simulation's metadata value: what must never show. */
const RESUME_TOKEN = `tr-resume-${randomUUID()}`;
const NOTE = `secret-${randomUUID()}`;
const SECRETS = [RESUME_TOKEN, NOTE];
const SIMULATIONS = '/api/v1/scheduler/policies/simulations';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let engine: RunningPolicyEngine;
let taskRunner: Sink & { received: ReceivedRequest[] };
let dataDir: string;
let config: AppConfig;
let log: MemoryLogger;
let workers: RunningWorkers | undefined;
let api: ApiServer | undefined;
let cli: string;

/** A token of the API's verifier (the local key of the data directory, as `npm run token` mints one). */
async function tokenFor(tenant: string, scopes: string[], subject = `local-user@${tenant}`): Promise<string> {
  const key = await loadOrCreateLocalKey(config.dataDir);
  return mintToken(key, { tenant, scopes, subject, issuer: config.auth.issuer, audience: config.auth.audience });
}

beforeAll(async () => {
  log = memoryLogger();
  [env, db, engine, taskRunner, dataDir] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    startPolicyEngine(),
    startReceiver(() => 200),
    mkdtemp(join(tmpdir(), 'payload-secrets-')),
  ]);
  // No PAYLOAD_CODEC_KEYS, no SMTP_URL: the key and the event secret generated under DATA_DIR, mail to its inbox.
  config = loadConfig(
    inProcessProductEnv(
      { dataDir, temporalAddress: env.address, namespace: env.namespace, databaseUrl: db.url },
      { POLICY_ENGINE_URL: engine.url, WORKER_QUEUES: 'policy-simulation,pack-approval' },
    ),
  );
  cli = (await resolveTemporalCli({ build: false, allowDownload: false })).path!;
  // The test setup installed the SDK runtime, without a metrics exporter: /metrics is not asked for here.
  workers = await startWorkers(config, log.logger, { sdkMetricsUrl: 'http://127.0.0.1:1/metrics' });
  api = await startApiServer(config, log.logger);
}, 180_000);

afterAll(async () => {
  await api?.close();
  await workers?.stop();
  await Promise.allSettled([env?.teardown(), engine?.close(), taskRunner?.close()]);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** `temporal workflow show -o json` of `workflowId`, with `extra` flags (none: the raw history, no codec). */
async function show(workflowId: string, extra: string[] = []): Promise<string> {
  const { stdout } = await promisify(execFile)(
    cli,
    [
      ...['workflow', 'show', '--address', env.address, '--namespace', env.namespace ?? 'default'],
      ...['--workflow-id', workflowId, '--output', 'json', ...extra],
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** Every payload (an object with `metadata.encoding`) anywhere in the CLI's JSON. */
function payloadsIn(value: unknown, found: CodecPayload[] = []): CodecPayload[] {
  if (Array.isArray(value)) for (const item of value) payloadsIn(item, found);
  else if (value !== null && typeof value === 'object') {
    const metadata = (value as { metadata?: unknown }).metadata;
    if (metadata !== null && typeof metadata === 'object' && 'encoding' in metadata) found.push(value as CodecPayload);
    else for (const item of Object.values(value)) payloadsIn(item, found);
  }
  return found;
}

/** Every string of the CLI's JSON, as it is and base64-decoded (payload bytes are base64 there). */
function stringsIn(value: unknown, found: string[] = []): string[] {
  if (typeof value === 'string') found.push(value, Buffer.from(value, 'base64').toString('latin1'));
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, found);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) stringsIn(item, found);
  return found;
}

const text = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');
const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64');

/** The raw history of `workflowId` as the CLI shows it without the codec: its encrypted payloads. */
async function rawEncryptedPayloads(workflowId: string, keyId: string): Promise<CodecPayload[]> {
  const stdout = await show(workflowId);
  for (const secret of SECRETS) {
    expect(stdout).not.toContain(secret);
    expect(stdout).not.toContain(b64(secret));
  }
  const shown: unknown = JSON.parse(stdout);
  // Also inside any base64 field, wherever the secret falls in it.
  for (const value of stringsIn(shown)) for (const secret of SECRETS) expect(value).not.toContain(secret);
  const encrypted = payloadsIn(shown).filter((p) => text(p.metadata?.encoding) === ENCRYPTED_ENCODING);
  expect(encrypted.length).toBeGreaterThan(0);
  for (const payload of encrypted) expect(text(payload.metadata?.[KEY_ID_METADATA])).toBe(keyId);
  return encrypted;
}

/** `POST /codec/decode` of `payloads` with `token` (none: no Authorization header). */
const decode = (payloads: CodecPayload[], token?: string) =>
  fetch(`${api!.url}/codec/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ payloads }),
  });

describe('secrets of requests in Temporal histories', () => {
  let approvalId: string;
  let simulationId: string;

  beforeAll(async () => {
    // A pack approval whose resume callback goes to a Task Runner on loopback, approved so its token is used.
    const event = sampleEvent({
      tenantId: TENANT,
      resumeCallback: { url: `${taskRunner.url}/resume`, token: RESUME_TOKEN },
    });
    const [secret] = await packEventSecretsOf(config);
    const writer = await tokenFor(TENANT, [Scope.NotifierEventsWrite], 'task-runner');
    const accepted = await postSignedEvent(api!.url, event, { token: writer, secret: secret! });
    expect(accepted.status).toBe(202);
    approvalId = packApprovalWorkflowId(TENANT, event.runId, event.approvalId);
    const approver = await tokenFor(TENANT, [Scope.PacksApprove, ...event.requiredGrants], 'alice');
    const approvalUrl = `${api!.url}/notifications/pack-approvals/${event.runId}/${event.approvalId}`;
    // The ack is refused until the workflow has taken the request in: wait for the approval to be pending.
    await eventually(async () => {
      const view = await fetch(approvalUrl, { headers: { authorization: `Bearer ${approver}` } });
      return view.status === 200 && ((await view.json()) as { state?: string }).state === 'pending' ? true : undefined;
    }, 60_000);
    const acked = await fetch(`${approvalUrl}/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${approver}` },
      body: JSON.stringify({ decision: 'approve', comment: 'ship it' }),
    });
    expect(acked.status, await acked.clone().text()).toBe(200);
    const callback = await eventually(() => taskRunner.received.find((r) => r.body.includes(event.runId)), 60_000);
    expect(callback.headers.authorization).toBe(`Bearer ${RESUME_TOKEN}`);
    await api!.temporal.client.workflow.getHandle(approvalId).result();

    // A simulation whose metadata carries a secret, run to its end.
    const simulator = await tokenFor(TENANT, [Scope.PolicySimulate]);
    const started = await fetch(`${api!.url}${SIMULATIONS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${simulator}` },
      body: JSON.stringify(simulationBody({ metadata: { note: NOTE } })),
    });
    expect(started.status).toBe(201);
    const { runId } = (await started.json()) as PolicyRunStatus;
    simulationId = policySimulationWorkflowId(TENANT, runId);
    await api!.temporal.client.workflow.getHandle(simulationId).result();
    const done = await fetch(`${api!.url}${SIMULATIONS}/${runId}`, {
      headers: { authorization: `Bearer ${simulator}` },
    });
    expect(((await done.json()) as PolicyRunStatus).status).toBe('succeeded');
  }, 180_000);

  it('shows no secret in the raw histories, only payloads encrypted under the local key', async () => {
    const [localKey] = await payloadCodecKeysOf(config);
    await rawEncryptedPayloads(approvalId, localKey!.id);
    await rawEncryptedPayloads(simulationId, localKey!.id);
  });

  it('decodes the encrypted payloads of the histories for an operator, and refuses other callers', async () => {
    const [localKey] = await payloadCodecKeysOf(config);
    const operator = await tokenFor('ops', [Scope.PayloadsDecode], 'operator');
    for (const [workflowId, secret] of [
      [approvalId, RESUME_TOKEN],
      [simulationId, NOTE],
    ] as const) {
      const payloads = await rawEncryptedPayloads(workflowId, localKey!.id);
      const res = await decode(payloads, operator);
      expect(res.status).toBe(200);
      const decoded = ((await res.json()) as { payloads: CodecPayload[] }).payloads;
      expect(decoded).toHaveLength(payloads.length);
      expect(decoded.every((p) => text(p.metadata?.encoding) !== ENCRYPTED_ENCODING)).toBe(true);
      expect(decoded.some((p) => text(p.data).includes(secret))).toBe(true);

      const anonymous = await decode(payloads);
      expect(anonymous.status).toBe(401);
      const unscoped = await decode(payloads, await tokenFor(TENANT, [Scope.PolicySimulate, Scope.PacksApprove]));
      expect(unscoped.status).toBe(403);
      for (const refused of [anonymous, unscoped]) expect(await refused.text()).not.toContain(secret);
    }
  });

  it('lets the temporal CLI given the codec endpoint and an operator token show the resume token decoded', async () => {
    const operator = await tokenFor('ops', [Scope.PayloadsDecode], 'operator');
    const stdout = await show(approvalId, [
      '--codec-endpoint',
      `${api!.url}/codec`,
      '--codec-auth',
      `Bearer ${operator}`,
    ]);
    const shown = payloadsIn(JSON.parse(stdout));
    expect(shown.some((p) => text(p.metadata?.encoding) === ENCRYPTED_ENCODING)).toBe(false);
    expect(shown.some((p) => text(p.data).includes(RESUME_TOKEN))).toBe(true);
  });

  it('logs none of the secrets', () => {
    for (const line of log.lines) for (const secret of SECRETS) expect(line).not.toContain(secret);
  });
});
