/**
 * The egress of sagas on a real nats-server (the workflow stream as `ensureSagaStreams` creates it) and real
 * Postgres: an effect's final result, a Gateway command's outcome, a saga instance's facts and an approval decision
 * each reach the stream once, with their headers and bodies; a retried publish is dropped by `Nats-Msg-Id`; a publish
 * the stream does not ack fails the activity retryably; without the egress nothing is published and nothing fails.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPackApprovalActivities } from '../../activities/pack-approval/index.js';
import { createEffectActivities } from '../../activities/sagas/effects.js';
import { createEffectsManifestSource } from '../../activities/sagas/effects-manifest.js';
import { createWorkflowEventPublisher, type WorkflowEventPublisher } from '../../activities/sagas/egress.js';
import { createSagaActivities } from '../../activities/sagas/index.js';
import { loadConfig, type AppConfig } from '../../core/config.js';
import { generateSecret } from '../../core/local-secrets.js';
import { startEmbeddedNats, type EmbeddedNatsHandle } from '../../stack/nats.js';
import { decide, initialView } from '../../workflows/pack-approval/state.js';
import {
  SagaFailure,
  sagaWorkflowId,
  type EffectCommand,
  type GatewayCommand,
  type SagaProgress,
} from '../../workflows/sagas/definitions.js';
import { ensureSagaStreams } from '../../workers/saga-streams.js';
import { rejectionOf } from '../support/assertions.js';
import { parseTestManifest } from '../support/effects-manifest.js';
import { packApprovalEvent } from '../support/fixtures.js';
import { useHttpReceiver } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { testPackApprovalDeps } from '../support/pack-approvals.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { sagaProgress } from '../support/sagas.js';
import { runActivity } from '../support/temporal.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const SAGA = 'advisory-impact-rescan';

let dir: string;
let server: EmbeddedNatsHandle;
let connection: NatsConnection;
let jsm: JetStreamManager;
let nats: AppConfig['nats'];
let db: TestDatabase;
const receiver = useHttpReceiver((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-egress-'));
  [server, db] = await Promise.all([
    startEmbeddedNats({ storeDir: join(dir, 'nats'), port: await freePort() }),
    createTestDatabase(),
  ]);
  nats = loadConfig({ NATS_URL: server.url }).nats;
  connection = await connect({ servers: server.url });
  jsm = await jetstreamManager(connection);
  await ensureSagaStreams(jsm, nats);
});
afterAll(async () => {
  await connection?.close();
  await server?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const freshTenant = () => `tenant-${randomUUID().slice(0, 8)}`;

function publisher(logger = memoryLogger().logger, on: NatsConnection = connection): WorkflowEventPublisher {
  return createWorkflowEventPublisher({ connection: on, stream: nats.workflowStream, logger, ackTimeoutMs: 2_000 });
}

/** Every message of the workflow stream under `workflow.{tenant}.>`, in stream order: subject, headers and body. */
async function messagesOf(tenant: string, from: JetStreamManager = jsm) {
  const stream = nats.workflowStream.name;
  const { state } = await from.streams.info(stream);
  const messages = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await from.streams.getMessage(stream, { seq });
    if (!message?.subject.startsWith(`workflow.${tenant}.`)) continue;
    const headers = Object.fromEntries(
      [...(message.header?.keys() ?? [])].map((name) => [name, message.header?.get(name)]),
    );
    messages.push({ subject: message.subject, headers, body: message.json<Record<string, unknown>>() });
  }
  return messages;
}

function effects(egress: WorkflowEventPublisher | undefined, gatewayUrl = 'http://127.0.0.1:1') {
  const manifest = parseTestManifest(
    `
defaults:
  timeoutMs: 1000
  retry: { initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 1000, maximumAttempts: 3 }
providers:
  - { name: impact, kind: http, url: "${receiver.url}/impact/{tenantId}" }
`,
    receiver.url,
  );
  return createEffectActivities({
    manifest: createEffectsManifestSource(manifest),
    logger: memoryLogger().logger,
    gatewayUrl,
    egress,
  });
}

