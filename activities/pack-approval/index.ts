/**
 * Activities of pack approvals: persist transitions, plan notifications from routing rules, deliver each one
 * (email or signed webhook, idempotent per approval/round/channel/recipient), resume the Task Runner. A recorded
 * decision is also published to the workflow stream (`…approval.{decision}`), beside the HTTP resume callback.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { signApprovalLink } from '../../notify/approval-links.js';
import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { listRules, listTemplates } from '../../db/queries/notify-config.js';
import {
  deliverySent,
  recordApprovalState,
  recordDelivery,
  type TransitionRecord,
} from '../../db/queries/pack-approvals.js';
import {
  ApprovalFailure,
  packApprovalWorkflowId,
  type ApprovalView,
  type Decision,
  type NotificationIntent,
  type PackApprovalEvent,
  type ResumeOutcome,
} from '../../workflows/pack-approval/definitions.js';
import { DeliveryError, deliveryFailure } from '../shared/http.js';
import { refuseDataErrors } from '../shared/data-errors.js';
import { whileHeartbeating } from '../shared/heartbeat.js';
import type { EmailSender, SignedWebhookSender } from './channels.js';
import { DEFAULT_TEMPLATES, defaultTemplateIdFor } from '../../notify/default-templates.js';
import { routeEvent, type NotifyRule } from '../../notify/routing.js';
import type { TaskRunnerClient } from './task-runner.js';
import type { WorkflowEventPublisher } from '../sagas/egress.js';
import {
  buildTemplateModel,
  redactSecrets,
  renderEmail,
  renderWebhook,
  resolveTemplate,
} from '../../notify/templates.js';

/** Dependencies of the pack-approval activities. */
export interface PackApprovalDeps {
  pool: Pool;
  logger: Logger;
  email: EmailSender;
  webhook: SignedWebhookSender;
  taskRunner: TaskRunnerClient;
  /** Base URL of the approval page links. */
  publicBaseUrl: string;
  linkSecret: string;
  defaultLocale: string;
  /** Email recipients of tenants that have no routing rules. */
  defaultRecipients: string[];
  /** Publishes decisions to the workflow stream; nothing is published without it (`NATS_EGRESS=false`). */
  egress?: WorkflowEventPublisher | undefined;
}

/** The event a view stands for, as routing and templates see it (never with the resume secret). */
export function eventOfView(view: ApprovalView): PackApprovalEvent {
  const status = view.state === 'pending' ? undefined : view.state;
  return {
    eventId: view.eventIds[view.eventIds.length - 1] ?? '',
    type: view.eventIds.length > 1 || status ? 'PackApprovalUpdated' : 'PackApprovalRequested',
    kind: view.kind,
    tenantId: view.tenantId,
    runId: view.runId,
    approvalId: view.approvalId,
    planHash: view.planHash,
    requiredGrants: view.requiredGrants,
    stepIds: view.stepIds,
    message: view.message,
    ...(view.policyGate ? { policyGate: view.policyGate } : {}),
    requestedBy: view.requestedBy,
    requestedAt: view.requestedAt,
    ...(view.expiresAt ? { expiresAt: view.expiresAt } : {}),
    locale: view.locale,
    correlationId: view.correlationId,
    ...(status ? { status } : {}),
    ...(view.lastReason ? { reason: view.lastReason } : {}),
  };
}

/** The activity failure of a failed delivery: `finalType` when another attempt cannot help, else retried. */
function toFailure(error: unknown, finalType: ApprovalFailure): never {
  throw deliveryFailure(error, { finalType, retryType: ApprovalFailure.DeliveryUnavailable });
}

const workflowIdOf = (view: ApprovalView) => packApprovalWorkflowId(view.tenantId, view.runId, view.approvalId);

/**
 * The id of a recipient in delivery keys: the first 32 hex digits of the SHA-256 of its address or URL. A webhook URL
 * may carry credentials (a query-string token, a secret path), which must never reach keys, ids, headers or rows.
 */
export function recipientIdOf(recipient: string): string {
  return createHash('sha256').update(recipient, 'utf8').digest('hex').slice(0, 32);
}

/** A recipient as delivery records keep it: email addresses as given, webhook URLs reduced to their origin. */
function recordedRecipient(intent: NotificationIntent): string {
  if (intent.channel !== 'webhook') return intent.recipient;
  try {
    return new URL(intent.recipient).origin;
  } catch {
    return '[invalid url]';
  }
}

