/** Real peers and helpers of pack-approval tests: an SMTP server, sample events, signed posts, and the channels to wire. */
import { readFileSync } from 'node:fs';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createActivities } from '../../activities/index.js';
import { loadWebhookConfig } from '../../core/config.js';
import { generateSecret } from '../../core/local-secrets.js';
import type { Pool } from '../../db/pool.js';
import { workflowBundle } from './temporal.js';
import { createEmailSender, createSignedWebhookSender } from '../../activities/pack-approval/channels.js';
import type { PackApprovalDeps } from '../../activities/pack-approval/index.js';
import { createTaskRunnerClient } from '../../activities/pack-approval/task-runner.js';
import { createLogger } from '../../core/logger.js';
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import { withFreshIds } from '../../scripts/pack-event.js';

// Tests post events as the Task Runner does, with the helpers of `npm run pack-event`.
export { postSignedEvent, signedHeaders } from '../../scripts/pack-event.js';

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
  return { ...withFreshIds(sample), ...overrides };
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
