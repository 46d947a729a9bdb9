// Every variable of the configuration: its name, its default, its range and its validation, so that a renamed
// variable, a lost default or a loosened check fails here before it reaches a deployment.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applicationRoleOf,
  ConfigError,
  databaseUrlOf,
  loadBenchConfig,
  loadConfig,
  loadPolicyEngineServerConfig,
  loadWebhookConfig,
  migrationDatabaseUrlOf,
  gatewayUrlOf,
  natsServersOf,
  policyEngineUrlOf,
  temporalAddressOf,
  WebhookConfigError,
  type AppConfig,
} from '../../core/config.js';
import { configProblems } from '../support/config.js';

/** A production environment that passes, to vary one variable at a time. */
const PRODUCTION = {
  NODE_ENV: 'production',
  AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
  PACK_EVENTS_SIGNING_SECRETS: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  APPROVAL_LINK_SECRET: 'a-long-link-secret',
  PAYLOAD_CODEC_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
};

// Workflow-stream filters without a {prefix}.> are only usable when nothing publishes under them.
const NO_EGRESS = { NATS_EGRESS: 'false' };

const PEM = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----';

describe('configuration defaults', () => {
  it('runs on embedded defaults: every value of an empty environment', () => {
    const dataDir = resolve('.data');
    const expected: AppConfig = {
      env: 'development',
      logLevel: 'info',
      dataDir,
      temporal: { address: undefined, namespace: 'default', devPort: 7233, uiPort: 8233, devIp: '127.0.0.1' },
      database: { url: undefined, embeddedPort: 5433, poolMax: 10 },
      api: { host: '127.0.0.1', port: 3000 },
      worker: {
        mode: 'combined',
        queues: ['policy-simulation', 'pack-approval', 'saga', 'effects'],
        opsHost: '127.0.0.1',
        opsPort: 9464,
        shutdownGraceSeconds: 20,
      },
      auth: {
        issuer: 'stellaops-local',
        audience: 'stellaops-workflows',
        publicKeyPem: undefined,
        jwksUrl: undefined,
        useLocalKey: true,
        maxTokenLifetimeSeconds: 86_400,
      },
      selfCheck: { tenantId: 'local' },
      policyEngine: { url: undefined, embeddedPort: 3100 },
      packApprovals: {
        publicBaseUrl: 'http://127.0.0.1:3000',
        eventSecrets: undefined,
        linkSecret: undefined,
        ipAllowlist: [],
        rateLimitPerMinute: 600,
        reminderOffsetsSeconds: [3600],
        defaultTtlSeconds: 604_800,
        defaultLocale: 'en-US',
        defaultRecipients: ['approvers@stellaops.local'],
        retentionDays: 90,
        smtpUrl: undefined,
        mailFrom: 'StellaOps Approvals <approvals@stellaops.local>',
        inboxDir: join(dataDir, 'mail'),
        webhookSigningSecret: undefined,
        taskRunnerSigningSecret: undefined,
      },
      sagas: {
        gatewayUrl: undefined,
        referenceServicesPort: 3200,
        referenceServicesToken: undefined,
        referenceServicesScanDelayMs: 200,
        referenceServicesFaults: false,
        effectsManifestPath: undefined,
        effectsConcurrency: 50,
      },
      nats: {
        url: undefined,
        credentialsFile: undefined,
        embeddedPort: 4222,
        createStreams: true,
        aggregateStream: { name: 'AGGREGATE_EVENTS', subjects: ['aggregate.>'] },
        workflowStream: { name: 'WORKFLOW_EVENTS', subjects: ['workflow.>'] },
        bridge: {
          enabled: true,
          durable: 'saga-bridge',
          tenants: [],
          maxAckPending: 1000,
          ackWaitSeconds: 30,
          maxDeliver: 5,
          batchSize: 100,
        },
        egress: true,
      },
      simulations: {
        webhook: { enabled: false, timeoutSeconds: 10, maxAttempts: 5 },
        metricsWindow: 200,
        evaluationTimeoutSeconds: 900,
      },
      otel: { endpoint: undefined, serviceName: 'stellaops-workflows' },
      payloadCodec: {
        keys: undefined,
        corsOrigins: ['http://127.0.0.1:8233', 'http://localhost:8233'],
        trustLocalUi: undefined,
      },
    };
    expect(loadConfig({})).toEqual(expected);
    expect(policyEngineUrlOf(loadConfig({}))).toBe('http://127.0.0.1:3100');
    expect(natsServersOf(loadConfig({}))).toEqual(['nats://127.0.0.1:4222']);
  });

  it('reads every variable under its documented name', () => {
    const config = loadConfig({
      ...PRODUCTION,
      AUTH_JWKS_URL: undefined,
      AUTH_JWT_PUBLIC_KEY: ` ${PEM} `,
      LOG_LEVEL: 'debug',
      DATA_DIR: '/var/lib/stellaops',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'stellaops',
      TEMPORAL_DEV_PORT: '17233',
      TEMPORAL_UI_PORT: '18233',
      TEMPORAL_DEV_IP: '0.0.0.0',
      DATABASE_URL: 'postgresql://app@db.internal/stellaops',
      PG_EMBEDDED_PORT: '15433',
      PG_POOL_MAX: '25',
      API_HOST: '0.0.0.0',
      API_PORT: '8080',
      WORKER_MODE: 'combined',
      WORKER_QUEUES: 'saga,effects',
      WORKER_OPS_HOST: '0.0.0.0',
      WORKER_OPS_PORT: '19464',
      WORKER_SHUTDOWN_GRACE_SECONDS: '45',
      AUTH_JWT_ISSUER: 'https://issuer.example.com',
      AUTH_JWT_AUDIENCE: 'workflows',
      AUTH_JWT_MAX_LIFETIME_SECONDS: '3600',
      SELF_CHECK_TENANT: 'ops',
      POLICY_ENGINE_URL: 'https://engine.internal',
      POLICY_ENGINE_PORT: '13100',
      PUBLIC_BASE_URL: 'https://approvals.example.com/',
      PACK_EVENTS_IP_ALLOWLIST: '10.0.0.0/8, 192.168.1.7',
      PACK_EVENTS_RATE_LIMIT_PER_MINUTE: '60',
      PACK_APPROVAL_REMINDERS_SECONDS: '600, 60',
      PACK_APPROVAL_DEFAULT_TTL_SECONDS: '3600',
      PACK_APPROVAL_DEFAULT_LOCALE: 'de-DE',
      PACK_APPROVAL_DEFAULT_RECIPIENTS: 'a@example.com,b@example.com',
      PACK_APPROVAL_RETENTION_DAYS: '30',
      SMTP_URL: 'smtps://mail.example.com:465',
      MAIL_FROM: 'Approvals <a@example.com>',
      MAIL_INBOX_DIR: '/tmp/inbox',
      NOTIFY_WEBHOOK_SIGNING_SECRET: 'whsec_notify',
      TASK_RUNNER_SIGNING_SECRET: 'whsec_runner',
      POLICY_SIMULATION_METRICS_WINDOW: '50',
      POLICY_SIMULATION_TIMEOUT_SECONDS: '60',
      GATEWAY_URL: 'https://gateway.internal/',
      REFERENCE_SERVICES_PORT: '13200',
      REFERENCE_SERVICES_TOKEN: ' eyJ.reference.token ',
      REFERENCE_SERVICES_SCAN_DELAY_MS: '5000',
      REFERENCE_SERVICES_FAULTS: 'TRUE',
      EFFECTS_MANIFEST: '/etc/stellaops/effects.yaml',
      EFFECTS_CONCURRENCY: '8',
      NATS_URL: 'nats://nats-1.internal:4222, tls://nats-2.internal:4443',
      NATS_CREDENTIALS_FILE: '/etc/stellaops/runner.creds',
      NATS_EMBEDDED_PORT: '14222',
      NATS_CREATE_STREAMS: 'true',
      NATS_AGGREGATE_STREAM: 'PLATFORM_AGGREGATES',
      NATS_AGGREGATE_SUBJECTS: 'eu.aggregate.>, us.aggregate.>',
      NATS_WORKFLOW_STREAM: 'RUNNER_FACTS',
      NATS_WORKFLOW_SUBJECTS: 'runner.effects.>,runner.facts.*',
      NATS_BRIDGE: 'true',
      NATS_BRIDGE_DURABLE: 'runner-eu',
      NATS_BRIDGE_TENANTS: 'acme,eu.globex',
      NATS_BRIDGE_MAX_ACK_PENDING: '200',
      NATS_BRIDGE_ACK_WAIT_SECONDS: '10',
      NATS_BRIDGE_MAX_DELIVER: '8',
      NATS_BRIDGE_BATCH: '20',
      NATS_EGRESS: 'true',
      CODEC_TRUST_LOCAL_UI: 'false',
    });
    expect(config).toEqual({
      env: 'production',
      logLevel: 'debug',
      dataDir: '/var/lib/stellaops',
      temporal: {
        address: 'temporal.internal:7233',
        namespace: 'stellaops',
        devPort: 17233,
        uiPort: 18233,
        devIp: '0.0.0.0',
      },
      database: { url: 'postgresql://app@db.internal/stellaops', embeddedPort: 15433, poolMax: 25 },
      api: { host: '0.0.0.0', port: 8080 },
      worker: {
        mode: 'combined',
        queues: ['saga', 'effects'],
        opsHost: '0.0.0.0',
        opsPort: 19464,
        shutdownGraceSeconds: 45,
      },
      auth: {
        issuer: 'https://issuer.example.com',
        audience: 'workflows',
        publicKeyPem: PEM,
        jwksUrl: undefined,
        useLocalKey: false,
        maxTokenLifetimeSeconds: 3600,
      },
      selfCheck: { tenantId: 'ops' },
      policyEngine: { url: 'https://engine.internal', embeddedPort: 13100 },
      packApprovals: {
        publicBaseUrl: 'https://approvals.example.com',
        eventSecrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
        linkSecret: 'a-long-link-secret',
        ipAllowlist: ['10.0.0.0/8', '192.168.1.7'],
        rateLimitPerMinute: 60,
        reminderOffsetsSeconds: [600, 60],
        defaultTtlSeconds: 3600,
        defaultLocale: 'de-DE',
        defaultRecipients: ['a@example.com', 'b@example.com'],
        retentionDays: 30,
        smtpUrl: 'smtps://mail.example.com:465',
        mailFrom: 'Approvals <a@example.com>',
        inboxDir: '/tmp/inbox',
        webhookSigningSecret: 'whsec_notify',
        taskRunnerSigningSecret: 'whsec_runner',
      },
      sagas: {
        gatewayUrl: 'https://gateway.internal',
        referenceServicesPort: 13200,
        referenceServicesToken: 'eyJ.reference.token',
        referenceServicesScanDelayMs: 5000,
        referenceServicesFaults: true,
        effectsManifestPath: '/etc/stellaops/effects.yaml',
        effectsConcurrency: 8,
      },
      nats: {
        url: 'nats://nats-1.internal:4222, tls://nats-2.internal:4443',
        credentialsFile: '/etc/stellaops/runner.creds',
        embeddedPort: 14222,
        createStreams: true,
        aggregateStream: { name: 'PLATFORM_AGGREGATES', subjects: ['eu.aggregate.>', 'us.aggregate.>'] },
        workflowStream: { name: 'RUNNER_FACTS', subjects: ['runner.effects.>', 'runner.facts.*'] },
        bridge: {
          enabled: true,
          durable: 'runner-eu',
          tenants: ['acme', 'eu.globex'],
          maxAckPending: 200,
          ackWaitSeconds: 10,
          maxDeliver: 8,
          batchSize: 20,
        },
        egress: true,
      },
      simulations: {
        webhook: { enabled: false, timeoutSeconds: 10, maxAttempts: 5 },
        metricsWindow: 50,
        evaluationTimeoutSeconds: 60,
      },
      otel: { endpoint: undefined, serviceName: 'stellaops-workflows' },
      payloadCodec: { keys: [{ id: 'k1', key: Buffer.alloc(32, 1) }], corsOrigins: [], trustLocalUi: false },
    });
    expect(policyEngineUrlOf(config)).toBe('https://engine.internal');
    expect(gatewayUrlOf(config)).toBe('https://gateway.internal');
    expect(natsServersOf(config)).toEqual(['nats://nats-1.internal:4222', 'tls://nats-2.internal:4443']);
  });

  it('derives addresses the process can dial', () => {
    expect(temporalAddressOf(loadConfig({ TEMPORAL_DEV_IP: '0.0.0.0', TEMPORAL_DEV_PORT: '7999' }))).toBe(
      '127.0.0.1:7999',
    );
    expect(temporalAddressOf(loadConfig({ TEMPORAL_DEV_IP: '127.0.0.2' }))).toBe('127.0.0.2:7233');
    expect(loadConfig({ API_PORT: '4000' }).packApprovals.publicBaseUrl).toBe('http://127.0.0.1:4000');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://x.example.com/a/' }).packApprovals.publicBaseUrl).toBe(
      'https://x.example.com/a',
    );
  });

  it('keeps production free of placeholder recipients', () => {
    expect(loadConfig(PRODUCTION).packApprovals.defaultRecipients).toEqual([]);
    expect(loadConfig({ NODE_ENV: 'test' }).packApprovals.defaultRecipients).toEqual(['approvers@stellaops.local']);
  });
});