/** Who an approval link names as its holder: the email address, or a webhook by origin and recipient id. */
function linkRecipientOf(intent: NotificationIntent): string {
  return intent.channel === 'webhook'
    ? `webhook ${recordedRecipient(intent)} #${recipientIdOf(intent.recipient).slice(0, 12)}`
    : intent.recipient;
}

/**
 * Identity of one delivery: its idempotency key is (approval, round, reason, channel, recipient id), the same for
 * every attempt of one logical notification; it is also the webhook-id and derives the email Message-ID.
 */
function deliveryBase(view: ApprovalView, intent: NotificationIntent, round: number) {
  return {
    idempotencyKey: `${workflowIdOf(view)}/${round}/${intent.reason}/${intent.channel}/${recipientIdOf(intent.recipient)}`,
    tenantId: view.tenantId,
    runId: view.runId,
    approvalId: view.approvalId,
    channel: intent.channel,
    recipient: recordedRecipient(intent),
    reason: intent.reason,
  };
}

/** Creates the activities; all I/O goes through `deps`. */
export function createPackApprovalActivities(deps: PackApprovalDeps) {
  return refuseDataErrors({
    /**
     * Persists the view at `seq` with an optional transition (and its audit record); idempotent. The transition of a
     * decision is then published as a fact, acked before the activity completes: a retry (after a failed publish, or
     * a lost completion) writes nothing new and publishes the same message id, which the stream drops.
     */
    recordApproval: async (input: {
      view: ApprovalView;
      seq: number;
      transition?: TransitionRecord;
      actor: string;
      eventId?: string;
    }): Promise<{ appended: boolean }> => {
      const { view, transition } = input;
      const workflowId = workflowIdOf(view);
      const recorded = await recordApprovalState(deps.pool, { ...input, workflowId });
      if (deps.egress && view.decision && (transition?.to === 'approved' || transition?.to === 'rejected')) {
        await deps.egress.publishApprovalDecision({
          tenantId: view.tenantId,
          runId: view.runId,
          approvalId: view.approvalId,
          workflowId,
          decision: view.decision.decision,
          decidedBy: view.decision.decidedBy,
          decidedAt: view.decision.decidedAt,
          ...(view.decision.comment !== undefined && { comment: view.decision.comment }),
          correlationId: view.correlationId,
        });
      }
      return recorded;
    },

    /** Evaluates the tenant's routing rules (or the default recipients) for `reason`. */
    planApprovalNotifications: async (input: {
      view: ApprovalView;
      reason: NotificationIntent['reason'];
      round: number;
    }): Promise<NotificationIntent[]> => {
      const stored = await listRules(deps.pool, input.view.tenantId);
      const rules: NotifyRule[] =
        stored.length > 0 || deps.defaultRecipients.length === 0
          ? stored
          : [
              {
                ruleId: 'default',
                tenantId: input.view.tenantId,
                name: 'Default recipients',
                predicate: 'true',
                channels: [{ channel: 'email', recipients: deps.defaultRecipients }],
                enabled: true,
                priority: 1000,
              },
            ];
      const { intents, errors } = routeEvent(rules, eventOfView(input.view), input.reason, {
        templateIdFor: defaultTemplateIdFor,
        locale: deps.defaultLocale,
      });
      for (const error of errors) {
        deps.logger.warn({ tenantId: input.view.tenantId, ...error }, 'routing rule failed to evaluate');
      }
      for (const intent of intents) {
        await recordDelivery(deps.pool, {
          ...deliveryBase(input.view, intent, input.round),
          templateId: intent.templateId,
          locale: intent.locale,
          status: 'queued',
        });
      }
      return intents;
    },

    /**
     * Renders and sends one notification. The idempotency key (approval, round, channel, recipient) is the email
     * Message-ID / webhook-id, and a delivery already recorded as sent is not sent again.
     */
    deliverApprovalNotification: async (input: {
      view: ApprovalView;
      intent: NotificationIntent;
      round: number;
    }): Promise<{ status: 'sent' | 'already-sent' }> => {
      const { view, intent } = input;
      const key = deliveryBase(view, intent, input.round).idempotencyKey;
      if (await deliverySent(deps.pool, key)) return { status: 'already-sent' };

      const tenantTemplates = await listTemplates(deps.pool, view.tenantId);
      const template =
        resolveTemplate(tenantTemplates, intent.templateId, intent.channel, intent.locale, deps.defaultLocale) ??
        resolveTemplate(DEFAULT_TEMPLATES, intent.templateId, intent.channel, intent.locale, deps.defaultLocale) ??
        resolveTemplate(
          DEFAULT_TEMPLATES,
          defaultTemplateIdFor(intent.reason),
          intent.channel,
          intent.locale,
          deps.defaultLocale,
        );
      if (!template)
        throw ApplicationFailure.nonRetryable(
          `No template ${intent.templateId} for ${intent.channel}`,
          ApprovalFailure.DeliveryRejected,
        );

      const expiresAt = view.expiresAt ? new Date(view.expiresAt) : new Date(Date.now() + 7 * 24 * 3600 * 1000);
      const link = `${deps.publicBaseUrl}/approvals/${await signApprovalLink(
        deps.linkSecret,
        {
          tenantId: view.tenantId,
          runId: view.runId,
          approvalId: view.approvalId,
          // The link is readable by whoever holds it and its recipient becomes `decidedBy`: a webhook's URL (which
          // may carry a token) is named by its origin and recipient id instead.
          recipient: linkRecipientOf(intent),
          grants: view.requiredGrants,
        },
        expiresAt,
      )}`;
      const model = buildTemplateModel(eventOfView(view), {
        reason: intent.reason,
        approvalLink: link,
        ...(view.decision ? { decision: view.decision } : {}),
      });
      const base = {
        ...deliveryBase(view, intent, input.round),
        templateId: template.templateId,
        locale: template.locale,
      };
      try {
        if (intent.channel === 'email') {
          const mail = redactSecrets(renderEmail(template, model), [deps.linkSecret]);
          await whileHeartbeating(() =>
            deps.email.send({
              to: intent.recipient,
              ...mail,
              idempotencyKey: key,
              headers: { 'X-StellaOps-Tenant': view.tenantId },
            }),
          );
        } else {
          const payload = redactSecrets(renderWebhook(template, model), [deps.linkSecret]);
          await whileHeartbeating(() =>
            deps.webhook.send({ url: intent.recipient, tenantId: view.tenantId, idempotencyKey: key, payload }),
          );
        }
      } catch (error) {
        const final = !(error instanceof DeliveryError) || !error.retryable;
        deps.logger.warn(
          {
            tenantId: view.tenantId,
            runId: view.runId,
            approvalId: view.approvalId,
            correlationId: view.correlationId,
            channel: intent.channel,
            attempt: Context.current().info.attempt,
            err: error,
          },
          'approval notification delivery failed',
        );
        if (final) await recordDelivery(deps.pool, { ...base, status: 'failed', detail: (error as Error).message });
        toFailure(error, ApprovalFailure.DeliveryRejected);
      }
      await recordDelivery(deps.pool, { ...base, status: 'sent' });
      deps.logger.info(
        {
          tenantId: view.tenantId,
          runId: view.runId,
          approvalId: view.approvalId,
          correlationId: view.correlationId,
          channel: intent.channel,
          reason: intent.reason,
        },
        'approval notification sent',
      );
      return { status: 'sent' };
    },

    /** Calls the Task Runner's resume callback (signed, idempotent per approval and decision). */
    resumeTaskRunner: async (input: {
      view: ApprovalView;
      callback: { url: string; token: string };
      decision: Decision;
      decidedBy: string;
      decidedAt: string;
      comment?: string;
    }): Promise<ResumeOutcome> => {
      const { view } = input;
      try {
        const { status } = await whileHeartbeating(() =>
          deps.taskRunner.resume({
            url: input.callback.url,
            token: input.callback.token,
            tenantId: view.tenantId,
            runId: view.runId,
            approvalId: view.approvalId,
            decision: input.decision,
            decidedBy: input.decidedBy,
            decidedAt: input.decidedAt,
            ...(input.comment ? { comment: input.comment } : {}),
            idempotencyKey: `${workflowIdOf(view)}/resume/${input.decision}`,
            correlationId: view.correlationId,
          }),
        );
        return { status: 'resumed', httpStatus: status };
      } catch (error) {
        toFailure(error, ApprovalFailure.ResumeRejected);
      }
    },
  });
}

/** The pack-approval activities. */
export type PackApprovalActivities = ReturnType<typeof createPackApprovalActivities>;
