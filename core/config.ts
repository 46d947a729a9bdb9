/**
 * Configuration: environment variables validated once at start-up, with messages that name the variable.
 * Every variable is documented in the README's configuration table.
 */
import { join, resolve } from 'node:path';

/** The task queues of the product (DESIGN.md §3). */
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
    /** External server address; undefined means "start the embedded dev server". */
    address: string | undefined;
    namespace: string;
    devPort: number;
    uiPort: number;
    /** Bind address of the embedded dev server (and its UI). */
    devIp: string;
  };
  database: {
    /** External connection string; undefined means "start embedded Postgres". */
    url: string | undefined;
    embeddedPort: number;
    poolMax: number;
  };
  api: { host: string; port: number };
  worker: { queues: TaskQueueName[] };
  auth: {
    issuer: string;
    audience: string;
    /** PEM (SPKI) public key used to verify tokens. */
    publicKeyPem: string | undefined;
    /** JWKS URL used to verify tokens. */
    jwksUrl: string | undefined;
    /** Use the key pair generated under `dataDir` (local runs only). */
    useLocalKey: boolean;
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
  simulations: {
    /** Number of most recent terminal runs the latency percentiles cover. */
    metricsWindow: number;
    /** Overall evaluation timeout of a run, in seconds. */
    evaluationTimeoutSeconds: number;
  };
}

/** A configuration error; the message lists every invalid variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const PORT_MAX = 65535;

/**
 * Reads and validates the configuration from environment variables.
 * @throws ConfigError listing every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  const str = (name: string, fallback: string): string => {
    const raw = env[name]?.trim();
    return raw ? raw : fallback;
  };
  const optional = (name: string): string | undefined => env[name]?.trim() || undefined;
  const list = (name: string): string[] | undefined => {
    const raw = optional(name);
    return raw
      ? raw
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean)
      : undefined;
  };

  const nodeEnv = str('NODE_ENV', 'development');
  if (!['development', 'test', 'production'].includes(nodeEnv)) {
    problems.push(`NODE_ENV must be development, test or production (got "${nodeEnv}")`);
  }

  const rawQueues = str('WORKER_QUEUES', 'all');
  let queues: TaskQueueName[] = [...TASK_QUEUES];
  if (rawQueues !== 'all') {
    const requested = rawQueues
      .split(',')
      .map((q) => q.trim())
      .filter(Boolean);
    const unknown = requested.filter((q) => !(TASK_QUEUES as readonly string[]).includes(q));
    if (unknown.length > 0 || requested.length === 0) {
      problems.push(
        `WORKER_QUEUES must be "all" or a comma-separated list of ${TASK_QUEUES.join(', ')} (got "${rawQueues}")`,
      );
    } else {
      queues = [...new Set(requested)] as TaskQueueName[];
    }
  }

  const databaseUrl = optional('DATABASE_URL');
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// connection string');
  }
  const temporalAddress = optional('TEMPORAL_ADDRESS');
  if (temporalAddress && !/^[^\s:/]+:\d+$/.test(temporalAddress)) {
    problems.push(`TEMPORAL_ADDRESS must be host:port (got "${temporalAddress}")`);
  }

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

  const dataDir = resolve(str('DATA_DIR', '.data'));
  const apiPort = int('API_PORT', 3000, 0, PORT_MAX);

  const config: AppConfig = {
    env: nodeEnv as AppConfig['env'],
    logLevel: str('LOG_LEVEL', 'info'),
    dataDir,
    temporal: {
      address: temporalAddress,
      namespace: str('TEMPORAL_NAMESPACE', 'default'),
      devPort: int('TEMPORAL_DEV_PORT', 7233, 1, PORT_MAX),
      uiPort: int('TEMPORAL_UI_PORT', 8233, 1, PORT_MAX),
      devIp: str('TEMPORAL_DEV_IP', '127.0.0.1'),
    },
    database: {
      url: databaseUrl,
      embeddedPort: int('PG_EMBEDDED_PORT', 5433, 1, PORT_MAX),
      poolMax: int('PG_POOL_MAX', 10, 1, 1000),
    },
    api: { host: str('API_HOST', '127.0.0.1'), port: apiPort },
    worker: { queues },
    auth: {
      issuer: str('AUTH_JWT_ISSUER', 'stellaops-local'),
      audience: str('AUTH_JWT_AUDIENCE', 'stellaops-workflows'),
      publicKeyPem,
      jwksUrl,
      useLocalKey,
    },
    selfCheck: { tenantId: str('SELF_CHECK_TENANT', 'local') },
    policyEngine: { url: policyEngineUrl, embeddedPort: int('POLICY_ENGINE_PORT', 3100, 1, PORT_MAX) },
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
    simulations: {
      metricsWindow: int('POLICY_SIMULATION_METRICS_WINDOW', 200, 1, 10_000),
      evaluationTimeoutSeconds: int('POLICY_SIMULATION_TIMEOUT_SECONDS', 900, 1, 86_400),
    },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Local-only credentials of the embedded Postgres (it listens on loopback). */
export const EMBEDDED_PG = { user: 'postgres', password: 'stellaops', database: 'stellaops' } as const;

/** Connection string of the embedded Postgres on `port`. */
export function embeddedDatabaseUrl(port: number, database: string = EMBEDDED_PG.database): string {
  return `postgres://${EMBEDDED_PG.user}:${EMBEDDED_PG.password}@127.0.0.1:${port}/${database}`;
}

/** The Postgres the process talks to: `DATABASE_URL`, else the embedded server. */
export function databaseUrlOf(config: AppConfig): string {
  return config.database.url ?? embeddedDatabaseUrl(config.database.embeddedPort);
}

/** The Temporal frontend the process talks to: `TEMPORAL_ADDRESS`, else the embedded dev server. */
export function temporalAddressOf(config: AppConfig): string {
  return (
    config.temporal.address ??
    `${config.temporal.devIp === '0.0.0.0' ? '127.0.0.1' : config.temporal.devIp}:${config.temporal.devPort}`
  );
}

/** The Policy Engine the workers call: `POLICY_ENGINE_URL`, else the reference engine on loopback. */
export function policyEngineUrlOf(config: AppConfig): string {
  return config.policyEngine.url ?? `http://127.0.0.1:${config.policyEngine.embeddedPort}`;
}