describe('integer ranges', () => {
  const RANGES: [name: string, min: number, max: number][] = [
    ['API_PORT', 0, 65535],
    ['TEMPORAL_DEV_PORT', 1, 65535],
    ['TEMPORAL_UI_PORT', 1, 65535],
    ['PG_EMBEDDED_PORT', 1, 65535],
    ['PG_POOL_MAX', 1, 1000],
    ['POLICY_ENGINE_PORT', 1, 65535],
    ['PACK_EVENTS_RATE_LIMIT_PER_MINUTE', 1, 1_000_000],
    ['PACK_APPROVAL_DEFAULT_TTL_SECONDS', 60, 31_536_000],
    ['PACK_APPROVAL_RETENTION_DAYS', 1, 3650],
    ['POLICY_SIMULATION_METRICS_WINDOW', 1, 10_000],
    ['POLICY_SIMULATION_TIMEOUT_SECONDS', 1, 86_400],
    ['REFERENCE_SERVICES_PORT', 1, 65535],
    ['REFERENCE_SERVICES_SCAN_DELAY_MS', 0, 3_600_000],
    ['NATS_EMBEDDED_PORT', 1, 65535],
  ];

  it.each(RANGES)('%s accepts %i..%i and refuses the values just outside', (name, min, max) => {
    expect(() => loadConfig({ [name]: String(min) })).not.toThrow();
    expect(() => loadConfig({ [name]: String(max) })).not.toThrow();
    for (const value of [min - 1, max + 1]) {
      expect(configProblems({ [name]: String(value) })).toEqual([
        `${name} must be an integer between ${min} and ${max} (got "${value}")`,
      ]);
    }
    expect(configProblems({ [name]: `${min}.5` })).toHaveLength(1);
    expect(configProblems({ [name]: 'x' })).toHaveLength(1);
  });

  it('treats an empty variable as unset, and refuses API_PORT=70000', () => {
    expect(loadConfig({ API_PORT: '' }).api.port).toBe(3000);
    expect(configProblems({ API_PORT: '70000' })).toEqual([
      'API_PORT must be an integer between 0 and 65535 (got "70000")',
    ]);
  });

  it('wants positive whole seconds for reminders', () => {
    for (const value of ['0', '-60', '1.5', 'soon']) {
      expect(configProblems({ PACK_APPROVAL_REMINDERS_SECONDS: `3600,${value}` })).toEqual([
        `PACK_APPROVAL_REMINDERS_SECONDS must list positive integers (got "${value}")`,
      ]);
    }
    expect(loadConfig({ PACK_APPROVAL_REMINDERS_SECONDS: '1' }).packApprovals.reminderOffsetsSeconds).toEqual([1]);
  });
});

