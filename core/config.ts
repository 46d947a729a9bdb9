/**
 * Configuration: environment variables validated once at start-up, with messages that name the variable.
 * Every variable is documented in the README's configuration table.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { parse as parseYaml } from 'yaml';
import {
  checkOutboundUrl,
  HEADER_NAME,
  HEADER_VALUE,
  UrlPolicyViolation,
} from '../activities/shared/outbound-policy.js';
import { ID_PATTERN } from '../workflows/shared/schemas.js';
import {
  loadTemporalConnectionSettings,
  temporalConnectionOptions,
  type TemporalConnectionOptions,
  type TemporalTlsSettings,
} from './temporal-connection.js';
import type { PayloadCodecKey } from './payload-codec.js';

/** The task queues of the product: one per capability (sagas to come), plus `effects`. */
export const TASK_QUEUES = ['policy-simulation', 'pack-approval', 'saga', 'effects'] as const;
export type TaskQueueName = (typeof TASK_QUEUES)[number];
/** Queues that host workflows (the `effects` queue hosts effect activities only). */
export const WORKFLOW_TASK_QUEUES = ['policy-simulation', 'pack-approval', 'saga'] as const satisfies TaskQueueName[];

/** Validated configuration of one process. */
export interface AppConfig {
  env: 'development' | 'test' | 'production';
  logLevel: string;
  dataDir: string;
  temporal: {
    /**
     * External server address (`TEMPORAL_ADDRESS` or the `temporal.toml` profile's); undefined means "start the
     * embedded dev server".
     */
    address: string | undefined;
    namespace: string;
    /** TLS of the connection (`TEMPORAL_TLS*` or the profile's `tls`); undefined connects in plaintext. */
    tls?: TemporalTlsSettings | undefined;
    /** `TEMPORAL_API_KEY` (Temporal Cloud); a secret, never logged. */
    apiKey?: string | undefined;
    /** gRPC metadata sent with every call (`TEMPORAL_GRPC_META_*`). */
    metadata?: Record<string, string> | undefined;
    devPort: number;
    uiPort: number;
    /** Bind address of the embedded dev server (and its UI). */
    devIp: string;
  };
  database: {
    /**
     * External connection string of the application role (API and workers); undefined means "start embedded
     * Postgres".
     */
    url: string | undefined;
    /**
     * External connection string of the owner role that runs migrations; undefined means "the same role as `url`"
     * (one role for everything, as before the split) or, embedded, the local owner role.
     */
    migrationUrl?: string;
    embeddedPort: number;
    poolMax: number;
  };
  api: { host: string; port: number };
  worker: {
    /** `WORKER_MODE`: the Runner's saga/effect/combined modes, mapped onto task queues and the bridge. */
    mode: WorkerMode;
    /** The task queues this process polls: the mode's, narrowed by `WORKER_QUEUES`. */
    queues: TaskQueueName[];
    /** The operations port (`/health`, `/ready`, `/metrics`, `/info`, `/admin/*`); 0 picks a free port. */
    opsHost: string;
    opsPort: number;
    /** Seconds in-flight work gets to finish on SIGTERM or drain before it is cancelled. */
    shutdownGraceSeconds: number;
    /**
     * Loopback port of the Temporal SDK's Prometheus exporter (`WORKER_SDK_METRICS_PORT`), which `/metrics` reads and
     * serves; undefined or 0: a free port chosen at start.
     */
    sdkMetricsPort?: number;
  };
  auth: {
    issuer: string;
    audience: string;
    /** PEM (SPKI) public key used to verify tokens. */
    publicKeyPem: string | undefined;
    /** JWKS URL used to verify tokens. */
    jwksUrl: string | undefined;
    /** Use the key pair generated under `dataDir` (local runs only). */
    useLocalKey: boolean;
    /** Longest accepted token lifetime (`exp - iat`) in seconds; 0: no limit (`exp` is required regardless). */
    maxTokenLifetimeSeconds: number;
  };
  selfCheck: { tenantId: string };
  policyEngine: {
    /** External Policy Engine; undefined means "run the reference engine" (npm start). */
    url: string | undefined;
    /** Port of the reference engine started by `npm start`. */
    embeddedPort: number;
  };
  packApprovals: {
    /** Base URL of this API as approvers reach it (approval links). */
    publicBaseUrl: string;
    /** HMAC secrets of inbound Task Runner events (several for rotation); undefined → local generated secret. */
    eventSecrets: string[] | undefined;
    /** Secret of approval-link and resume tokens; undefined → local generated secret. */
    linkSecret: string | undefined;
    /** CIDRs allowed to post events; empty → any. */
    ipAllowlist: string[];
    /** Events per tenant per minute before 429. */
    rateLimitPerMinute: number;
    reminderOffsetsSeconds: number[];
    defaultTtlSeconds: number;
    defaultLocale: string;
    /** Recipients of tenants without routing rules. */
    defaultRecipients: string[];
    retentionDays: number;
    smtpUrl: string | undefined;
    mailFrom: string;
    /** Where mail goes when no SMTP server is configured (a local inbox of .eml files). */
    inboxDir: string;
    /** Standard Webhooks secret of outbound notification webhooks. */
    webhookSigningSecret: string | undefined;
    /** Standard Webhooks secret of Task Runner resume callbacks. */
    taskRunnerSigningSecret: string | undefined;
  };
  sagas: {
    /** External Gateway aggregates take commands at; undefined means "run the reference services" (npm start). */
    gatewayUrl: string | undefined;
    /** Port of the reference services (Gateway and the sample sagas' providers) started by `npm start`. */
    referenceServicesPort: number;
    /**
     * Bearer token (scope `Runner.Events:Write`) the reference Gateway posts its events with when the API verifies
     * tokens of an external issuer; undefined → tokens from the local key, or no events without one.
     */
    referenceServicesToken: string | undefined;
    /** Delay before a rescan requested at the reference Gateway completes, in milliseconds. */
    referenceServicesScanDelayMs: number;
    /** Whether the reference services take fault injections (`PUT /control/faults`). */
    referenceServicesFaults: boolean;
    /** Effects manifest (JSON or YAML); undefined means the bundled one for the reference services. */
    effectsManifestPath: string | undefined;
    /** Effect and Gateway-command activities one worker runs at once. */
    effectsConcurrency: number;
  };
  nats: {
    /**
     * Servers of an existing NATS deployment (`nats://` or `tls://` URLs, comma-separated); undefined means "start the
     * embedded nats-server" (npm start).
     */
    url: string | undefined;
    /** Credentials file (JWT and NKey seed) of the existing deployment; only with `url`. */
    credentialsFile: string | undefined;
    /** Port of the embedded nats-server (loopback only). */
    embeddedPort: number;
    /** Create the streams when they are missing (local runs); otherwise a missing stream stops the start. */
    createStreams: boolean;
    /** The stream aggregates publish their events to: subjects `{prefix}.{tenant}.{aggregateType}.{eventType}`. */
    aggregateStream: NatsStreamConfig;
    /** The stream effect results and saga facts are published to. */
    workflowStream: NatsStreamConfig;
    /** The JetStream → sagas bridge (durable pull consumer on the aggregate stream). */
    bridge: NatsBridgeConfig;
    /** Whether activities publish effect results, saga facts and approval decisions to the workflow stream. */
    egress: boolean;
  };
  simulations: {
    /** The completion webhook (`POLICY_WEBHOOK_*`, or the scheduler JSON file). */
    webhook: WebhookConfig;
    /** Number of most recent terminal runs the latency percentiles cover. */
    metricsWindow: number;
    /** Overall evaluation timeout of a run, in seconds. */
    evaluationTimeoutSeconds: number;
  };
  /** OpenTelemetry tracing; off (no SDK, no interceptors) unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. */
  otel: OtelConfig;
  /** Encryption of Temporal payloads and the codec endpoint that decodes them for the Web UI. */
  payloadCodec: PayloadCodecConfig;
}

