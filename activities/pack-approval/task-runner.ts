/**
 * Client of the Task Runner's resume callback: after a human decision, POSTs it to the callback URL the Task Runner
 * gave in its approval event, authenticated with the Task Runner's own resume token. One `resume` call is one
 * attempt; failures throw a `DeliveryError` (activities/shared/http.ts) whose `retryable` tells the calling activity whether to try again.
 */
import type { Logger } from '../../core/logger.js';
import type { Decision } from '../../workflows/pack-approval/definitions.js';
import {
  createSigner,
  DEFAULT_DELIVERY_TIMEOUT_MS,
  invalidDelivery,
  parseDeliveryUrl,
  postJson,
  urlForLogs,
} from '../shared/http.js';

/** Options of `createTaskRunnerClient`. */
export interface TaskRunnerClientOptions {
  /** Standard Webhooks secret (`whsec_` + base64); when set, resume calls are signed. Never logged. */
  signingSecret?: string;
  /** Timeout of one resume attempt in ms; 10 000 by default. */
  timeoutMs?: number;
  logger: Logger;
}

/** One resume call. */
export interface ResumeRequest {
  /** The Task Runner's callback URL: `https`, or `http` to a loopback host. */
  url: string;
  /** The Task Runner's resume token, sent back only to `url` as `Authorization: Bearer …`; never logged. */
  token: string;
  tenantId: string;
  runId: string;
  approvalId: string;
  decision: Decision;
  decidedBy: string;
  /** ISO 8601 instant of the decision. */
  decidedAt: string;
  comment?: string;
  /** Stable across retries: sent as `Idempotency-Key` and `webhook-id`. */
  idempotencyKey: string;
  correlationId: string;
  /** W3C trace context of the approval, forwarded when given. */
  traceparent?: string;
}

/** Body of the resume call. */
export type ResumeBody = Pick<
  ResumeRequest,
  'runId' | 'approvalId' | 'decision' | 'decidedBy' | 'decidedAt' | 'comment'
>;

/** Resumes Task Runner runs. */
export interface TaskRunnerClient {
  /**
   * POSTs the decision to the callback URL.
   * @returns the Task Runner's 2xx status.
   * @throws DeliveryError: network errors, timeouts, 5xx, 408 and 429 are retryable (`retryAfterMs` from
   *   `Retry-After`); other 4xx (e.g. 400, 401, 409), redirects, a URL that is neither `https` nor loopback `http`,
   *   and header values that are not visible ASCII are not.
   */
  resume(req: ResumeRequest): Promise<{ status: number }>;
}

/**
 * Creates the Task Runner client: `POST {url}` with JSON body `{ runId, approvalId, decision, decidedBy, decidedAt,
 * comment? }` and headers `Authorization: Bearer {token}`, `Idempotency-Key`, `X-StellaOps-Tenant`,
 * `X-Correlation-Id`, `traceparent` (when given) and, when a secret is configured, the Standard Webhooks headers
 * `webhook-id` (the idempotency key), `webhook-timestamp` and `webhook-signature`. Redirects are not followed, so the
 * token only ever reaches the callback URL. The token never reaches the logs; the URL is logged without its query.
 * @throws Error when `signingSecret` is not a valid Standard Webhooks secret (the secret is not quoted).
 */
export function createTaskRunnerClient(options: TaskRunnerClientOptions): TaskRunnerClient {
  const signer = createSigner(options.signingSecret, 'signingSecret');
  const timeoutMs = options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  const { logger } = options;

  return {
    async resume(req) {
      const logFields = {
        tenantId: req.tenantId,
        runId: req.runId,
        approvalId: req.approvalId,
        decision: req.decision,
        correlationId: req.correlationId,
        idempotencyKey: req.idempotencyKey,
      };
      let url: URL;
      try {
        url = parseDeliveryUrl(req.url);
      } catch (error) {
        logger.warn({ ...logFields, retryable: false }, `Task Runner resume refused: ${(error as Error).message}`);
        throw error;
      }
      if (req.token === '') {
        const message = `Task Runner resume of run ${req.runId} refused: empty resume token`;
        logger.warn({ ...logFields, retryable: false }, message);
        throw invalidDelivery(message);
      }

      const body: ResumeBody = {
        runId: req.runId,
        approvalId: req.approvalId,
        decision: req.decision,
        decidedBy: req.decidedBy,
        decidedAt: req.decidedAt,
        ...(req.comment !== undefined && { comment: req.comment }),
      };
      const headers: Record<string, string> = {
        Authorization: `Bearer ${req.token}`,
        'Idempotency-Key': req.idempotencyKey,
        'X-StellaOps-Tenant': req.tenantId,
        'X-Correlation-Id': req.correlationId,
      };
      if (req.traceparent !== undefined) headers.traceparent = req.traceparent;

      return postJson({
        url,
        body: JSON.stringify(body),
        headers,
        signer,
        messageId: req.idempotencyKey,
        timeoutMs,
        logger,
        logFields,
        what: `Task Runner resume of run ${req.runId} to ${urlForLogs(url)}`,
      });
    },
  };
}