describe('validated values', () => {
  it('refuses an unknown NODE_ENV', () => {
    expect(configProblems({ NODE_ENV: 'staging' })).toEqual([
      'NODE_ENV must be development, test or production (got "staging")',
    ]);
  });

  it('refuses empty or unknown queue lists', () => {
    for (const queues of [',', 'saga,nope', 'Saga']) {
      expect(configProblems({ WORKER_QUEUES: queues })).toEqual([
        `WORKER_QUEUES must be "all" or a comma-separated list of policy-simulation, pack-approval, saga, effects (got "${queues}")`,
      ]);
    }
    expect(loadConfig({ WORKER_QUEUES: ' effects , saga ' }).worker.queues).toEqual(['effects', 'saga']);
  });

  it('anchors every URL and address check', () => {
    expect(configProblems({ DATABASE_URL: 'xpostgres://db/app' })).toEqual([
      'DATABASE_URL must be a postgres:// or postgresql:// connection string',
    ]);
    for (const address of ['temporal', ' temporal:7233x', 'x:7233:1', 'http://t:7233']) {
      expect(configProblems({ TEMPORAL_ADDRESS: address })).toHaveLength(1);
    }
    for (const url of ['ftp://engine', 'xhttp://engine', 'http://engine x', 'http://']) {
      expect(configProblems({ POLICY_ENGINE_URL: url })).toEqual([
        `POLICY_ENGINE_URL must be an http(s) URL (got "${url}")`,
      ]);
    }
    expect(loadConfig({ POLICY_ENGINE_URL: 'http://engine:3100' }).policyEngine.url).toBe('http://engine:3100');
    for (const url of ['ftp://issuer/jwks', 'xhttps://issuer/jwks']) {
      expect(configProblems({ AUTH_JWKS_URL: url })).toEqual(['AUTH_JWKS_URL must be an http(s) URL']);
    }
    expect(loadConfig({ AUTH_JWKS_URL: 'http://issuer/jwks' }).auth).toMatchObject({ useLocalKey: false });
    expect(configProblems({ AUTH_JWT_PUBLIC_KEY: 'ssh-ed25519 AAAA' })).toEqual([
      'AUTH_JWT_PUBLIC_KEY must be a PEM-encoded SPKI public key (-----BEGIN PUBLIC KEY-----)',
    ]);
    for (const url of ['http://mail', 'xsmtp://mail']) {
      expect(configProblems({ SMTP_URL: url })).toEqual(['SMTP_URL must be smtp:// or smtps://']);
    }
    expect(loadConfig({ SMTP_URL: 'smtp://mail:25' }).packApprovals.smtpUrl).toBe('smtp://mail:25');
  });

  it('takes the reference services’ fault switch as true or false only, and a token that fits a header', () => {
    expect(loadConfig({ REFERENCE_SERVICES_FAULTS: 'false' }).sagas.referenceServicesFaults).toBe(false);
    expect(loadConfig({ REFERENCE_SERVICES_FAULTS: ' true ' }).sagas.referenceServicesFaults).toBe(true);
    for (const value of ['yes', '1', 'on']) {
      expect(configProblems({ REFERENCE_SERVICES_FAULTS: value })).toEqual([
        `REFERENCE_SERVICES_FAULTS must be true or false (got "${value}")`,
      ]);
    }
    expect(configProblems({ REFERENCE_SERVICES_TOKEN: 'eyJ\u00e9' })).toEqual([
      'REFERENCE_SERVICES_TOKEN must be printable ASCII (it is sent as a header value)',
    ]);
  });

  it('starts production only with both inbound secrets and a real verification key', () => {
    expect(() => loadConfig(PRODUCTION)).not.toThrow();
    const secrets =
      'NODE_ENV=production needs PACK_EVENTS_SIGNING_SECRETS and APPROVAL_LINK_SECRET (local ones are generated only for local runs)';
    expect(configProblems({ ...PRODUCTION, PACK_EVENTS_SIGNING_SECRETS: '' })).toEqual([secrets]);
    expect(configProblems({ ...PRODUCTION, APPROVAL_LINK_SECRET: ' ' })).toEqual([secrets]);
    expect(configProblems({ ...PRODUCTION, AUTH_JWKS_URL: '' })).toEqual([
      'NODE_ENV=production needs AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY: the generated local key is for local runs only',
    ]);
    expect(() => loadConfig({ ...PRODUCTION, NODE_ENV: 'development', APPROVAL_LINK_SECRET: '' })).not.toThrow();
  });
});