/** Settings of the payload codec (AES-256-GCM encryption of every Temporal payload). */
export interface PayloadCodecConfig {
  /**
   * `PAYLOAD_CODEC_KEYS` or `PAYLOAD_CODEC_KEYS_FILE`, oldest first: the last one encrypts, every one decrypts;
   * undefined: the key generated under `dataDir` (local runs only). Secrets, never logged.
   */
  keys: PayloadCodecKey[] | undefined;
  /** `CODEC_CORS_ORIGINS`: browser origins the codec endpoint answers (the Web UI's); default the embedded UI's. */
  corsOrigins: string[];
  /**
   * `CODEC_TRUST_LOCAL_UI`: the codec endpoint trusts the embedded Web UI without a token; undefined when unset, which
   * `npm start` turns on (an explicit `false` keeps it off) and everything else takes as off.
   */
  trustLocalUi: boolean | undefined;
}

/** Length in bytes of an AES-256 key. */
export const PAYLOAD_CODEC_KEY_BYTES = 32;
/** What a payload codec key id is made of (it travels in every encrypted payload's metadata). */
export const PAYLOAD_CODEC_KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Parses one `keyId:base64key` entry into a codec key, or says what is wrong with it, never quoting the key material
 * (a malformed entry is not quoted at all: where the id ends is unknown).
 */
export function parsePayloadCodecKey(entry: string): PayloadCodecKey | { problem: string } {
  const colon = entry.indexOf(':');
  if (colon < 0) return { problem: 'must be keyId:base64key' };
  const id = entry.slice(0, colon).trim();
  const encoded = entry.slice(colon + 1).trim();
  if (!PAYLOAD_CODEC_KEY_ID_PATTERN.test(id)) {
    return { problem: "must start with a key id of 1 to 64 letters, digits, '.', '_' or '-' before the ':'" };
  }
  // Buffer.from ignores what is not base64: a strict check, so a typo is not a silently shorter key.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    return { problem: `(key id "${id}") must have a base64 key after the ':'` };
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== PAYLOAD_CODEC_KEY_BYTES) {
    return {
      problem: `(key id "${id}") must have a key of exactly ${PAYLOAD_CODEC_KEY_BYTES} bytes (got ${key.length})`,
    };
  }
  return { id, key };
}

