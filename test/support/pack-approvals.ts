/** Real peers and helpers of pack-approval tests: an SMTP server, signed events, and the channels to wire. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createActivities } from '../../activities/index.js';
import { loadWebhookConfig } from '../../core/config.js';
import { signatureHeaders } from '../../activities/shared/http.js';
import { generateSecret } from '../../core/local-secrets.js';
import type { Pool } from '../../db/pool.js';
import { workflowBundle } from './temporal.js';
import { Webhook } from 'standardwebhooks';
import { createEmailSender, createSignedWebhookSender } from '../../activities/pack-approval/channels.js';
import type { PackApprovalDeps } from '../../activities/pack-approval/index.js';
import { createTaskRunnerClient } from '../../activities/pack-approval/task-runner.js';
import { createLogger } from '../../core/logger.js';
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';

/** A message the SMTP server received. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw DATA of the message. */
  raw: string;
}

/**
 * An SMTP server on loopback (no TLS, no auth) that keeps what it accepts; restart it on the same port to simulate an
 * outage, or pass `smtp-server` options (e.g. `onRcptTo`) to make it refuse.
 */
export async function startSmtp(
  options: { port?: number; mails?: ReceivedMail[]; server?: Partial<SMTPServerOptions> } = {},
): Promise<{ url: string; port: number; mails: ReceivedMail[]; close(): Promise<void> }> {
  const mails: ReceivedMail[] = options.mails ?? [];
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        callback();
      });
    },
    ...options.server,
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    mails,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The committed sample request with fresh ids (and overrides). */
export function sampleEvent(overrides: Partial<PackApprovalEvent> = {}): PackApprovalEvent {
  const sample = JSON.parse(
    readFileSync(new URL('../../samples/pack-approvals/pack-approval-requested.json', import.meta.url), 'utf8'),
  ) as PackApprovalEvent;
  const now = Date.now();
  return {
    ...sample,
    eventId: `evt-${randomUUID()}`,
    runId: `run-${randomUUID().slice(0, 8)}`,
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 24 * 3600 * 1000).toISOString(),
    ...overrides,
  };
}

/** Standard Webhooks headers for `body` signed with `secret`. */
export function signedHeaders(
  secret: string,
  body: string,
  options: { id?: string; at?: Date } = {},
): Record<string, string> {
  return signatureHeaders(new Webhook(secret), options.id ?? `msg_${randomUUID()}`, options.at ?? new Date(), body);
}

/** Channels of the pack-approval activities pointed at test peers. */
export function testPackApprovalDeps(options: {
  smtpUrl: string;
  linkSecret: string;
  publicBaseUrl?: string;
  defaultRecipients?: string[];
}): Omit<PackApprovalDeps, 'pool' | 'logger'> {
  const logger = createLogger({ level: 'silent' });
  return {
    email: createEmailSender({ smtpUrl: options.smtpUrl, from: 'approvals@stellaops.test', logger }),
    webhook: createSignedWebhookSender({ logger }),
    taskRunner: createTaskRunnerClient({ logger }),
    publicBaseUrl: options.publicBaseUrl ?? 'http://127.0.0.1:3000',
    linkSecret: options.linkSecret,
    defaultLocale: 'en-US',
    defaultRecipients: options.defaultRecipients ?? ['approvers@acme.test'],
  };
}

/** A worker with every activity, the pack-approval ones pointed at `smtpUrl`, on `taskQueue`. */
export async function createPackApprovalWorker(
  env: TestWorkflowEnvironment,
  options: { pool: Pool; smtpUrl: string; taskQueue: string; linkSecret?: string },
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue: options.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities({
      pool: options.pool,
      logger: createLogger({ level: 'silent' }),
      policyEngineUrl: 'http://127.0.0.1:1',
      policyWebhook: loadWebhookConfig({}),
      packApprovals: testPackApprovalDeps({
        smtpUrl: options.smtpUrl,
        linkSecret: options.linkSecret ?? generateSecret(),
      }),
    }),
  });
}

/** POSTs `event` to the ingestion endpoint of `baseUrl`, signed with `secret`, as the Task Runner does. */
export function postSignedEvent(
  baseUrl: string,
  event: unknown,
  options: { token: string; secret: string },
): Promise<Response> {
  const body = JSON.stringify(event);
  return fetch(`${baseUrl}/notifications/pack-approvals`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${options.token}`,
      ...signedHeaders(options.secret, body),
    },
    body,
  });
}