describe('NATS', () => {
  it('creates missing streams on local runs only, unless told otherwise', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).nats.createStreams).toBe(true);
    expect(loadConfig(PRODUCTION).nats.createStreams).toBe(false);
    expect(loadConfig({ ...PRODUCTION, NATS_CREATE_STREAMS: 'TRUE' }).nats.createStreams).toBe(true);
    expect(loadConfig({ NATS_CREATE_STREAMS: ' false ' }).nats.createStreams).toBe(false);
    expect(loadConfig({ NATS_CREATE_STREAMS: ' ' }).nats.createStreams).toBe(true);
    expect(configProblems({ NATS_CREATE_STREAMS: 'yes' })).toEqual([
      'NATS_CREATE_STREAMS must be true or false (got "yes")',
    ]);
  });

  it('takes nats:// and tls:// server lists without credentials', () => {
    expect(loadConfig({ NATS_URL: 'nats://127.0.0.1:4222' }).nats.url).toBe('nats://127.0.0.1:4222');
    expect(natsServersOf(loadConfig({ NATS_URL: 'tls://a:1,nats://b/' }))).toEqual(['tls://a:1', 'nats://b/']);
    const list = 'NATS_URL must be a comma-separated list of nats://host:port or tls://host:port URLs';
    for (const url of [
      '127.0.0.1:4222',
      'http://nats:4222',
      'nats://',
      'nats://a:1,',
      'nats://a/x',
      'nats://a?x',
      'nats://a#x',
      'nats://a:99999',
    ]) {
      expect(configProblems({ NATS_URL: url }), url).toEqual([list]);
    }
    // One message for the whole list, however many of its servers are wrong.
    expect(configProblems({ NATS_URL: 'http://a,ftp://b' })).toEqual([list]);
    for (const url of [
      'nats://runner:secret@nats:4222',
      'nats://b:1,tls://token@nats:4222',
      'nats://:secret@nats:4222',
      'nats://u:p@a,nats://v:q@b',
    ]) {
      expect(configProblems({ NATS_URL: url })).toEqual([
        'NATS_URL must not carry credentials (they would show in logs): use NATS_CREDENTIALS_FILE',
      ]);
    }
  });

  it('takes a credentials file for an existing deployment only, as an absolute path', () => {
    expect(
      loadConfig({ NATS_URL: 'nats://n:4222', NATS_CREDENTIALS_FILE: 'conf/runner.creds' }).nats.credentialsFile,
    ).toBe(resolve('conf/runner.creds'));
    expect(configProblems({ NATS_CREDENTIALS_FILE: '/etc/runner.creds' })).toEqual([
      'NATS_CREDENTIALS_FILE needs NATS_URL: the embedded nats-server takes no credentials',
    ]);
  });

  it('wants stream names JetStream accepts, and two different ones', () => {
    expect(loadConfig({ NATS_AGGREGATE_STREAM: 'a-b_C9' }).nats.aggregateStream.name).toBe('a-b_C9');
    expect(() => loadConfig({ NATS_WORKFLOW_STREAM: 'W'.repeat(255) })).not.toThrow();
    for (const name of ['AGG.EVENTS', 'AGG EVENTS', 'AGG*', 'AGG>', 'a/b', 'W'.repeat(256)]) {
      expect(configProblems({ NATS_AGGREGATE_STREAM: name })).toEqual([
        `NATS_AGGREGATE_STREAM must be 1 to 255 letters, digits, '-' or '_' (got "${name}")`,
      ]);
      expect(configProblems({ NATS_WORKFLOW_STREAM: name })).toEqual([
        `NATS_WORKFLOW_STREAM must be 1 to 255 letters, digits, '-' or '_' (got "${name}")`,
      ]);
    }
    expect(configProblems({ NATS_WORKFLOW_STREAM: 'AGGREGATE_EVENTS' })).toEqual([
      'NATS_AGGREGATE_STREAM and NATS_WORKFLOW_STREAM must differ (both "AGGREGATE_EVENTS")',
    ]);
  });

  it('wants subject filters, aggregate ones of the form {prefix}.>', () => {
    expect(
      loadConfig({ ...NO_EGRESS, NATS_AGGREGATE_SUBJECTS: '*.aggregate.>', NATS_WORKFLOW_SUBJECTS: 'facts' }).nats
        .aggregateStream.subjects,
    ).toEqual(['*.aggregate.>']);
    expect(
      loadConfig({ ...NO_EGRESS, NATS_WORKFLOW_SUBJECTS: 'facts, results.*' }).nats.workflowStream.subjects,
    ).toEqual(['facts', 'results.*']);
    const cases: [string, string][] = [
      ['a..b', 'has an empty token'],
      ['.a', 'has an empty token'],
      ['a.', 'has an empty token'],
      ['a.b c', 'contains whitespace'],
      ['a\tb', 'contains whitespace'],
      ['a.>.b', "has '>' before its last token"],
      ['a.b*', "has '*' or '>' inside a token"],
      ['a.>b', "has '*' or '>' inside a token"],
    ];
    for (const [subject, problem] of cases) {
      expect(configProblems({ NATS_WORKFLOW_SUBJECTS: subject })).toEqual([
        `NATS_WORKFLOW_SUBJECTS must list NATS subject filters: "${subject}" ${problem}`,
      ]);
      expect(configProblems({ NATS_AGGREGATE_SUBJECTS: `aggregate.>,${subject}` })).toEqual([
        `NATS_AGGREGATE_SUBJECTS must list NATS subject filters: "${subject}" ${problem}`,
      ]);
    }
    for (const subject of ['>', 'aggregate', 'aggregate.*', 'aggregate.x']) {
      expect(configProblems({ NATS_AGGREGATE_SUBJECTS: subject }).filter((p) => p.includes('{prefix}.>'))).toEqual([
        `NATS_AGGREGATE_SUBJECTS must list filters of the form {prefix}.> (events are published on {prefix}.{tenant}.{aggregateType}.{eventType}; got "${subject}")`,
      ]);
    }
  });

  it('reports a malformed subject once, not also as an overlap', () => {
    expect(configProblems({ NATS_WORKFLOW_SUBJECTS: 'aggregate.a b' })).toEqual([
      'NATS_WORKFLOW_SUBJECTS must list NATS subject filters: "aggregate.a b" contains whitespace',
    ]);
    expect(configProblems({ NATS_AGGREGATE_SUBJECTS: 'workflow..x' })).toEqual([
      'NATS_AGGREGATE_SUBJECTS must list NATS subject filters: "workflow..x" has an empty token',
    ]);
  });

  it('refuses streams whose subjects overlap, as JetStream would', () => {
    const overlap = (a: string, w: string) =>
      `NATS_AGGREGATE_SUBJECTS and NATS_WORKFLOW_SUBJECTS must not overlap ("${a}" and "${w}")`;
    const refused: [string, string][] = [
      ['aggregate.>', 'aggregate.x'],
      ['aggregate.>', 'aggregate.*.y'],
      ['aggregate.>', '*.x'],
      ['a.b.>', 'a.*.c'],
      ['aggregate.>', '>'],
      ['x.aggregate.>', '*.*.z'],
      ['*.aggregate.>', 'eu.aggregate.facts'],
    ];
    for (const [a, w] of refused) {
      expect(
        configProblems({ ...NO_EGRESS, NATS_AGGREGATE_SUBJECTS: a, NATS_WORKFLOW_SUBJECTS: w }),
        `${a} / ${w}`,
      ).toEqual([overlap(a, w)]);
    }
    const accepted: [string, string][] = [
      ['aggregate.>', 'workflow.>'],
      ['aggregate.>', 'aggregate'],
      ['a.b.>', 'a.c.>'],
      ['a.b.>', 'a.*'],
      ['x.aggregate.>', '*.*'],
      ['a.b.>', '*.c.d'],
    ];
    for (const [a, w] of accepted) {
      expect(
        () => loadConfig({ ...NO_EGRESS, NATS_AGGREGATE_SUBJECTS: a, NATS_WORKFLOW_SUBJECTS: w }),
        `${a} / ${w}`,
      ).not.toThrow();
    }
    // Each pair once: the first workflow filter that overlaps.
    expect(
      configProblems({ ...NO_EGRESS, NATS_AGGREGATE_SUBJECTS: 'a.>,b.>', NATS_WORKFLOW_SUBJECTS: 'c,a.x,a.y,b.z' }),
    ).toEqual([overlap('a.>', 'a.x'), overlap('b.>', 'b.z')]);
  });

  it('reports every NATS problem at once', () => {
    expect(
      configProblems({
        NATS_URL: 'http://nats',
        NATS_EMBEDDED_PORT: '0',
        NATS_CREATE_STREAMS: 'on',
        NATS_AGGREGATE_STREAM: 'A.B',
        NATS_WORKFLOW_SUBJECTS: 'a b',
      }),
    ).toHaveLength(5);
  });
});