/** Reads the payload codec settings, recording every problem (naming the variable, never a key) in `problems`. */
function payloadCodecConfigOf(
  env: NodeJS.ProcessEnv,
  readFile: ReadTextFile,
  problems: string[],
  settings: { nodeEnv: string; uiPort: number },
): PayloadCodecConfig {
  const { optional } = readers(env, problems);
  const inline = optional('PAYLOAD_CODEC_KEYS');
  const fileVariable = optional('PAYLOAD_CODEC_KEYS_FILE');
  const file = fileVariable && resolve(fileVariable);
  let keys: PayloadCodecKey[] | undefined;
  if (inline && file) {
    problems.push('PAYLOAD_CODEC_KEYS and PAYLOAD_CODEC_KEYS_FILE exclude each other: set one');
  } else if (inline || file) {
    const source = inline ? 'PAYLOAD_CODEC_KEYS' : `PAYLOAD_CODEC_KEYS_FILE ("${file}")`;
    const before = problems.length;
    let entries: { entry: string; where: string }[] = [];
    if (inline) {
      entries = inline
        .split(',')
        .map((entry, i) => ({ entry: entry.trim(), where: `entry ${i + 1}` }))
        .filter(({ entry }) => entry !== '');
    } else {
      try {
        entries = readFile(file!, 'utf8')
          .split(/\r?\n/)
          .map((line, i) => ({ entry: line.trim(), where: `line ${i + 1}` }))
          .filter(({ entry }) => entry !== '' && !entry.startsWith('#'));
      } catch (error) {
        problems.push(`${source} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    const parsed: PayloadCodecKey[] = [];
    for (const { entry, where } of entries) {
      const key = parsePayloadCodecKey(entry);
      if ('problem' in key) problems.push(`${source}: ${where} ${key.problem}`);
      else if (parsed.some((other) => other.id === key.id)) {
        problems.push(`${source}: ${where} repeats the key id "${key.id}" (each key needs its own id)`);
      } else parsed.push(key);
    }
    if (problems.length === before && parsed.length === 0) problems.push(`${source} lists no key`);
    keys = parsed;
  }
  if (settings.nodeEnv === 'production' && !inline && !file) {
    problems.push(
      'NODE_ENV=production needs PAYLOAD_CODEC_KEYS or PAYLOAD_CODEC_KEYS_FILE: the generated local key is for local runs only',
    );
  }

  const rawOrigins = optional('CODEC_CORS_ORIGINS');
  let corsOrigins: string[] =
    settings.nodeEnv === 'production'
      ? []
      : [`http://127.0.0.1:${settings.uiPort}`, `http://localhost:${settings.uiPort}`];
  if (rawOrigins !== undefined) {
    corsOrigins = [];
    for (const raw of rawOrigins.split(',').map((origin) => origin.trim())) {
      const url = URL.canParse(raw) ? new URL(raw) : undefined;
      // An origin is scheme, host and port: the browser sends exactly that, so anything more would never match.
      if (
        !url ||
        !['http:', 'https:'].includes(url.protocol) ||
        url.pathname !== '/' ||
        url.search !== '' ||
        url.hash !== '' ||
        url.username !== '' ||
        url.password !== '' ||
        raw.endsWith('?') ||
        raw.endsWith('#')
      ) {
        problems.push(
          `CODEC_CORS_ORIGINS must list http(s) origins without a path, e.g. https://ui.example (got "${raw}")`,
        );
      } else corsOrigins.push(url.origin);
    }
  }

  const rawTrust = optional('CODEC_TRUST_LOCAL_UI')?.toLowerCase();
  const trustLocalUi = rawTrust === undefined ? undefined : rawTrust === 'true';
  if (rawTrust !== undefined && rawTrust !== 'true' && rawTrust !== 'false') {
    problems.push(`CODEC_TRUST_LOCAL_UI must be true or false (got "${env.CODEC_TRUST_LOCAL_UI}")`);
  }
  if (trustLocalUi && settings.nodeEnv === 'production') {
    problems.push('CODEC_TRUST_LOCAL_UI=true is for local runs only: NODE_ENV=production decodes for tokens only');
  }
  return { keys, corsOrigins: [...new Set(corsOrigins)], trustLocalUi };
}

/** Tracing settings: spans exported over OTLP/HTTP when an endpoint is given. */
export interface OtelConfig {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (`/v1/traces` is appended); undefined: tracing off. */
  endpoint: string | undefined;
  /** `OTEL_SERVICE_NAME`: the `service.name` of this process' spans; default `stellaops-workflows`. */
  serviceName: string;
}

/** The modes of a worker process (the Runner's): what it polls and whether it runs the JetStream bridge. */
export const WORKER_MODES = ['saga', 'effect', 'combined'] as const;
export type WorkerMode = (typeof WORKER_MODES)[number];

/** The task queues of each mode: `saga` hosts every workflow queue, `effect` the effect activities only. */
export const WORKER_MODE_QUEUES: Record<WorkerMode, readonly TaskQueueName[]> = {
  saga: WORKFLOW_TASK_QUEUES,
  effect: ['effects'],
  combined: TASK_QUEUES,
};

/** Settings of the JetStream → sagas bridge. */
export interface NatsBridgeConfig {
  /** Whether this process runs the bridge (`NATS_BRIDGE`; only in the saga and combined modes). */
  enabled: boolean;
  /** Durable consumer name, shared by every replica of one shard. */
  durable: string;
  /** Tenants this shard consumes (subject filters per tenant); empty: every tenant. */
  tenants: string[];
  /**
   * The shard's tenant placement file (`NATS_BRIDGE_TENANTS_FILE`), read at start into `tenants` and again on
   * `POST /admin/reload`; undefined: `tenants` come from `NATS_BRIDGE_TENANTS` and stay as started.
   */
  tenantsFile?: string;
  /** Messages delivered and not yet acknowledged, across the replicas of the durable consumer. */
  maxAckPending: number;
  /** Seconds before an unacknowledged message is delivered again (working acks extend it while a call is slow). */
  ackWaitSeconds: number;
  /** Deliveries of one message before it is quarantined and terminated. */
  maxDeliver: number;
  /** Messages one replica pulls per request. */
  batchSize: number;
}

/** A JetStream stream the product publishes to or consumes from. */
export interface NatsStreamConfig {
  name: string;
  /** Subject filters the stream captures. */
  subjects: string[];
}

/** A configuration error; the message lists every invalid variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly problems: string[],
    title = 'Invalid configuration',
  ) {
    super(`${title}:\n  - ${problems.join('\n  - ')}`);
  }
}

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
export class WebhookConfigError extends ConfigError {
  override name = 'WebhookConfigError';
  constructor(problems: string[]) {
    super(problems, 'Invalid policy webhook configuration');
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
  const config = webhookConfigOf(env, readFile, problems);
  if (problems.length > 0) throw new WebhookConfigError(problems);
  return config;
}

/** The completion-webhook section; adds every invalid setting to `problems` (see `loadWebhookConfig`). */
function webhookConfigOf(env: NodeJS.ProcessEnv, readFile: ReadTextFile, problems: string[]): WebhookConfig {
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
    const checked = checkOutboundUrl(rawEndpoint);
    if (checked.ok) endpoint = checked.url;
    else if (checked.violation === UrlPolicyViolation.NotAbsolute)
      problems.push(`${sourceOf('endpoint')} must be an absolute URL (got "${rawEndpoint}")`);
    else problems.push(`${sourceOf('endpoint')} ${checked.problem}`);
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

  return {
    enabled,
    ...(endpoint && { endpoint }),
    ...(apiKeyHeader !== undefined && apiKey !== undefined && { apiKeyHeader, apiKey }),
    timeoutSeconds,
    ...(signingSecret !== undefined && { signingSecret }),
    maxAttempts,
  };
}

const PORT_MAX = 65535;
/** Port of the worker's operations endpoints unless `WORKER_OPS_PORT` says otherwise. */
export const DEFAULT_WORKER_OPS_PORT = 9464;
/** Durable consumer of the bridge unless `NATS_BRIDGE_DURABLE` says otherwise. */
export const DEFAULT_BRIDGE_DURABLE = 'saga-bridge';

/**
 * The tenants of a bridge shard's placement file: JSON or YAML `{ "tenants": ["acme", "globex"] }`, at least one
 * tenant id (an empty list would silently widen the shard to every tenant).
 * @throws ConfigError naming the file and each problem.
 */
export function loadTenantPlacement(path: string, readFile: ReadTextFile = readFileSync): string[] {
  let document: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both.
    document = parseYaml(readFile(path, 'utf8'));
  } catch (error) {
    throw new ConfigError([`${path}: ${(error as Error).message}`], 'Invalid tenant placement');
  }
  const tenants = (document as { tenants?: unknown } | null)?.tenants;
  if (!Array.isArray(tenants) || tenants.length === 0) {
    throw new ConfigError([`${path}: tenants must be a non-empty list of tenant ids`], 'Invalid tenant placement');
  }
  const pattern = new RegExp(ID_PATTERN);
  const problems = tenants.flatMap((tenant, i) =>
    typeof tenant === 'string' && pattern.test(tenant)
      ? []
      : [`${path}: tenants[${i}] must be a tenant id (got ${JSON.stringify(tenant)})`],
  );
  if (problems.length > 0) throw new ConfigError(problems, 'Invalid tenant placement');
  return [...new Set(tenants as string[])];
}

/** Readers of environment variables that record every invalid value in `problems` (blank counts as unset). */
function readers(env: NodeJS.ProcessEnv, problems: string[]) {
  const optional = (name: string): string | undefined => env[name]?.trim() || undefined;
  return {
    /** An integer in `min..max`, else `fallback`. */
    int: (name: string, fallback: number, min: number, max: number): number => {
      const raw = env[name];
      if (raw === undefined || raw === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
        return fallback;
      }
      return value;
    },
    /** A trimmed string, else `fallback`. */
    str: (name: string, fallback: string): string => optional(name) ?? fallback,
    optional,
    /** A comma-separated list. */
    list: (name: string): string[] | undefined =>
      optional(name)
        ?.split(',')
        .map((v) => v.trim())
        .filter(Boolean),
  };
}

/**
 * Why `subject` is not a NATS subject filter, or undefined when it is one: dot-separated non-empty tokens without
 * whitespace, `*` (one token) and `>` (the rest, last only) as whole tokens.
 */
function natsSubjectProblem(subject: string): string | undefined {
  const tokens = subject.split('.');
  for (const [i, token] of tokens.entries()) {
    if (token === '') return 'has an empty token';
    if (/\s/.test(token)) return 'contains whitespace';
    if (token === '>' && i !== tokens.length - 1) return "has '>' before its last token";
    if (token.length > 1 && /[*>]/.test(token)) return "has '*' or '>' inside a token";
  }
  return undefined;
}

/** Whether some subject matches both filters (JetStream refuses streams whose subjects overlap). */
function natsSubjectsOverlap(a: string, b: string): boolean {
  const left = a.split('.');
  const right = b.split('.');
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] === '>' || right[i] === '>') return true;
    if (left[i] !== '*' && right[i] !== '*' && left[i] !== right[i]) return false;
  }
  return left.length === right.length;
}

