/**
 * Completion webhook of policy simulations: the sender that POSTs a `CompletionPayload` to the configured endpoint
 * (configuration: `loadWebhookConfig` in core/config.ts).
 *
 * Contract (receivers rely on it): `POST` with `Content-Type: application/json`, `X-StellaOps-Tenant`,
 * `X-StellaOps-Run-Id` (receivers dedupe on it), the configured API-key header when set and, when a signing secret is
 * configured, the Standard Webhooks headers `webhook-id` (the run id, stable across retries), `webhook-timestamp` and
 * `webhook-signature`. The sender throws a `DeliveryError` carrying `retryable`; retrying is the caller's job.
 */
import type { WebhookConfig } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';
import type { CompletionPayload } from '../../workflows/policy-simulation/definitions.js';
import { createSigner, invalidDelivery, postJson, urlForLogs } from '../shared/http.js';

/** Result of one delivery: delivered with the receiver's HTTP status, or skipped because the webhook is disabled. */
export type WebhookOutcome = { delivered: true; status: number } | { delivered: false; skipped: 'disabled' };

/** Dependencies of `createWebhookSender`. */
export interface WebhookSenderDeps {
  config: WebhookConfig;
  logger: Logger;
  /** `globalThis.fetch` by default. */
  fetch?: typeof globalThis.fetch;
  /** Clock of `webhook-timestamp`; `() => new Date()` by default. */
  now?: () => Date;
}

/** Sends completion payloads; one call is one delivery attempt. */
export interface WebhookSender {
  /**
   * POSTs `payload` to the configured endpoint (no network call when disabled).
   * @param jobId the job (activity) delivering the payload, for the logs.
   * @throws DeliveryError on a network error, a timeout or a non-2xx answer.
   */
  send(payload: CompletionPayload, jobId: string): Promise<WebhookOutcome>;
}

/**
 * Creates the completion-webhook sender. The API key and the signing secret never reach the logs; the endpoint is
 * logged without credentials, query or fragment.
 */
export function createWebhookSender({ config, logger, fetch, now }: WebhookSenderDeps): WebhookSender {
  const signer = config.enabled ? createSigner(config.signingSecret, 'POLICY_WEBHOOK_SIGNING_SECRET') : undefined;
  const endpoint = config.endpoint;

  return {
    async send(payload, jobId) {
      const runId = payload.simulation.runId;
      const what = `Policy run job ${jobId} completion webhook`;
      const logFields = { jobId, tenantId: payload.tenantId, runId };

      if (!config.enabled) {
        logger.debug(
          { ...logFields, ...(endpoint && { url: urlForLogs(endpoint) }) },
          `${what} skipped: webhook disabled`,
        );
        return { delivered: false, skipped: 'disabled' };
      }
      if (!endpoint) {
        const error = invalidDelivery(`${what} failed: no endpoint configured`);
        logger.warn({ ...logFields, kind: error.kind, retryable: false }, error.message);
        throw error;
      }

      const headers: Record<string, string> = { 'X-StellaOps-Tenant': payload.tenantId, 'X-StellaOps-Run-Id': runId };
      if (config.apiKeyHeader !== undefined && config.apiKey !== undefined)
        headers[config.apiKeyHeader] = config.apiKey;
      const { status } = await postJson({
        url: endpoint,
        body: JSON.stringify(payload),
        headers,
        signer,
        messageId: runId,
        timeoutMs: config.timeoutSeconds * 1000,
        logger,
        logFields,
        what,
        ...(fetch && { fetch }),
        ...(now && { now }),
      });
      return { delivered: true, status };
    },
  };
}