describe('webhook configuration as part of the one loader', () => {
  it('is a ConfigError with its own title', () => {
    let error: unknown;
    try {
      loadWebhookConfig({ POLICY_WEBHOOK_ENABLED: 'yes' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookConfigError);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      'Invalid policy webhook configuration:\n  - POLICY_WEBHOOK_ENABLED must be true or false (got "yes")',
    );
    expect(() => loadConfig({ API_PORT: 'x' })).toThrow(
      /^Invalid configuration:\n {2}- API_PORT must be an integer between 0 and 65535 \(got "x"\)$/,
    );
    try {
      loadConfig({ API_PORT: 'x' });
    } catch (e) {
      expect((e as Error).name).toBe('ConfigError');
    }
  });

  it('trims values and treats blank ones as unset', () => {
    expect(
      loadWebhookConfig({
        POLICY_WEBHOOK_ENABLED: ' TRUE ',
        POLICY_WEBHOOK_ENDPOINT: ' https://hooks.example.com/p ',
        POLICY_WEBHOOK_TIMEOUT_SECONDS: ' 7 ',
        POLICY_WEBHOOK_API_KEY_HEADER: '   ',
      }),
    ).toEqual({ enabled: true, endpoint: new URL('https://hooks.example.com/p'), timeoutSeconds: 7, maxAttempts: 5 });
  });

  it('refuses every header the sender sets itself as the API-key header', () => {
    for (const header of [
      'Content-Type',
      'content-length',
      'Host',
      'X-StellaOps-Tenant',
      'x-stellaops-run-id',
      'webhook-id',
      'Webhook-Timestamp',
      'webhook-signature',
    ]) {
      expect(() => loadWebhookConfig({ POLICY_WEBHOOK_API_KEY_HEADER: header, POLICY_WEBHOOK_API_KEY: 'k' })).toThrow(
        /must not be a header the webhook sets itself/,
      );
    }
    expect(
      loadWebhookConfig({ POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key', POLICY_WEBHOOK_API_KEY: 'k' }),
    ).toMatchObject({ apiKeyHeader: 'X-Api-Key', apiKey: 'k' });
  });

  it('refuses an API key that cannot travel as a header value, without quoting it', () => {
    expect(() =>
      loadWebhookConfig({ POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key', POLICY_WEBHOOK_API_KEY: 'schlüssel' }),
    ).toThrow(/^(?![\s\S]*schlüssel)[\s\S]*POLICY_WEBHOOK_API_KEY must be printable ASCII/);
  });

  it('reads a file section of the right shape only, naming the section otherwise', () => {
    const file = (document: unknown) => () => JSON.stringify(document);
    for (const webhook of [[], 'on', 7, null]) {
      const env = { POLICY_WEBHOOK_CONFIG_FILE: '/etc/scheduler.json' };
      const read = file({ Scheduler: { Worker: { Policy: { Webhook: webhook } } } });
      if (webhook === null) {
        expect(() => loadWebhookConfig(env, read)).toThrow(
          /Webhook in POLICY_WEBHOOK_CONFIG_FILE .* must be an object/,
        );
      } else {
        expect(() => loadWebhookConfig(env, read)).toThrow(
          'Scheduler:Worker:Policy:Webhook in POLICY_WEBHOOK_CONFIG_FILE ("/etc/scheduler.json") must be an object',
        );
      }
    }
    // A non-object on the way to the section means "no section".
    expect(
      loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: '/etc/scheduler.json' }, file({ Scheduler: { Worker: [] } })),
    ).toEqual({ enabled: false, timeoutSeconds: 10, maxAttempts: 5 });
    expect(
      loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: ' /etc/scheduler.json ' }, (path) =>
        path === '/etc/scheduler.json'
          ? JSON.stringify({ Scheduler: { Worker: { Policy: { Webhook: { MaxAttempts: 2 } } } } })
          : '',
      ).maxAttempts,
    ).toBe(2);
  });

  it('names a wrongly typed file value without quoting secrets, and skips null values', () => {
    const read = () =>
      JSON.stringify({
        Scheduler: {
          Worker: {
            Policy: { Webhook: { Enabled: true, Endpoint: 42, ApiKey: 1234, ApiKeyHeader: null, TimeoutSeconds: '5' } },
          },
        },
      });
    let problems: string[] = [];
    try {
      loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: '/etc/scheduler.json' }, read);
    } catch (error) {
      problems = (error as WebhookConfigError).problems;
    }
    expect(problems).toEqual([
      'Scheduler:Worker:Policy:Webhook:Endpoint must be a string (got 42)',
      'Scheduler:Worker:Policy:Webhook:ApiKey must be a string',
    ]);
  });
});

