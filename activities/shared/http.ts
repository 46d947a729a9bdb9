/** HTTP helpers shared by every activity that calls out: retry classification, Retry-After, loopback hosts. */
import { ApplicationFailure } from '@temporalio/activity';
import type { Webhook } from 'standardwebhooks';

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

/** Whether `hostname` (as `URL` normalises it) is a loopback host: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The activity failure of a failed outbound call: a final one (a refusal) is non-retryable with `finalType`; otherwise
 * Temporal retries it as `retryType`, after the delay the peer asked for with Retry-After when it did.
 */
export function outboundFailure(
  message: string,
  options: {
    retryable: boolean;
    retryAfterMs?: number | undefined;
    finalType: string;
    retryType: string;
    details?: unknown[];
  },
): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: options.retryable ? options.retryType : options.finalType,
    nonRetryable: !options.retryable,
    ...(options.details ? { details: options.details } : {}),
    ...(options.retryable && options.retryAfterMs !== undefined ? { nextRetryDelay: options.retryAfterMs } : {}),
  });
}

/** Visible ASCII (and tab): what a header value may hold. */
export const HEADER_VALUE = /^[\t\x20-\x7e]+$/;

/** Outcome of one POST: the 2xx status, or why it failed and whether trying again can help. */
export type PostOutcome =
  | { ok: true; status: number }
  | {
      ok: false;
      kind: 'http' | 'timeout' | 'network';
      retryable: boolean;
      /** HTTP status (kind `http`). */
      status?: number;
      retryAfterMs?: number;
      /** Socket error code (kind `network`) or `ETIMEDOUT`. */
      code?: string;
      /** The network error's cause, never the request (which may carry credentials). */
      reason?: string;
      cause?: unknown;
    };

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

/**
 * POSTs once without following redirects (a redirect would replay credentials to wherever it points) and classifies
 * the outcome: 5xx, 408, 429, network errors and timeouts are retryable; other answers are final. The answer's body
 * is discarded. Callers word and log the failure.
 */
export async function postOnce(
  url: URL,
  init: { headers: Record<string, string>; body: string; timeoutMs: number; fetch?: typeof globalThis.fetch },
): Promise<PostOutcome> {
  let response: Response;
  try {
    response = await (init.fetch ?? globalThis.fetch)(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(init.timeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      return { ok: false, kind: 'timeout', retryable: true, code: 'ETIMEDOUT', cause: error };
    }
    return { ok: false, kind: 'network', retryable: true, ...describeFetchError(error), cause: error };
  }
  await response.body?.cancel().catch(() => undefined); // release the connection
  const status = response.status;
  if (status >= 200 && status < 300) return { ok: true, status };
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
  return {
    ok: false,
    kind: 'http',
    status,
    retryable: isRetryableStatus(status),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  };
}

/** Standard Webhooks headers signing `body` as message `id` at `at`. */
export function signatureHeaders(signer: Webhook, id: string, at: Date, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signer.sign(id, at, body),
  };
}
