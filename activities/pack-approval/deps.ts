/** Builds the pack-approval channels from the configuration (used by the worker process and `npm start`). */
import type { AppConfig } from '../../core/config.js';
import { approvalLinkSecretOf } from '../../core/local-secrets.js';
import type { Logger } from '../../core/logger.js';
import { createEmailSender, createSignedWebhookSender } from './channels.js';
import type { PackApprovalDeps } from './index.js';
import { createTaskRunnerClient } from './task-runner.js';

/** Channels, clients and settings of the pack-approval activities. */
export async function packApprovalDepsFromConfig(
  config: AppConfig,
  logger: Logger,
): Promise<Omit<PackApprovalDeps, 'pool' | 'logger'>> {
  const c = config.packApprovals;
  return {
    email: createEmailSender({
      ...(c.smtpUrl ? { smtpUrl: c.smtpUrl } : {}),
      from: c.mailFrom,
      inboxDir: c.inboxDir,
      logger,
    }),
    webhook: createSignedWebhookSender({
      ...(c.webhookSigningSecret ? { signingSecret: c.webhookSigningSecret } : {}),
      logger,
    }),
    taskRunner: createTaskRunnerClient({
      ...(c.taskRunnerSigningSecret ? { signingSecret: c.taskRunnerSigningSecret } : {}),
      logger,
    }),
    publicBaseUrl: c.publicBaseUrl,
    linkSecret: await approvalLinkSecretOf(config),
    defaultLocale: c.defaultLocale,
    defaultRecipients: c.defaultRecipients,
  };
}