describe('webhook values from the scheduler file', () => {
  /** A reader serving `webhook` as the scheduler file's webhook section. */
  const section = (webhook: unknown) => () =>
    JSON.stringify({ Scheduler: { Worker: { Policy: { Webhook: webhook } } } });
  const env = { POLICY_WEBHOOK_CONFIG_FILE: '/etc/scheduler.json' };
  const problems = (webhook: unknown): string[] => {
    try {
      loadWebhookConfig(env, section(webhook));
    } catch (error) {
      return (error as WebhookConfigError).problems;
    }
    return [];
  };

  it('refuses values of the wrong JSON type instead of crashing on them', () => {
    expect(problems({ Enabled: 1 })).toEqual(['Scheduler:Worker:Policy:Webhook:Enabled must be true or false (got 1)']);
    expect(problems({ TimeoutSeconds: true })).toEqual([
      'Scheduler:Worker:Policy:Webhook:TimeoutSeconds must be an integer between 1 and 300 (got true)',
    ]);
    expect(problems({ SigningSecret: 12345 })).toEqual([
      'Scheduler:Worker:Policy:Webhook:SigningSecret must be a string',
    ]);
    // A mistyped half of the API-key pair is reported once, not also as "the other half is missing".
    expect(problems({ ApiKeyHeader: 5, ApiKey: 'k' })).toEqual([
      'Scheduler:Worker:Policy:Webhook:ApiKeyHeader must be a string (got 5)',
    ]);
    expect(problems({ ApiKeyHeader: 'X-Api-Key', ApiKey: false })).toEqual([
      'Scheduler:Worker:Policy:Webhook:ApiKey must be a string',
    ]);
  });

  it('trims file strings and treats blank ones as unset', () => {
    expect(problems({ Enabled: true, Endpoint: '   ' })).toEqual([
      'Scheduler:Worker:Policy:Webhook:Endpoint is required when the webhook is enabled',
    ]);
    expect(loadWebhookConfig(env, section({ ApiKeyHeader: ' X-Api-Key ', ApiKey: ' k ' }))).toStrictEqual({
      enabled: false,
      apiKeyHeader: 'X-Api-Key',
      apiKey: 'k',
      timeoutSeconds: 10,
      maxAttempts: 5,
    });
  });

  it('ignores a section path through null', () => {
    expect(loadWebhookConfig(env, () => JSON.stringify({ Scheduler: null }))).toStrictEqual({
      enabled: false,
      timeoutSeconds: 10,
      maxAttempts: 5,
    });
  });

  it('leaves unset settings out of the result', () => {
    expect(loadWebhookConfig({})).toStrictEqual({ enabled: false, timeoutSeconds: 10, maxAttempts: 5 });
    expect(loadWebhookConfig({ POLICY_WEBHOOK_ENABLED: '   ' })).toStrictEqual({
      enabled: false,
      timeoutSeconds: 10,
      maxAttempts: 5,
    });
  });

  it('quotes a relative endpoint in its message', () => {
    expect(() => loadWebhookConfig({ POLICY_WEBHOOK_ENDPOINT: '/hooks/policy' })).toThrow(
      'POLICY_WEBHOOK_ENDPOINT must be an absolute URL (got "/hooks/policy")',
    );
  });

  it('lists several problems one per line', () => {
    expect(() => loadConfig({ API_PORT: 'x', PG_POOL_MAX: '0' })).toThrow(
      'Invalid configuration:\n  - API_PORT must be an integer between 0 and 65535 (got "x")\n  - PG_POOL_MAX must be an integer between 1 and 1000 (got "0")',
    );
  });
});