function effectCommand(tenantId: string): EffectCommand {
  return {
    tenantId,
    commandId: `${tenantId}:${SAGA}:adv-1:resolve`,
    effectName: 'impact',
    payload: { advisoryId: 'CVE-2026-1' },
    metadata: { correlationId: 'adv-1', traceparent: TRACEPARENT },
  };
}

const env = (attempt = 1) => new MockActivityEnvironment({ attempt, taskQueue: 'effects' });

describe('effect results', () => {
  it('publishes one message per final result, with exactly the headers and the result as its body', async () => {
    const tenant = freshTenant();
    receiver.answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"impacted":3}');
    const result = await runActivity(env(), effects(publisher()).runEffect, effectCommand(tenant));

    const messages = await messagesOf(tenant);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message!.subject).toBe(`workflow.${tenant}.effect.impact.succeeded`);
    expect(message!.body).toEqual(result);
    expect(result).toMatchObject({ resultType: 'succeeded', payload: { impacted: 3 } });
    // Nats-Expected-Stream is the publish's own check that the message landed in the workflow stream.
    expect(message!.headers).toEqual({
      'tenant-id': tenant,
      'command-id': `${tenant}:${SAGA}:adv-1:resolve`,
      'effect-name': 'impact',
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
      'Nats-Msg-Id': `${tenant}:${SAGA}:adv-1:resolve`,
      'Nats-Expected-Stream': nats.workflowStream.name,
    });
  });

  it('publishes nothing for an attempt that is retried, and the final refusal once', async () => {
    const tenant = freshTenant();
    const { runEffect } = effects(publisher());
    receiver.answer = (res) => res.writeHead(503).end();
    await rejectionOf(runActivity(env(1), runEffect, effectCommand(tenant)), ApplicationFailure);
    expect(await messagesOf(tenant)).toEqual([]);
    receiver.answer = (res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"gone"}');
    await runActivity(env(2), runEffect, effectCommand(tenant));
    expect((await messagesOf(tenant)).map((m) => m.subject)).toEqual([`workflow.${tenant}.effect.impact.rejected`]);
  });

  it('drops a retried publish of the same result by its Nats-Msg-Id', async () => {
    const tenant = freshTenant();
    const log = memoryLogger();
    const { runEffect } = effects(publisher(log.logger));
    const first = await runActivity(env(1), runEffect, effectCommand(tenant));
    // The activity again (its completion lost): the provider answers the same command id, the publish repeats.
    const again = await runActivity(env(2), runEffect, effectCommand(tenant));
    expect(again.timestamp).not.toBe(first.timestamp);

    const messages = await messagesOf(tenant);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.body).toEqual(first);
    expect(log.records.filter((r) => r.msg === 'workflow event published').map((r) => r.duplicate)).toEqual([
      false,
      true,
    ]);
  });

  it('fails the activity retryably while the stream does not ack; the retry once it is back stores one message', async () => {
    const tenant = freshTenant();
    // A server of its own, stopped during the test and started again on the same port and store.
    const storeDir = join(dir, 'restarted');
    const port = await freePort();
    let own = await startEmbeddedNats({ storeDir, port });
    const ownConnection = await connect({ servers: own.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const ownJsm = await jetstreamManager(ownConnection);
      await ensureSagaStreams(ownJsm, nats);
      const { runEffect } = effects(publisher(memoryLogger().logger, ownConnection));
      await own.stop();
      const failure = await rejectionOf(runActivity(env(1), runEffect, effectCommand(tenant)), ApplicationFailure);
      expect(failure.type).toBe(SagaFailure.WorkflowEventsUnavailable);
      expect(failure.nonRetryable).toBe(false);
      expect(failure.message).toContain(`workflow event workflow.${tenant}.effect.impact.succeeded not acked`);

      const reconnected = (async () => {
        for await (const status of ownConnection.status()) if (status.type === 'reconnect') return;
      })();
      own = await startEmbeddedNats({ storeDir, port });
      await reconnected;
      // The retry: whether or not the unacked copy reached the stream after all, the stream holds one.
      const result = await runActivity(env(2), runEffect, effectCommand(tenant));
      expect(result.resultType).toBe('succeeded');
      const messages = await messagesOf(tenant, ownJsm);
      expect(messages.map((m) => m.headers['Nats-Msg-Id'])).toEqual([`${tenant}:${SAGA}:adv-1:resolve`]);
    } finally {
      await ownConnection.close().catch(() => undefined);
      await own.stop();
    }
  });

  it('publishes nothing and fails nothing without the egress', async () => {
    const tenant = freshTenant();
    const result = await runActivity(env(), effects(undefined).runEffect, effectCommand(tenant));
    expect(result.resultType).toBe('succeeded');
    expect(await messagesOf(tenant)).toEqual([]);
  });
});

