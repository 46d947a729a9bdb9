/**
 * Completion webhook of policy simulations: configuration (environment variables and the original scheduler's JSON
 * shape) and the sender that POSTs a `CompletionPayload` to the configured endpoint.
 *
 * Contract (receivers rely on it): `POST` with `Content-Type: application/json`, `X-StellaOps-Tenant`,
 * `X-StellaOps-Run-Id` (receivers dedupe on it), the configured API-key header when set and, when a signing secret is
 * configured, the Standard Webhooks headers `webhook-id` (the run id, stable across retries), `webhook-timestamp` and
 * `webhook-signature`. The sender throws a `WebhookDeliveryError` carrying `retryable`; retrying is the caller's job.
 */
import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import type { Logger } from '../../core/logger.js';
import type { CompletionPayload } from '../../workflows/policy-simulation/definitions.js';
import { HEADER_VALUE, isLoopbackHost, postOnce, signatureHeaders } from '../shared/http.js';

/** Validated configuration of the completion webhook. */
export interface WebhookConfig {
  /** Whether completions are POSTed at all (default false). */
  enabled: boolean;
  /** Absolute HTTPS URL (plain HTTP only for loopback hosts); required when enabled. */
  endpoint?: URL;
  /** Name of the header carrying `apiKey`; set together with `apiKey`. */
  apiKeyHeader?: string;
  /** Value of the API-key header; never logged. */
  apiKey?: string;
  /** Timeout of one delivery attempt in seconds, 1..300 (default 10). */
  timeoutSeconds: number;
  /** Standard Webhooks secret (`whsec_` + base64); when set, deliveries are signed. Never logged. */
  signingSecret?: string;
  /** Delivery attempts the caller makes before giving up, 1..20 (default 5). */
  maxAttempts: number;
}

/** Default timeout of one delivery attempt, in seconds. */
export const DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10;
/** Default number of delivery attempts. */
export const DEFAULT_WEBHOOK_MAX_ATTEMPTS = 5;

