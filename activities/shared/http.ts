/**
 * The one outbound HTTP layer of every activity that calls out (the completion webhook, the notification webhooks,
 * the Task Runner client, the Policy Engine call): POST once with a timeout and without following redirects, the
 * URL policy of `./url-policy.ts`, Standard Webhooks signing, Retry-After, one error class (`DeliveryError`), one
 * mapping of a failed call to a Temporal failure (`deliveryFailure`), the active trace's `traceparent` and URLs logged
 * without their secret parts.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { Webhook } from 'standardwebhooks';
import type { Logger } from '../../core/logger.js';
import { activeTraceparent } from '../../core/tracing.js';
import { checkOutboundUrl, HEADER_VALUE, urlForLogs } from './outbound-policy.js';

export { HEADER_NAME, HEADER_VALUE, urlForLogs } from './outbound-policy.js';

/** Whether an HTTP failure status is worth retrying: 5xx, 408 and 429 (other 4xx are final). */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * Parses a `Retry-After` header (delay in seconds or an HTTP date) into milliseconds from `now`;
 * undefined when absent or invalid.
 */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Default timeout of one delivery attempt (HTTP request, or each SMTP connection phase), in milliseconds. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Why a delivery failed: the peer's HTTP answer or SMTP reply, a timeout, the network, a local write (the development
 * inbox), or a request refused before it was sent.
 */
export type DeliveryFailureKind = 'http' | 'smtp' | 'timeout' | 'network' | 'io' | 'invalid';

/**
 * A failed delivery attempt. `retryable` is true when the same delivery may succeed later (network errors, timeouts,
 * HTTP 5xx/408/429, SMTP 4xx replies) and false when it will fail again (HTTP 3xx/4xx, SMTP 5xx replies, an invalid
 * URL, header, message or configuration). Retrying is the calling activity's job (see `deliveryFailure`).
 */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  readonly kind: DeliveryFailureKind;
  /** Whether another attempt of the same delivery can succeed. */
  readonly retryable: boolean;
  /** HTTP status of the peer's answer (kind `http`), or the SMTP reply code for email. */
  readonly status?: number;
  /** Delay the peer asked for with `Retry-After`, in milliseconds. */
  readonly retryAfterMs?: number;
  /** Error code of the failure when there is one (`ECONNREFUSED`, `ETIMEDOUT`, nodemailer's `EENVELOPE`…). */
  readonly code?: string;
  /** The peer's answer body (only when the caller asked for it), for callers that report the peer's message. */
  readonly body?: string;
  constructor(
    message: string,
    details: {
      kind: DeliveryFailureKind;
      retryable: boolean;
      status?: number | undefined;
      retryAfterMs?: number | undefined;
      code?: string | undefined;
      body?: string | undefined;
      cause?: unknown;
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = details.kind;
    this.retryable = details.retryable;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.code !== undefined) this.code = details.code;
    if (details.body !== undefined) this.body = details.body;
  }
}

/** A request refused before anything was sent (not retryable). */
export function invalidDelivery(message: string, cause?: unknown): DeliveryError {
  return new DeliveryError(message, { kind: 'invalid', retryable: false, ...(cause !== undefined && { cause }) });
}

/**
 * Parses the URL of a delivery and applies the outbound URL policy (https, or http to loopback only, no credentials).
 * @throws DeliveryError (kind `invalid`) otherwise; the message never quotes the URL's query or credentials.
 */
export function parseDeliveryUrl(raw: string | URL): URL {
  const checked = checkOutboundUrl(raw);
  if (checked.ok) return checked.url;
  throw invalidDelivery(`delivery URL${checked.url ? ` ${urlForLogs(checked.url)}` : ''} ${checked.problem}`);
}

/** Builds a Standard Webhooks signer. @throws Error (without quoting the secret) when the secret is invalid. */
export function createSigner(signingSecret: string | undefined, setting: string): Webhook | undefined {
  if (signingSecret === undefined) return undefined;
  try {
    return new Webhook(signingSecret);
  } catch {
    throw new Error(`${setting} must be a Standard Webhooks secret: "whsec_" followed by non-empty base64`);
  }
}

/** Standard Webhooks headers signing `body` as message `id` at `at`. */
export function signatureHeaders(signer: Webhook, id: string, at: Date, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signer.sign(id, at, body),
  };
}

/** Describes a fetch rejection by its cause (`ECONNREFUSED: connect ECONNREFUSED …`), never by the request. */
function describeFetchError(error: unknown): { reason: string; code?: string } {
  if (!(error instanceof Error)) return { reason: String(error) };
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') {
      return { reason: cause.message.includes(code) ? cause.message : `${code}: ${cause.message}`, code };
    }
    return { reason: cause.message };
  }
  return { reason: error.message };
}