describe('lists', () => {
  it('drops empty items of comma-separated lists', () => {
    expect(loadConfig({ PACK_EVENTS_IP_ALLOWLIST: '10.0.0.1,, 10.0.0.2,' }).packApprovals.ipAllowlist).toEqual([
      '10.0.0.1',
      '10.0.0.2',
    ]);
    expect(loadConfig({ WORKER_QUEUES: 'saga,,effects' }).worker.queues).toEqual(['saga', 'effects']);
  });
});

describe('standalone engine and benchmark settings', () => {
  it('reads every variable under its documented name', () => {
    expect(
      loadPolicyEngineServerConfig({ POLICY_ENGINE_HOST: '0.0.0.0', POLICY_ENGINE_PORT: '0', LOG_LEVEL: 'warn' }),
    ).toEqual({ host: '0.0.0.0', port: 0, dataDir: undefined, logLevel: 'warn' });
    expect(
      loadBenchConfig({
        BENCH_METRICS_REQUESTS: '10',
        BENCH_METRICS_ROWS: '5000',
        BENCH_THROUGHPUT_RUNS: '11',
        BENCH_THROUGHPUT_CONCURRENCY: '3',
        BENCH_INGEST_RATE: '4',
        BENCH_INGEST_SECONDS: '5',
        BENCH_INGEST_REQUESTS: '6',
        BENCH_ACKS: '7',
        BENCH_SAGA_RUNS: '8',
        BENCH_SAGA_CONCURRENCY: '9',
        BENCH_SAGA_INGRESS_RATE: '12',
        BENCH_SAGA_INGRESS_SECONDS: '13',
        BENCH_SAGA_BACKLOG: '14',
      }),
    ).toEqual({
      metrics: { requests: 10, largeRows: 5000 },
      throughput: { runs: 11, concurrency: 3 },
      packApprovals: { ingestRate: 4, ingestSeconds: 5, throughputRequests: 6, acks: 7 },
      sagas: { runs: 8, concurrency: 9, ingressRate: 12, ingressSeconds: 13, backlog: 14 },
    });
    expect(loadBenchConfig({})).toEqual({
      metrics: { requests: 400, largeRows: 1_000_000 },
      throughput: { runs: 200, concurrency: 20 },
      packApprovals: { ingestRate: 50, ingestSeconds: 10, throughputRequests: 2000, acks: 30 },
      sagas: { runs: 50, concurrency: 20, ingressRate: 10, ingressSeconds: 20, backlog: 10_000 },
    });
  });
});

