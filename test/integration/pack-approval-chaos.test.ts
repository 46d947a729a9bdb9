/**
 * The chaos plan of docs/pack-approvals.md, on real servers: a mail server outage delays mail but delivers it
 * exactly once; a Postgres outage refuses new events with 503 (retryable) and loses no transition.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { loadWebhookConfig } from '../../core/config.js';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import { Scope } from '../../core/scopes.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { getApprovalView, listDeliveries, listTransitions } from '../../db/queries/pack-approvals.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../stack/postgres.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from '../support/auth.js';
import { eventually } from '../support/http-sinks.js';
import {
  sampleEvent,
  signedHeaders,
  startSmtp,
  testPackApprovalDeps,
  type ReceivedMail,
} from '../support/pack-approvals.js';
import { freePort } from '../support/ports.js';
import { createDevServerEnv, uniqueName, workflowBundle } from '../support/temporal.js';

const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
let dir: string;
let pgPort: number;
let smtpPort: number;
let postgres: EmbeddedPostgresHandle;
let env: TestWorkflowEnvironment;
let pool: Pool;
let temporal: TemporalFacade;
let signer: TestSigner;
let app: FastifyInstance;
let worker: Worker;
let running: Promise<void>;
const mails: ReceivedMail[] = [];
const prefix = `${uniqueName('chaos')}-`;

const startPostgres = () => startEmbeddedPostgres({ databaseDir: join(dir, 'pg'), port: pgPort });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-chaos-'));
  await chmod(dir, 0o755);
  [pgPort, smtpPort] = await Promise.all([freePort(), freePort()]);
  [postgres, env, signer] = await Promise.all([startPostgres(), createDevServerEnv(), createTestSigner()]);
  pool = createPool({ connectionString: postgres.url, applicationName: 'chaos-test' });
  await migrate(pool);
  temporal = createTemporalFacade({ address: env.address, namespace: 'default' });
  const logger = createLogger({ level: 'silent' });
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: `${prefix}pack-approval`,
    workflowBundle: await workflowBundle(),
    activities: createActivities({
      pool,
      logger,
      policyEngineUrl: 'http://127.0.0.1:1',
      policyWebhook: loadWebhookConfig({}),
      packApprovals: testPackApprovalDeps({ smtpUrl: `smtp://127.0.0.1:${smtpPort}`, linkSecret: secrets.linkSecret }),
    }),
  });
  running = worker.run();
  app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger,
    pool,
    temporal,
    verifyToken: signer.verifier,
    taskQueuePrefix: prefix,
    packApprovalSecrets: secrets,
  });
});
afterAll(async () => {
  await app?.close();
  worker?.shutdown();
  await running;
  await pool?.end();
  await temporal?.close();
  await env?.teardown();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function ingest(event: ReturnType<typeof sampleEvent>) {
  const body = JSON.stringify(event);
  const token = await signer.token({ tenant: 'acme', scopes: [Scope.NotifierEventsWrite] });
  return app.inject({
    method: 'POST',
    url: '/notifications/pack-approvals',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      ...signedHeaders(secrets.eventSecrets[0]!, body),
    },
    payload: body,
  });
}

describe('chaos: channel and storage outages', () => {
  it('SMTP down then up: the approval mail is delivered once, after the outage', async () => {
    const event = sampleEvent();
    expect((await ingest(event)).statusCode).toBe(202); // the mail server is not running yet
    await eventually(() => getApprovalView(pool, 'acme', event.runId, 'deploy-prod'));
    await new Promise((r) => setTimeout(r, 3_000)); // at least two failed attempts
    expect(mails).toHaveLength(0);
    const smtp = await startSmtp({ port: smtpPort, mails });
    try {
      await eventually(() => mails.find((m) => m.raw.includes(event.runId)), 60_000);
      await new Promise((r) => setTimeout(r, 2_000)); // no late duplicate
      expect(mails.filter((m) => m.raw.includes(event.runId))).toHaveLength(1);
      const deliveries = await listDeliveries(pool, 'acme', event.runId, 'deploy-prod');
      expect(deliveries.map((d) => d.status)).toEqual(['sent']);
    } finally {
      await smtp.close();
    }
  });

  it('Postgres down then up: new events get 503 + Retry-After, a decision taken meanwhile loses no transition', async () => {
    const smtp = await startSmtp({ port: smtpPort, mails });
    try {
      const event = sampleEvent();
      expect((await ingest(event)).statusCode).toBe(202);
      await eventually(() => getApprovalView(pool, 'acme', event.runId, 'deploy-prod'));

      await postgres.stop();
      const refusedEvent = sampleEvent();
      const refused = await ingest(refusedEvent);
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      // The decision reaches the workflow; persisting it waits for the database.
      const approver = await signer.token({ tenant: 'acme', scopes: [Scope.PacksApprove, 'deploy:prod'] });
      const ack = app.inject({
        method: 'POST',
        url: `/notifications/pack-approvals/${event.runId}/deploy-prod/ack`,
        headers: { authorization: `Bearer ${approver}` },
        payload: { decision: 'approve' },
      });
      await new Promise((r) => setTimeout(r, 3_000));
      postgres = await startPostgres();
      expect((await ack).statusCode).toBe(200);
      const transitions = await eventually(async () => {
        const rows = await listTransitions(pool, 'acme', event.runId, 'deploy-prod');
        return rows.length === 2 ? rows : undefined;
      }, 60_000);
      expect(transitions.map((t) => t.to_state)).toEqual(['pending', 'approved']);
      // The event refused during the outage is accepted when retried afterwards — the same event, signed afresh
      // (`ingest` signs every post with a new message id) — and only once: a further repeat is a duplicate.
      const retried = await ingest(refusedEvent);
      expect(retried.statusCode).toBe(202);
      expect(retried.json()).toMatchObject({ status: 'accepted', eventId: refusedEvent.eventId });
      const repeated = await ingest(refusedEvent);
      expect(repeated.statusCode).toBe(200);
      expect(repeated.json()).toMatchObject({ status: 'duplicate', eventId: refusedEvent.eventId });
      const view = await eventually(() => getApprovalView(pool, 'acme', refusedEvent.runId, 'deploy-prod'));
      expect(view.eventIds).toEqual([refusedEvent.eventId]);
      const requested = await listTransitions(pool, 'acme', refusedEvent.runId, 'deploy-prod');
      expect(requested.map((t) => t.to_state)).toEqual(['pending']);
    } finally {
      await smtp.close();
    }
  });
});