/** A duration for messages: whole seconds as `10s`, anything else in milliseconds. */
function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms} ms`;
}

/** Methods `postJson` sends with; `GET` carries no body. */
export type JsonMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';

/** One JSON POST (or another method), as `postJson` performs it. */
export interface JsonPost {
  /** Destination, already checked by `parseDeliveryUrl` (or a configuration loader applying the same policy). */
  url: URL;
  /** `POST` by default. */
  method?: JsonMethod;
  /** Serialized JSON body (not sent with `GET`). */
  body: string;
  /** Headers besides `Content-Type` and the signature headers; values must be visible ASCII. Never logged. */
  headers?: Record<string, string>;
  /** Signs the request with the Standard Webhooks headers when set. */
  signer?: Webhook | undefined;
  /** `webhook-id` of the signature: stable across retries of the same delivery (required with `signer`). */
  messageId?: string;
  timeoutMs: number;
  logger: Logger;
  /** Fields added to every log line (never secrets). */
  logFields?: Record<string, unknown>;
  /** What is being delivered, the subject of the log lines and messages: `Task Runner resume of run r-1`. */
  what: string;
  /** Log the success at this level (`info` by default). */
  successLevel?: 'info' | 'debug';
  /** Also reads the answer's body (kept on the result, and on a `DeliveryError` of kind `http`). */
  readBody?: boolean;
  /** Aborts the call (activity cancellation); the abort error is rethrown as it is, not as a `DeliveryError`. */
  signal?: AbortSignal;
  fetch?: typeof globalThis.fetch;
  /** Clock of `webhook-timestamp`. */
  now?: () => Date;
}

/**
 * POSTs a JSON body once (or sends it with `request.method`; a `GET` without it), without following redirects (a redirect would replay credentials to wherever it points),
 * signed when a signer is given, and logs the outcome: INFO `{what} delivered: HTTP {status}`, WARN
 * `{what} failed: {reason}` with the URL logged as origin and path only; header values are never logged.
 * @returns the 2xx status (and the body when `readBody`).
 * @throws DeliveryError: 5xx, 408, 429, network errors and timeouts are retryable (`retryAfterMs` from
 *   `Retry-After`); other answers, redirects included, and invalid header values are not.
 */
export async function postJson(request: JsonPost): Promise<{ status: number; body?: string }> {
  const { url, body, signer, timeoutMs, logger, what } = request;
  const fields = { ...request.logFields, url: urlForLogs(url) };
  const fail = (reason: string, details: ConstructorParameters<typeof DeliveryError>[1]): never => {
    const message = `${what} failed: ${reason}`;
    logger.warn(
      {
        ...fields,
        kind: details.kind,
        retryable: details.retryable,
        ...(details.status !== undefined && { status: details.status }),
        ...(details.retryAfterMs !== undefined && { retryAfterMs: details.retryAfterMs }),
        ...(details.code !== undefined && { code: details.code }),
      },
      message,
    );
    throw new DeliveryError(message, details);
  };

  const method = request.method ?? 'POST';
  const sendsBody = method !== 'GET';
  // The active span's traceparent (an activity's, from the tracing interceptor) continues the trace; an explicit
  // one in `request.headers` (a saga command's metadata) wins. Nothing is added when no span is active.
  const traceparent = activeTraceparent();
  const headers: Record<string, string> = {
    ...(sendsBody && { 'Content-Type': 'application/json' }),
    ...(traceparent && { traceparent }),
    ...request.headers,
  };
  for (const [name, value] of Object.entries(headers)) {
    // Checked here so that a bad value is not mistaken for a network error; the value itself is never quoted.
    if (!HEADER_VALUE.test(value)) {
      return fail(`header ${name} must be non-empty visible ASCII`, { kind: 'invalid', retryable: false });
    }
  }
  if (signer) {
    const id = request.messageId ?? '';
    if (!HEADER_VALUE.test(id)) {
      return fail('webhook-id must be non-empty visible ASCII', { kind: 'invalid', retryable: false });
    }
    Object.assign(headers, signatureHeaders(signer, id, (request.now ?? (() => new Date()))(), body));
  }

  let response: Response;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    response = await (request.fetch ?? globalThis.fetch)(url, {
      method,
      headers,
      ...(sendsBody && { body }),
      redirect: 'manual',
      signal: request.signal ? AbortSignal.any([request.signal, timeout]) : timeout,
    });
  } catch (error) {
    // The caller's own abort (activity cancellation) is not a delivery failure: it surfaces as it is.
    if (request.signal?.aborted) throw error;
    if (timeout.aborted) {
      return fail(`timed out after ${durationText(timeoutMs)}`, {
        kind: 'timeout',
        retryable: true,
        code: 'ETIMEDOUT',
        cause: error,
      });
    }
    const { reason, code } = describeFetchError(error);
    return fail(`network error (${reason})`, { kind: 'network', retryable: true, code, cause: error });
  }
  let text: string | undefined;
  if (request.readBody) text = await response.text().catch(() => '');
  else await response.body?.cancel().catch(() => undefined); // release the connection
  const status = response.status;
  if (status >= 200 && status < 300) {
    logger[request.successLevel ?? 'info']({ ...fields, status }, `${what} delivered: HTTP ${status}`);
    return { status, ...(text !== undefined && { body: text }) };
  }
  return fail(status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`, {
    kind: 'http',
    status,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    body: text,
  });
}

/**
 * The activity failure of a failed delivery: a final one (a refusal, or the last allowed attempt) is non-retryable
 * with `finalType`; otherwise Temporal retries it as `retryType`, after the delay the peer asked for with Retry-After
 * when it did (else `defaultRetryDelayMs` when given). Anything that is not a `DeliveryError` is rethrown as it is (a bug, or cancellation).
 */
export function deliveryFailure(
  error: unknown,
  options: {
    finalType: string;
    retryType: string;
    /** Makes even a retryable failure final (the caller's attempt budget is spent). */
    final?: boolean;
    /** Replaces the error's message. */
    message?: string;
    details?: unknown[];
    /** Delay of the next attempt when the peer asked for none (the caller's own backoff; else Temporal's). */
    defaultRetryDelayMs?: number;
  },
): ApplicationFailure {
  if (!(error instanceof DeliveryError)) throw error;
  const retryable = error.retryable && !options.final;
  const delay = error.retryAfterMs ?? options.defaultRetryDelayMs;
  return ApplicationFailure.create({
    message: options.message ?? error.message,
    type: retryable ? options.retryType : options.finalType,
    nonRetryable: !retryable,
    ...(options.details ? { details: options.details } : {}),
    ...(retryable && delay !== undefined ? { nextRetryDelay: delay } : {}),
  });
}