describe('database roles', () => {
  it('migrates as the owner and serves as the application role', () => {
    const embedded = loadConfig({});
    expect(databaseUrlOf(embedded)).toBe('postgres://stellaops_app:stellaops-app@127.0.0.1:5433/stellaops');
    expect(migrationDatabaseUrlOf(embedded)).toBe(
      'postgres://stellaops_owner:stellaops-owner@127.0.0.1:5433/stellaops',
    );
    expect(applicationRoleOf(embedded)).toBe('stellaops_app');

    const split = loadConfig({
      DATABASE_URL: 'postgres://app:pw@db/stellaops',
      DATABASE_MIGRATION_URL: 'postgresql://owner:pw@db/stellaops',
    });
    expect(split.database).toMatchObject({ migrationUrl: 'postgresql://owner:pw@db/stellaops' });
    expect(migrationDatabaseUrlOf(split)).toBe('postgresql://owner:pw@db/stellaops');
    expect(applicationRoleOf(split)).toBe('app');

    // One role for everything (existing deployments): migrations use it too, and there is no one to grant.
    const single = loadConfig({ DATABASE_URL: 'postgres://app:pw@db/stellaops' });
    expect(migrationDatabaseUrlOf(single)).toBe('postgres://app:pw@db/stellaops');
    expect(applicationRoleOf(single)).toBeUndefined();
    expect(single.database).not.toHaveProperty('migrationUrl');
  });

  it('refuses a migration URL it cannot use', () => {
    expect(
      configProblems({ DATABASE_MIGRATION_URL: 'mysql://owner@db/x', DATABASE_URL: 'postgres://app@db/x' }),
    ).toEqual(['DATABASE_MIGRATION_URL must be a postgres:// or postgresql:// connection string']);
    expect(configProblems({ DATABASE_MIGRATION_URL: 'postgres://owner@db/x' })).toEqual([
      'DATABASE_MIGRATION_URL needs DATABASE_URL (the application role); the embedded Postgres creates both roles itself',
    ]);
    expect(configProblems({ DATABASE_MIGRATION_URL: 'postgres://db/x', DATABASE_URL: 'postgres://app@db/x' })).toEqual([
      'DATABASE_MIGRATION_URL must name its user (the owner role)',
    ]);
    expect(
      configProblems({ DATABASE_MIGRATION_URL: 'postgres://owner@db/x', DATABASE_URL: 'postgres://db/x' }),
    ).toEqual(['DATABASE_URL must name its user when DATABASE_MIGRATION_URL is set (migrations grant that role)']);
  });
});