/** An invalid webhook configuration; `problems` names every invalid setting (values of secrets are never quoted). */
export class WebhookConfigError extends Error {
  override name = 'WebhookConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid policy webhook configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Reads a text file; `fs.readFileSync` by default (injectable for tests). */
export type ReadTextFile = (path: string, encoding: 'utf8') => string;

/** Headers the sender sets itself: an API-key header may not reuse their names. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'x-stellaops-tenant',
  'x-stellaops-run-id',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);
/** RFC 9110 `token`: the valid characters of a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const FILE_SECTION = 'Scheduler:Worker:Policy:Webhook';

/** One setting: its environment variable and its key in the scheduler JSON file. */
interface Setting {
  env: string;
  key: string;
}
const SETTINGS = {
  enabled: { env: 'POLICY_WEBHOOK_ENABLED', key: 'Enabled' },
  endpoint: { env: 'POLICY_WEBHOOK_ENDPOINT', key: 'Endpoint' },
  apiKeyHeader: { env: 'POLICY_WEBHOOK_API_KEY_HEADER', key: 'ApiKeyHeader' },
  apiKey: { env: 'POLICY_WEBHOOK_API_KEY', key: 'ApiKey' },
  timeoutSeconds: { env: 'POLICY_WEBHOOK_TIMEOUT_SECONDS', key: 'TimeoutSeconds' },
  signingSecret: { env: 'POLICY_WEBHOOK_SIGNING_SECRET', key: 'SigningSecret' },
  maxAttempts: { env: 'POLICY_WEBHOOK_MAX_ATTEMPTS', key: 'MaxAttempts' },
} as const satisfies Record<string, Setting>;
type SettingName = keyof typeof SETTINGS;

/** A raw value and where it came from, for messages that name the setting. */
interface RawValue {
  value: unknown;
  source: string;
}

/** Reads the `Scheduler.Worker.Policy.Webhook` section of the scheduler's JSON file. */
function readFileSection(
  path: string,
  readFile: ReadTextFile,
  problems: string[],
): Partial<Record<SettingName, RawValue>> {
  let document: unknown;
  try {
    document = JSON.parse(readFile(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    problems.push(
      `POLICY_WEBHOOK_CONFIG_FILE ${reason} ("${path}": ${error instanceof Error ? error.message : String(error)})`,
    );
    return {};
  }
  let section: unknown = document;
  for (const key of ['Scheduler', 'Worker', 'Policy', 'Webhook']) {
    section =
      section !== null && typeof section === 'object' && !Array.isArray(section)
        ? (section as Record<string, unknown>)[key]
        : undefined;
  }
  if (section === undefined) return {};
  if (section === null || typeof section !== 'object' || Array.isArray(section)) {
    problems.push(`${FILE_SECTION} in POLICY_WEBHOOK_CONFIG_FILE ("${path}") must be an object`);
    return {};
  }
  const values: Partial<Record<SettingName, RawValue>> = {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const value = (section as Record<string, unknown>)[setting.key];
    if (value !== undefined && value !== null) values[name] = { value, source: `${FILE_SECTION}:${setting.key}` };
  }
  return values;
}

/**
 * Reads and validates the completion-webhook configuration.
 *
 * Sources, lowest precedence first: the JSON file named by `POLICY_WEBHOOK_CONFIG_FILE` (the original scheduler's
 * shape `{ "Scheduler": { "Worker": { "Policy": { "Webhook": { "Enabled", "Endpoint", "ApiKeyHeader", "ApiKey",
 * "TimeoutSeconds" } } } } }`, plus optional `SigningSecret` and `MaxAttempts`), then the environment variables
 * `POLICY_WEBHOOK_ENABLED`, `POLICY_WEBHOOK_ENDPOINT`, `POLICY_WEBHOOK_API_KEY_HEADER`, `POLICY_WEBHOOK_API_KEY`,
 * `POLICY_WEBHOOK_TIMEOUT_SECONDS`, `POLICY_WEBHOOK_SIGNING_SECRET` and `POLICY_WEBHOOK_MAX_ATTEMPTS` (an empty
 * variable counts as unset). Defaults: disabled, 10 s timeout, 5 attempts.
 *
 * Every value that is set is validated; the endpoint is required only when enabled.
 * @throws WebhookConfigError listing every invalid setting.
 */
export function loadWebhookConfig(env: NodeJS.ProcessEnv, readFile: ReadTextFile = readFileSync): WebhookConfig {
  const problems: string[] = [];

  const configFile = env.POLICY_WEBHOOK_CONFIG_FILE?.trim();
  const raw: Partial<Record<SettingName, RawValue>> = configFile ? readFileSection(configFile, readFile, problems) : {};
  for (const [name, setting] of Object.entries(SETTINGS) as [SettingName, Setting][]) {
    const value = env[setting.env];
    if (value !== undefined && value.trim() !== '') raw[name] = { value, source: setting.env };
  }

  const bool = (name: SettingName, fallback: boolean): boolean => {
    const entry = raw[name];
    if (!entry) return fallback;
    if (typeof entry.value === 'boolean') return entry.value;
    if (typeof entry.value === 'string') {
      const text = entry.value.trim().toLowerCase();
      if (text === 'true') return true;
      if (text === 'false') return false;
    }
    problems.push(`${entry.source} must be true or false (got ${JSON.stringify(entry.value)})`);
    return fallback;
  };
  const int = (name: SettingName, fallback: number, min: number, max: number): number => {
    const entry = raw[name];
    if (!entry) return fallback;
    const value =
      typeof entry.value === 'number'
        ? entry.value
        : typeof entry.value === 'string'
          ? Number(entry.value.trim())
          : NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(
        `${entry.source} must be an integer between ${min} and ${max} (got ${JSON.stringify(entry.value)})`,
      );
      return fallback;
    }
    return value;
  };
  /** Settings already reported as having the wrong type. */
  const mistyped = new Set<SettingName>();
  /** A string setting (blank counts as unset); `secret` keeps the value out of messages. */
  const str = (name: SettingName, secret = false): string | undefined => {
    const entry = raw[name];
    if (!entry) return undefined;
    if (typeof entry.value !== 'string') {
      mistyped.add(name);
      problems.push(`${entry.source} must be a string${secret ? '' : ` (got ${JSON.stringify(entry.value)})`}`);
      return undefined;
    }
    const value = entry.value.trim();
    return value === '' ? undefined : value;
  };
  const sourceOf = (name: SettingName): string =>
    raw[name]?.source ?? `${SETTINGS[name].env} (${FILE_SECTION}:${SETTINGS[name].key})`;

  const enabled = bool('enabled', false);
  const timeoutSeconds = int('timeoutSeconds', DEFAULT_WEBHOOK_TIMEOUT_SECONDS, 1, 300);
  const maxAttempts = int('maxAttempts', DEFAULT_WEBHOOK_MAX_ATTEMPTS, 1, 20);

  let endpoint: URL | undefined;
  const rawEndpoint = str('endpoint');
  if (rawEndpoint === undefined) {
    if (enabled && !mistyped.has('endpoint'))
      problems.push(`${sourceOf('endpoint')} is required when the webhook is enabled`);
  } else {
    let url: URL | undefined;
    try {
      url = new URL(rawEndpoint);
    } catch {
      problems.push(`${sourceOf('endpoint')} must be an absolute URL (got "${rawEndpoint}")`);
    }
    if (url) {
      if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
        endpoint = url;
      } else if (url.protocol === 'http:') {
        problems.push(
          `${sourceOf('endpoint')} must use https (plain http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost; got host "${url.hostname}")`,
        );
      } else {
        problems.push(`${sourceOf('endpoint')} must be an https URL (got protocol "${url.protocol}")`);
      }
    }
  }

  const apiKeyHeader = str('apiKeyHeader');
  const apiKey = str('apiKey', true);
  if (apiKeyHeader !== undefined) {
    if (!HEADER_NAME.test(apiKeyHeader)) {
      problems.push(`${sourceOf('apiKeyHeader')} must be a valid HTTP header name (got "${apiKeyHeader}")`);
    } else if (RESERVED_HEADERS.has(apiKeyHeader.toLowerCase())) {
      problems.push(`${sourceOf('apiKeyHeader')} must not be a header the webhook sets itself (got "${apiKeyHeader}")`);
    }
  }
  if (apiKey !== undefined && !HEADER_VALUE.test(apiKey)) {
    problems.push(`${sourceOf('apiKey')} must be printable ASCII (it is sent as a header value)`);
  }
  if (
    (apiKeyHeader === undefined) !== (apiKey === undefined) &&
    !mistyped.has('apiKeyHeader') &&
    !mistyped.has('apiKey')
  ) {
    problems.push(
      apiKeyHeader === undefined
        ? `${sourceOf('apiKeyHeader')} is required when ${sourceOf('apiKey')} is set`
        : `${sourceOf('apiKey')} is required when ${sourceOf('apiKeyHeader')} is set`,
    );
  }

  const signingSecret = str('signingSecret', true);
  if (signingSecret !== undefined) {
    try {
      new Webhook(signingSecret);
    } catch {
      problems.push(
        `${sourceOf('signingSecret')} must be a Standard Webhooks secret: "whsec_" followed by non-empty base64`,
      );
    }
  }

  if (problems.length > 0) throw new WebhookConfigError(problems);
  return {
    enabled,
    ...(endpoint && { endpoint }),
    ...(apiKeyHeader !== undefined && apiKey !== undefined && { apiKeyHeader, apiKey }),
    timeoutSeconds,
    ...(signingSecret !== undefined && { signingSecret }),
    maxAttempts,
  };
}

/** Result of one delivery: delivered with the receiver's HTTP status, or skipped because the webhook is disabled. */
export type WebhookOutcome = { delivered: true; status: number } | { delivered: false; skipped: 'disabled' };

/** Why a delivery failed. */
export type WebhookFailureKind = 'http' | 'timeout' | 'network' | 'config';

/**
 * A failed delivery. `retryable` is false for 4xx answers other than 408 and 429 (and for redirects and a missing
 * endpoint); true for 5xx, 408, 429, network errors and timeouts. `retryAfterMs` reflects a `Retry-After` header.
 */
export class WebhookDeliveryError extends Error {
  override name = 'WebhookDeliveryError';
  readonly kind: WebhookFailureKind;
  readonly retryable: boolean;
  /** HTTP status of the receiver's answer (kind `http`). */
  readonly status?: number;
  /** Delay the receiver asked for with `Retry-After`, in milliseconds. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    details: { kind: WebhookFailureKind; retryable: boolean; status?: number; retryAfterMs?: number; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = details.kind;
    this.retryable = details.retryable;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}

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
   * @throws WebhookDeliveryError on a network error, a timeout or a non-2xx answer.
   */
  send(payload: CompletionPayload, jobId: string): Promise<WebhookOutcome>;
}

/**
 * Creates the completion-webhook sender. The API key and the signing secret never reach the logs; the endpoint is
 * logged without credentials, query or fragment.
 */
export function createWebhookSender({
  config,
  logger,
  fetch = globalThis.fetch,
  now = () => new Date(),
}: WebhookSenderDeps): WebhookSender {
  const signer = config.enabled && config.signingSecret !== undefined ? new Webhook(config.signingSecret) : undefined;
  const endpointForLogs = config.endpoint ? `${config.endpoint.origin}${config.endpoint.pathname}` : undefined;

  return {
    async send(payload, jobId) {
      const runId = payload.simulation.runId;
      const fields = { jobId, tenantId: payload.tenantId, runId, endpoint: endpointForLogs };

      if (!config.enabled) {
        logger.debug(fields, `Policy run job ${jobId} completion webhook skipped: webhook disabled`);
        return { delivered: false, skipped: 'disabled' };
      }

      const fail = (reason: string, details: ConstructorParameters<typeof WebhookDeliveryError>[1]): never => {
        const message = `Policy run job ${jobId} completion webhook failed: ${reason}`;
        logger.warn(
          {
            ...fields,
            kind: details.kind,
            retryable: details.retryable,
            ...(details.status !== undefined && { status: details.status }),
            ...(details.retryAfterMs !== undefined && { retryAfterMs: details.retryAfterMs }),
          },
          message,
        );
        throw new WebhookDeliveryError(message, details);
      };

      if (!config.endpoint) return fail('no endpoint configured', { kind: 'config', retryable: false });

      const body = JSON.stringify(payload);
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'X-StellaOps-Tenant': payload.tenantId,
        'X-StellaOps-Run-Id': runId,
      };
      if (config.apiKeyHeader !== undefined && config.apiKey !== undefined)
        headers[config.apiKeyHeader] = config.apiKey;
      if (signer) Object.assign(headers, signatureHeaders(signer, runId, now(), body));

      const outcome = await postOnce(config.endpoint, {
        headers,
        body,
        timeoutMs: config.timeoutSeconds * 1000,
        fetch,
      });
      if (outcome.ok) {
        logger.info(
          { ...fields, status: outcome.status },
          `Policy run job ${jobId} completion webhook delivered: HTTP ${outcome.status}`,
        );
        return { delivered: true, status: outcome.status };
      }
      const { kind, status, retryable, retryAfterMs, reason, cause } = outcome;
      if (kind === 'timeout') return fail(`timed out after ${config.timeoutSeconds}s`, { kind, retryable, cause });
      if (kind === 'network') return fail(`network error (${reason})`, { kind, retryable, cause });
      return fail(`HTTP ${status}`, {
        kind,
        retryable,
        ...(status !== undefined && { status }),
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      });
    },
  };
}
