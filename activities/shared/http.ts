/** HTTP helpers shared by every activity that calls out: retry classification, Retry-After, loopback hosts. */
import { ApplicationFailure } from '@temporalio/activity';

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