describe('Gateway-command outcomes', () => {
  it('publishes the outcome under the command type, with the command id as its message id', async () => {
    const tenant = freshTenant();
    receiver.answer = (res) =>
      res.writeHead(409, { 'content-type': 'application/json' }).end('{"message":"sequence moved on"}');
    const command: GatewayCommand = {
      tenantId: tenant,
      commandId: `${tenant}:${SAGA}:adv-1:rescan`,
      aggregateType: 'Scan',
      aggregateId: 'scan-1',
      commandType: 'RequestRescan',
      payload: { image: 'registry.local/app:1' },
      correlationId: 'adv-1',
      causationId: 'evt-1',
    };
    const { submitGatewayCommand } = effects(publisher(), receiver.url);
    const result = await runActivity(env(), submitGatewayCommand, { command, traceparent: TRACEPARENT });
    expect(result.outcome).toBe('rejected');

    const [message, ...rest] = await messagesOf(tenant);
    expect(rest).toEqual([]);
    expect(message!.subject).toBe(`workflow.${tenant}.command.RequestRescan.rejected`);
    expect(message!.headers).toEqual({
      'tenant-id': tenant,
      'command-id': command.commandId,
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
      'Nats-Msg-Id': command.commandId,
      'Nats-Expected-Stream': nats.workflowStream.name,
    });
    expect(message!.body).toMatchObject({
      commandId: command.commandId,
      commandType: 'RequestRescan',
      aggregateType: 'Scan',
      aggregateId: 'scan-1',
      outcome: 'rejected',
      httpStatus: 409,
      body: { message: 'sequence moved on' },
    });
    expect(message!.body).not.toHaveProperty('payload');
  });
});