/**
 * Reads and validates the configuration from environment variables.
 * @throws ConfigError listing every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, readFile: ReadTextFile = readFileSync): AppConfig {
  const problems: string[] = [];
  const { int, str, optional, list } = readers(env, problems);

  const nodeEnv = str('NODE_ENV', 'development');
  if (!['development', 'test', 'production'].includes(nodeEnv)) {
    problems.push(`NODE_ENV must be development, test or production (got "${nodeEnv}")`);
  }

  const rawMode = str('WORKER_MODE', 'combined');
  const mode: WorkerMode = (WORKER_MODES as readonly string[]).includes(rawMode) ? (rawMode as WorkerMode) : 'combined';
  if (mode !== rawMode) problems.push(`WORKER_MODE must be one of ${WORKER_MODES.join(', ')} (got "${rawMode}")`);
  const modeQueues = WORKER_MODE_QUEUES[mode];
  const rawQueues = str('WORKER_QUEUES', 'all');
  let queues: TaskQueueName[] = [...modeQueues];
  if (rawQueues !== 'all') {
    const requested = rawQueues
      .split(',')
      .map((q) => q.trim())
      .filter(Boolean);
    const unknown = requested.filter((q) => !(TASK_QUEUES as readonly string[]).includes(q));
    const outside = requested.filter((q) => !unknown.includes(q) && !modeQueues.includes(q as TaskQueueName));
    if (unknown.length > 0 || requested.length === 0) {
      problems.push(
        `WORKER_QUEUES must be "all" or a comma-separated list of ${TASK_QUEUES.join(', ')} (got "${rawQueues}")`,
      );
    } else if (outside.length > 0) {
      problems.push(
        `WORKER_QUEUES lists ${outside.join(', ')}, which WORKER_MODE=${mode} does not serve ` +
          `(its queues: ${modeQueues.join(', ')})`,
      );
    } else {
      queues = [...new Set(requested)] as TaskQueueName[];
    }
  }

  const databaseUrl = optional('DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// connection string');
  }
  const migrationUrl = optional('DATABASE_MIGRATION_URL');
  if (migrationUrl) {
    if (!/^postgres(ql)?:\/\//.test(migrationUrl)) {
      problems.push('DATABASE_MIGRATION_URL must be a postgres:// or postgresql:// connection string');
    } else if (!databaseUrl) {
      problems.push(
        'DATABASE_MIGRATION_URL needs DATABASE_URL (the application role); the embedded Postgres creates both roles itself',
      );
    } else if (!userOf(migrationUrl)) {
      problems.push('DATABASE_MIGRATION_URL must name its user (the owner role)');
    }
    // Migrations grant the application role by the name DATABASE_URL connects as.
    if (databaseUrl && /^postgres(ql)?:\/\//.test(databaseUrl) && !userOf(databaseUrl)) {
      problems.push('DATABASE_URL must name its user when DATABASE_MIGRATION_URL is set (migrations grant that role)');
    }
  }
  // pg reads a connection string's TLS files only when it first connects: checked here so a bad one stops the start.
  for (const name of ['DATABASE_URL', 'DATABASE_MIGRATION_URL'] as const) {
    problems.push(...databaseTlsFileProblems(name, optional(name), readFile));
  }
  const temporal = loadTemporalConnectionSettings(env, readFile, problems);

  const policyEngineUrl = optional('POLICY_ENGINE_URL');
  if (policyEngineUrl && !/^https?:\/\/[^\s]+$/.test(policyEngineUrl)) {
    problems.push(`POLICY_ENGINE_URL must be an http(s) URL (got "${policyEngineUrl}")`);
  }

  const publicKeyPem = optional('AUTH_JWT_PUBLIC_KEY');
  const jwksUrl = optional('AUTH_JWKS_URL');
  if (jwksUrl && !/^https?:\/\//.test(jwksUrl)) problems.push('AUTH_JWKS_URL must be an http(s) URL');
  if (publicKeyPem && !publicKeyPem.includes('BEGIN PUBLIC KEY')) {
    problems.push('AUTH_JWT_PUBLIC_KEY must be a PEM-encoded SPKI public key (-----BEGIN PUBLIC KEY-----)');
  }
  const useLocalKey = !publicKeyPem && !jwksUrl;
  if (nodeEnv === 'production' && (!optional('PACK_EVENTS_SIGNING_SECRETS') || !optional('APPROVAL_LINK_SECRET'))) {
    problems.push(
      'NODE_ENV=production needs PACK_EVENTS_SIGNING_SECRETS and APPROVAL_LINK_SECRET (local ones are generated only for local runs)',
    );
  }
  if (optional('SMTP_URL') && !/^smtps?:\/\//.test(optional('SMTP_URL')!))
    problems.push('SMTP_URL must be smtp:// or smtps://');
  if (useLocalKey && nodeEnv === 'production') {
    problems.push(
      'NODE_ENV=production needs AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY: the generated local key is for local runs only',
    );
  }

  /** A boolean setting: `true` or `false`, unset → false. */
  const flag = (name: string): boolean => {
    const value = optional(name)?.toLowerCase();
    if (value === undefined || value === 'false') return false;
    if (value === 'true') return true;
    problems.push(`${name} must be true or false (got "${env[name]}")`);
    return false;
  };
  const gatewayUrl = optional('GATEWAY_URL');
  const referenceServicesToken = optional('REFERENCE_SERVICES_TOKEN');
  if (referenceServicesToken !== undefined && !HEADER_VALUE.test(referenceServicesToken)) {
    problems.push('REFERENCE_SERVICES_TOKEN must be printable ASCII (it is sent as a header value)');
  }
  if (gatewayUrl) {
    const checked = checkOutboundUrl(gatewayUrl);
    if (!checked.ok) problems.push(`GATEWAY_URL ${checked.problem}`);
  }

  const natsUrl = optional('NATS_URL');
  if (natsUrl) {
    // The URL parser drops the blanks around each server itself.
    for (const server of natsUrl.split(',')) {
      const url = URL.canParse(server) ? new URL(server) : undefined;
      if (
        !url ||
        !['nats:', 'tls:'].includes(url.protocol) ||
        !url.hostname ||
        url.pathname.replace('/', '') !== '' ||
        url.search !== '' ||
        url.hash !== ''
      ) {
        problems.push('NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs');
        break;
      }
      if (url.username || url.password) {
        problems.push('NATS_URL must not carry credentials (they would show in logs): use NATS_CREDENTIALS_FILE');
        break;
      }
    }
  }
  const natsCredentialsFile = optional('NATS_CREDENTIALS_FILE');
  if (natsCredentialsFile && !natsUrl) {
    problems.push('NATS_CREDENTIALS_FILE needs NATS_URL: the embedded nats-server takes no credentials');
  }
  /** A stream's name and subject filters; `prefixed` wants every filter to be `{prefix}.>`. */
  const natsStream = (
    nameVariable: string,
    defaultName: string,
    subjectsVariable: string,
    defaultSubject: string,
    prefixed: boolean,
  ): NatsStreamConfig => {
    const name = str(nameVariable, defaultName);
    if (!/^[A-Za-z0-9_-]{1,255}$/.test(name)) {
      problems.push(`${nameVariable} must be 1 to 255 letters, digits, '-' or '_' (got "${name}")`);
    }
    const subjects = list(subjectsVariable) ?? [defaultSubject];
    for (const subject of subjects) {
      const problem = natsSubjectProblem(subject);
      if (problem) problems.push(`${subjectsVariable} must list NATS subject filters: "${subject}" ${problem}`);
      else if (prefixed && !subject.endsWith('.>')) {
        problems.push(
          `${subjectsVariable} must list filters of the form {prefix}.> (events are published on ` +
            `{prefix}.{tenant}.{aggregateType}.{eventType}; got "${subject}")`,
        );
      }
    }
    return { name, subjects };
  };
  const aggregateStream = natsStream(
    'NATS_AGGREGATE_STREAM',
    'AGGREGATE_EVENTS',
    'NATS_AGGREGATE_SUBJECTS',
    'aggregate.>',
    true,
  );
  const workflowStream = natsStream(
    'NATS_WORKFLOW_STREAM',
    'WORKFLOW_EVENTS',
    'NATS_WORKFLOW_SUBJECTS',
    'workflow.>',
    false,
  );
  if (aggregateStream.name === workflowStream.name) {
    problems.push(`NATS_AGGREGATE_STREAM and NATS_WORKFLOW_STREAM must differ (both "${aggregateStream.name}")`);
  }
  for (const aggregate of aggregateStream.subjects) {
    const overlapping = workflowStream.subjects.find(
      (workflow) =>
        !natsSubjectProblem(aggregate) && !natsSubjectProblem(workflow) && natsSubjectsOverlap(aggregate, workflow),
    );
    if (overlapping !== undefined) {
      problems.push(
        `NATS_AGGREGATE_SUBJECTS and NATS_WORKFLOW_SUBJECTS must not overlap ("${aggregate}" and "${overlapping}")`,
      );
    }
  }
  // Unset: on for local runs, off in production, where streams are provisioned with their replicas and limits.
  const createStreams =
    optional('NATS_CREATE_STREAMS') === undefined ? nodeEnv !== 'production' : flag('NATS_CREATE_STREAMS');

  // The bridge routes into saga workflows, so only a process of a mode that hosts them runs it.
  const bridgeWanted = optional('NATS_BRIDGE') === undefined ? true : flag('NATS_BRIDGE');
  if (optional('NATS_BRIDGE') !== undefined && bridgeWanted && mode === 'effect') {
    problems.push('NATS_BRIDGE=true needs WORKER_MODE saga or combined (an effect worker hosts no sagas)');
  }
  const bridgeDurable = str('NATS_BRIDGE_DURABLE', DEFAULT_BRIDGE_DURABLE);
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(bridgeDurable)) {
    problems.push(`NATS_BRIDGE_DURABLE must be 1 to 255 letters, digits, '-' or '_' (got "${bridgeDurable}")`);
  }
  const tenantsFile = optional('NATS_BRIDGE_TENANTS_FILE') && resolve(optional('NATS_BRIDGE_TENANTS_FILE')!);
  if (tenantsFile && optional('NATS_BRIDGE_TENANTS')) {
    problems.push('NATS_BRIDGE_TENANTS and NATS_BRIDGE_TENANTS_FILE exclude each other: set one');
  }
  let bridgeTenants = list('NATS_BRIDGE_TENANTS') ?? [];
  if (tenantsFile) {
    try {
      bridgeTenants = loadTenantPlacement(tenantsFile, readFile);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  for (const tenant of bridgeTenants) {
    if (!new RegExp(ID_PATTERN).test(tenant))
      problems.push(`NATS_BRIDGE_TENANTS must list tenant ids (got "${tenant}")`);
  }
  if (bridgeTenants.length > 0 && bridgeDurable === DEFAULT_BRIDGE_DURABLE) {
    // Two shards on one durable consumer would overwrite each other's filter.
    problems.push('NATS_BRIDGE_TENANTS needs its own NATS_BRIDGE_DURABLE per shard');
  }
  const bridge: NatsBridgeConfig = {
    enabled: bridgeWanted && mode !== 'effect',
    durable: bridgeDurable,
    tenants: bridgeTenants,
    ...(tenantsFile && { tenantsFile }),
    maxAckPending: int('NATS_BRIDGE_MAX_ACK_PENDING', 1000, 1, 100_000),
    ackWaitSeconds: int('NATS_BRIDGE_ACK_WAIT_SECONDS', 30, 1, 3600),
    maxDeliver: int('NATS_BRIDGE_MAX_DELIVER', 5, 1, 1000),
    batchSize: int('NATS_BRIDGE_BATCH', 100, 1, 1000),
  };
  const egress = optional('NATS_EGRESS') === undefined ? true : flag('NATS_EGRESS');
  // A malformed filter is reported once, above, not also here.
  const workflowSubjectsValid = workflowStream.subjects.every((subject) => !natsSubjectProblem(subject));
  if (egress && workflowSubjectsValid && !workflowStream.subjects.some((subject) => subject.endsWith('.>'))) {
    problems.push(
      'NATS_WORKFLOW_SUBJECTS must include a filter of the form {prefix}.> for the egress to publish under ' +
        '(or set NATS_EGRESS=false)',
    );
  }

  const otelEndpoint = optional('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (otelEndpoint && !/^https?:\/\/[^\s]+$/.test(otelEndpoint)) {
    problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL (got "${otelEndpoint}")`);
  }

  const dataDir = resolve(str('DATA_DIR', '.data'));
  const apiPort = int('API_PORT', 3000, 0, PORT_MAX);
  const uiPort = int('TEMPORAL_UI_PORT', 8233, 1, PORT_MAX);

  const config: AppConfig = {
    env: nodeEnv as AppConfig['env'],
    logLevel: str('LOG_LEVEL', 'info'),
    dataDir,
    temporal: {
      address: temporal.address,
      namespace: temporal.namespace ?? 'default',
      tls: temporal.tls,
      apiKey: temporal.apiKey,
      metadata: temporal.metadata,
      devPort: int('TEMPORAL_DEV_PORT', 7233, 1, PORT_MAX),
      uiPort,
      devIp: str('TEMPORAL_DEV_IP', '127.0.0.1'),
    },
    database: {
      url: databaseUrl,
      ...(migrationUrl && { migrationUrl }),
      embeddedPort: int('PG_EMBEDDED_PORT', 5433, 1, PORT_MAX),
      poolMax: int('PG_POOL_MAX', 10, 1, 1000),
    },
    api: { host: str('API_HOST', '127.0.0.1'), port: apiPort },
    worker: {
      mode,
      queues,
      opsHost: str('WORKER_OPS_HOST', '127.0.0.1'),
      opsPort: int('WORKER_OPS_PORT', DEFAULT_WORKER_OPS_PORT, 0, PORT_MAX),
      shutdownGraceSeconds: int('WORKER_SHUTDOWN_GRACE_SECONDS', 20, 1, 3600),
      ...(optional('WORKER_SDK_METRICS_PORT') !== undefined && {
        sdkMetricsPort: int('WORKER_SDK_METRICS_PORT', 0, 0, PORT_MAX),
      }),
    },
    auth: {
      issuer: str('AUTH_JWT_ISSUER', 'stellaops-local'),
      audience: str('AUTH_JWT_AUDIENCE', 'stellaops-workflows'),
      publicKeyPem,
      jwksUrl,
      useLocalKey,
      maxTokenLifetimeSeconds: int('AUTH_JWT_MAX_LIFETIME_SECONDS', 24 * 3600, 0, 366 * 24 * 3600),
    },
    selfCheck: { tenantId: str('SELF_CHECK_TENANT', 'local') },
    policyEngine: {
      url: policyEngineUrl,
      embeddedPort: int('POLICY_ENGINE_PORT', DEFAULT_POLICY_ENGINE_PORT, 1, PORT_MAX),
    },
    packApprovals: {
      publicBaseUrl: str('PUBLIC_BASE_URL', `http://127.0.0.1:${apiPort}`).replace(/\/$/, ''),
      eventSecrets: list('PACK_EVENTS_SIGNING_SECRETS'),
      linkSecret: optional('APPROVAL_LINK_SECRET'),
      ipAllowlist: list('PACK_EVENTS_IP_ALLOWLIST') ?? [],
      rateLimitPerMinute: int('PACK_EVENTS_RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
      reminderOffsetsSeconds: (list('PACK_APPROVAL_REMINDERS_SECONDS') ?? ['3600']).map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0)
          problems.push(`PACK_APPROVAL_REMINDERS_SECONDS must list positive integers (got "${v}")`);
        return n;
      }),
      defaultTtlSeconds: int('PACK_APPROVAL_DEFAULT_TTL_SECONDS', 7 * 24 * 3600, 60, 365 * 24 * 3600),
      defaultLocale: str('PACK_APPROVAL_DEFAULT_LOCALE', 'en-US'),
      // Local runs mail a placeholder approver (into the local inbox) so a new user sees notifications at once.
      defaultRecipients:
        list('PACK_APPROVAL_DEFAULT_RECIPIENTS') ?? (nodeEnv === 'production' ? [] : ['approvers@stellaops.local']),
      retentionDays: int('PACK_APPROVAL_RETENTION_DAYS', 90, 1, 3650),
      smtpUrl: optional('SMTP_URL'),
      mailFrom: str('MAIL_FROM', 'StellaOps Approvals <approvals@stellaops.local>'),
      inboxDir: resolve(str('MAIL_INBOX_DIR', join(dataDir, 'mail'))),
      webhookSigningSecret: optional('NOTIFY_WEBHOOK_SIGNING_SECRET'),
      taskRunnerSigningSecret: optional('TASK_RUNNER_SIGNING_SECRET'),
    },
    sagas: {
      gatewayUrl: gatewayUrl?.replace(/\/$/, ''),
      referenceServicesPort: int('REFERENCE_SERVICES_PORT', DEFAULT_REFERENCE_SERVICES_PORT, 1, PORT_MAX),
      referenceServicesToken,
      referenceServicesScanDelayMs: int('REFERENCE_SERVICES_SCAN_DELAY_MS', 200, 0, 3_600_000),
      referenceServicesFaults: flag('REFERENCE_SERVICES_FAULTS'),
      effectsManifestPath: optional('EFFECTS_MANIFEST') && resolve(optional('EFFECTS_MANIFEST')!),
      effectsConcurrency: int('EFFECTS_CONCURRENCY', 50, 1, 10_000),
    },
    nats: {
      url: natsUrl,
      credentialsFile: natsCredentialsFile && resolve(natsCredentialsFile),
      embeddedPort: int('NATS_EMBEDDED_PORT', 4222, 1, PORT_MAX),
      createStreams,
      aggregateStream,
      workflowStream,
      bridge,
      egress,
    },
    simulations: {
      webhook: webhookConfigOf(env, readFile, problems),
      metricsWindow: int('POLICY_SIMULATION_METRICS_WINDOW', 200, 1, 10_000),
      evaluationTimeoutSeconds: int('POLICY_SIMULATION_TIMEOUT_SECONDS', 900, 1, 86_400),
    },
    otel: { endpoint: otelEndpoint, serviceName: str('OTEL_SERVICE_NAME', 'stellaops-workflows') },
    payloadCodec: payloadCodecConfigOf(env, readFile, problems, { nodeEnv, uiPort }),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Settings of the standalone reference Policy Engine (`tsx policy-engine/server.ts`). */