describe('saga facts', () => {
  const progress = (tenantId: string, overrides: Partial<SagaProgress> = {}) =>
    sagaProgress(tenantId, { sagaName: SAGA, appliedEvents: 1, traceparent: TRACEPARENT, ...overrides });

  it('publishes a fact when the status changes, and none for a repeat or a write without a change', async () => {
    const tenant = freshTenant();
    const { recordSagaProgress } = createSagaActivities({
      pool: db.pool,
      logger: memoryLogger().logger,
      egress: publisher(),
    });
    const run = (p: SagaProgress) => runActivity(new MockActivityEnvironment(), recordSagaProgress, p);
    const workflowId = sagaWorkflowId(tenant, SAGA, 'adv-1');

    await run(progress(tenant));
    await run(progress(tenant)); // a retry after the write succeeded
    await run(progress(tenant, { revision: 2, appliedEvents: 2 })); // still running
    expect((await messagesOf(tenant)).map((m) => m.subject)).toEqual([`workflow.${tenant}.saga.${SAGA}.started`]);

    const done = progress(tenant, { revision: 3, status: 'completed', finishedAt: '2026-03-01T10:05:00.000Z' });
    await run(done);
    await run(done);
    const messages = await messagesOf(tenant);
    expect(messages.map((m) => m.subject)).toEqual([
      `workflow.${tenant}.saga.${SAGA}.started`,
      `workflow.${tenant}.saga.${SAGA}.completed`,
    ]);
    expect(messages[1]!.headers).toEqual({
      'tenant-id': tenant,
      'x-correlation-id': 'adv-1',
      traceparent: TRACEPARENT,
      'Nats-Msg-Id': `${workflowId}:0:completed`,
      'Nats-Expected-Stream': nats.workflowStream.name,
    });
    expect(messages[1]!.body).toEqual({
      tenantId: tenant,
      sagaName: SAGA,
      correlationId: 'adv-1',
      workflowId,
      generation: 0,
      fact: 'completed',
      status: 'completed',
      reason: null,
      startedAt: '2026-03-01T10:00:00.000Z',
      finishedAt: '2026-03-01T10:05:00.000Z',
      revision: 3,
      traceparent: TRACEPARENT,
    });

    // A new generation of the instance starts over with facts of its own.
    await run(progress(tenant, { revision: 1, generation: 1, startedAt: '2026-03-02T10:00:00.000Z' }));
    expect((await messagesOf(tenant)).map((m) => m.headers['Nats-Msg-Id'])).toEqual([
      `${workflowId}:0:started`,
      `${workflowId}:0:completed`,
      `${workflowId}:1:started`,
    ]);
  });

  it('publishes the fact again (dropped as a duplicate) while the write after it fails, and none once it succeeded', async () => {
    const tenant = freshTenant();
    const log = memoryLogger();
    const { recordSagaProgress } = createSagaActivities({
      pool: db.pool,
      logger: log.logger,
      egress: publisher(log.logger),
    });
    const run = (p: SagaProgress) => runActivity(new MockActivityEnvironment(), recordSagaProgress, p);
    await run(progress(tenant));
    // Postgres refuses this state (a NUL character in jsonb): the fact goes out, the write does not.
    const refused = progress(tenant, { revision: 2, status: 'failed', reason: 'x', state: { bad: '\u0000' } });
    await rejectionOf(run(refused), ApplicationFailure);
    await rejectionOf(run(refused), ApplicationFailure);
    const written = { ...refused, state: {} };
    await run(written);
    await run(written);

    expect((await messagesOf(tenant)).map((m) => m.subject)).toEqual([
      `workflow.${tenant}.saga.${SAGA}.started`,
      `workflow.${tenant}.saga.${SAGA}.failed`,
    ]);
    const publishes = log.records.filter((r) => r.msg === 'workflow event published');
    expect(publishes.map((r) => [r.msgId, r.duplicate])).toEqual([
      [`${sagaWorkflowId(tenant, SAGA, 'adv-1')}:0:started`, false],
      [`${sagaWorkflowId(tenant, SAGA, 'adv-1')}:0:failed`, false],
      [`${sagaWorkflowId(tenant, SAGA, 'adv-1')}:0:failed`, true],
      [`${sagaWorkflowId(tenant, SAGA, 'adv-1')}:0:failed`, true],
    ]);
  });
});

describe('approval decisions', () => {
  it('publishes the decision the approval records, once, beside the resume callback', async () => {
    const tenant = freshTenant();
    const { recordApproval } = createPackApprovalActivities({
      ...testPackApprovalDeps({ smtpUrl: 'smtp://127.0.0.1:1', linkSecret: generateSecret() }),
      pool: db.pool,
      logger: memoryLogger().logger,
      egress: publisher(),
    });
    const view = initialView(packApprovalEvent({ tenantId: tenant }), 3600);
    const run = (input: Parameters<typeof recordApproval>[0]) =>
      runActivity(new MockActivityEnvironment(), recordApproval, input);
    await run({ view, seq: 1, actor: 'task-runner' });
    expect(await messagesOf(tenant)).toEqual([]);

    const decided = decide(
      view,
      { decision: 'approve', decidedBy: 'alice@acme.test', comment: 'looks fine', grants: view.requiredGrants },
      '2026-03-01T10:00:00.000Z',
    );
    const input = { view: decided.view, seq: 2, transition: decided.transition, actor: 'alice@acme.test' };
    await run(input);
    await run(input);

    const workflowId = `pack-approval/${tenant}/${view.runId}/${view.approvalId}`;
    const [message, ...rest] = await messagesOf(tenant);
    expect(rest).toEqual([]);
    expect(message!.subject).toBe(`workflow.${tenant}.approval.approve`);
    expect(message!.headers).toEqual({
      'tenant-id': tenant,
      'x-correlation-id': view.correlationId,
      'Nats-Msg-Id': `${workflowId}:decision:approve`,
      'Nats-Expected-Stream': nats.workflowStream.name,
    });
    expect(message!.body).toEqual({
      tenantId: tenant,
      runId: view.runId,
      approvalId: view.approvalId,
      workflowId,
      decision: 'approve',
      decidedBy: 'alice@acme.test',
      decidedAt: '2026-03-01T10:00:00.000Z',
      comment: 'looks fine',
      correlationId: view.correlationId,
    });
  });
});