export interface PolicyEngineServerConfig {
  /** `POLICY_ENGINE_HOST`, default 127.0.0.1. */
  host: string;
  /** `POLICY_ENGINE_PORT`, default 3100 (0 picks a free port). */
  port: number;
  /** `POLICY_ENGINE_DATA_DIR`: policies and SBOMs to serve instead of the bundled sample data. */
  dataDir: string | undefined;
  logLevel: string;
}

/** Default port of a standalone Policy Engine. */
export const DEFAULT_POLICY_ENGINE_PORT = 3100;
/** Default port of the reference services (Gateway and sample providers) of sagas. */
export const DEFAULT_REFERENCE_SERVICES_PORT = 3200;

/**
 * Reads the settings of the standalone Policy Engine.
 * @throws ConfigError listing every invalid variable.
 */
export function loadPolicyEngineServerConfig(env: NodeJS.ProcessEnv = process.env): PolicyEngineServerConfig {
  const problems: string[] = [];
  const { int, str, optional } = readers(env, problems);
  const config = {
    host: str('POLICY_ENGINE_HOST', '127.0.0.1'),
    port: int('POLICY_ENGINE_PORT', DEFAULT_POLICY_ENGINE_PORT, 0, PORT_MAX),
    dataDir: optional('POLICY_ENGINE_DATA_DIR'),
    logLevel: str('LOG_LEVEL', 'info'),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Sizes of the benchmark rounds (`npm run bench`); the defaults are the figures the README reports. */
export interface BenchConfig {
  metrics: { requests: number; largeRows: number };
  throughput: { runs: number; concurrency: number };
  packApprovals: { ingestRate: number; ingestSeconds: number; throughputRequests: number; acks: number };
  sagas: { runs: number; concurrency: number; ingressRate: number; ingressSeconds: number; backlog: number };
}

/**
 * Reads the benchmark sizes (`BENCH_*`).
 * @throws ConfigError listing every invalid variable.
 */
export function loadBenchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const problems: string[] = [];
  const { int } = readers(env, problems);
  const config = {
    metrics: {
      requests: int('BENCH_METRICS_REQUESTS', 400, 1, 1_000_000),
      largeRows: int('BENCH_METRICS_ROWS', 1_000_000, 1_000, 100_000_000),
    },
    throughput: {
      runs: int('BENCH_THROUGHPUT_RUNS', 200, 1, 100_000),
      concurrency: int('BENCH_THROUGHPUT_CONCURRENCY', 20, 1, 1_000),
    },
    packApprovals: {
      ingestRate: int('BENCH_INGEST_RATE', 50, 1, 10_000),
      ingestSeconds: int('BENCH_INGEST_SECONDS', 10, 1, 3_600),
      throughputRequests: int('BENCH_INGEST_REQUESTS', 2000, 1, 1_000_000),
      acks: int('BENCH_ACKS', 30, 1, 10_000),
    },
    sagas: {
      runs: int('BENCH_SAGA_RUNS', 50, 1, 100_000),
      concurrency: int('BENCH_SAGA_CONCURRENCY', 20, 1, 1_000),
      ingressRate: int('BENCH_SAGA_INGRESS_RATE', 10, 1, 10_000),
      ingressSeconds: int('BENCH_SAGA_INGRESS_SECONDS', 20, 1, 3_600),
      backlog: int('BENCH_SAGA_BACKLOG', 10_000, 1, 1_000_000),
    },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * The environment the provisioning of binaries (stack/binaries.ts) works in. It reads `TEMPORAL_CLI_PATH`,
 * `TEMPORAL_TEST_SERVER_PATH`, `NATS_SERVER_PATH`, `TEMPORAL_SERVER_PATH`, `TEMPORAL_SQL_TOOL_PATH`,
 * `TEMPORAL_SERVER_MODULE_DIR`, `CHROMIUM_PATH`, `STELLAOPS_CACHE_DIR`, `XDG_CACHE_HOME` and `PATH`, and hands the
 * whole environment on to the build tools it runs (`go install`, `mvn`, `apt-get`), which need theirs (`GOPATH`,
 * proxies, `HOME`…): so it is the process environment itself, not a parsed subset.
 */
export function provisioningEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return env;
}

/** Local-only credentials of the embedded Postgres (it listens on loopback): its bootstrap superuser. */
export const EMBEDDED_PG = { user: 'postgres', password: 'stellaops', database: 'stellaops' } as const;

/**
 * Local-only roles of the embedded Postgres: `owner` owns the schemas and tables and runs migrations;
 * `application` (no superuser, no ownership) is what the API and the workers connect as.
 */
export const EMBEDDED_PG_ROLES = {
  owner: { user: 'stellaops_owner', password: 'stellaops-owner' },
  application: { user: 'stellaops_app', password: 'stellaops-app' },
} as const;

/** A role of the embedded Postgres: the bootstrap superuser (`admin`), the owner or the application role. */
export type EmbeddedPgRole = 'admin' | keyof typeof EMBEDDED_PG_ROLES;

/** Connection string of the embedded Postgres on `port`, as `role` (the bootstrap superuser by default). */
export function embeddedDatabaseUrl(
  port: number,
  database: string = EMBEDDED_PG.database,
  role: EmbeddedPgRole = 'admin',
): string {
  const { user, password } = role === 'admin' ? EMBEDDED_PG : EMBEDDED_PG_ROLES[role];
  return `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
}

/** The Postgres the API and the workers talk to: `DATABASE_URL`, else the embedded server as the application role. */
export function databaseUrlOf(config: AppConfig): string {
  return config.database.url ?? embeddedDatabaseUrl(config.database.embeddedPort, EMBEDDED_PG.database, 'application');
}

/**
 * The Postgres migrations run on: `DATABASE_MIGRATION_URL`, else `DATABASE_URL` (one role for everything), else the
 * embedded server as the owner role.
 */
export function migrationDatabaseUrlOf(config: AppConfig): string {
  return (
    config.database.migrationUrl ??
    config.database.url ??
    embeddedDatabaseUrl(config.database.embeddedPort, EMBEDDED_PG.database, 'owner')
  );
}

/**
 * The role migrations grant the product's privileges to: the user of {@link databaseUrlOf} when migrations run as
 * another role; undefined when one role does both (it owns the tables, so grants mean nothing to it).
 */
export function applicationRoleOf(config: AppConfig): string | undefined {
  const application = userOf(databaseUrlOf(config));
  return application && application !== userOf(migrationDatabaseUrlOf(config)) ? application : undefined;
}

/**
 * Problems with the TLS files a Postgres connection string names (`sslrootcert`, `sslcert`, `sslkey`, read by
 * pg-connection-string): each must be a readable PEM file.
 */
function databaseTlsFileProblems(name: string, url: string | undefined, readFile: ReadTextFile): string[] {
  let params: URLSearchParams;
  try {
    params = new URL(url ?? '').searchParams;
  } catch {
    return [];
  }
  return (['sslrootcert', 'sslcert', 'sslkey'] as const).flatMap((param) => {
    const file = params.get(param);
    if (!file) return [];
    try {
      return readFile(file, 'utf8').includes('-----BEGIN ') ? [] : [`${name}: ${param} ${file} is not a PEM file`];
    } catch (error) {
      return [`${name}: cannot read ${param} ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`];
    }
  });
}

/** The user name of a connection string; undefined when it names none (or cannot be parsed). */
function userOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username) || undefined;
  } catch {
    return undefined;
  }
}

/** The Temporal frontend the process talks to: `TEMPORAL_ADDRESS`, else the embedded dev server. */
export function temporalAddressOf(config: AppConfig): string {
  return (
    config.temporal.address ??
    `${config.temporal.devIp === '0.0.0.0' ? '127.0.0.1' : config.temporal.devIp}:${config.temporal.devPort}`
  );
}

/**
 * The options every Temporal connection of the process is made with (API client, workers, stack set-up): the
 * address of {@link temporalAddressOf} with the configured TLS, API key and gRPC metadata.
 */
export function temporalConnectionOf(config: AppConfig): TemporalConnectionOptions {
  return temporalConnectionOptions(temporalAddressOf(config), config.temporal);
}

/** The NATS servers the process talks to: `NATS_URL` (split at commas), else the embedded nats-server. */
export function natsServersOf(config: AppConfig): string[] {
  return config.nats.url?.split(',').map((server) => server.trim()) ?? [`nats://127.0.0.1:${config.nats.embeddedPort}`];
}

/** URL of the Gateway saga commands go to: the configured one or the reference services'. */
export function gatewayUrlOf(config: AppConfig): string {
  return config.sagas.gatewayUrl ?? `http://127.0.0.1:${config.sagas.referenceServicesPort}`;
}

/** The Policy Engine the workers call: `POLICY_ENGINE_URL`, else the reference engine on loopback. */
export function policyEngineUrlOf(config: AppConfig): string {
  return config.policyEngine.url ?? `http://127.0.0.1:${config.policyEngine.embeddedPort}`;
}

/**
 * The value of the environment variable `name` a configuration file refers to as a secret (the effects manifest's
 * `{ secretEnv: NAME }` headers), or undefined when it is unset or blank. The one way for other modules to read a
 * named secret from the environment; the value is never logged.
 */
export function environmentSecret(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}
