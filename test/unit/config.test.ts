import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  databaseUrlOf,
  loadBenchConfig,
  loadConfig,
  loadPolicyEngineServerConfig,
  TASK_QUEUES,
  temporalAddressOf,
} from '../../core/config.js';

describe('loadConfig', () => {
  it('runs on embedded defaults with no environment', () => {
    const config = loadConfig({});
    expect(config.temporal.address).toBeUndefined();
    expect(config.database.url).toBeUndefined();
    expect(temporalAddressOf(config)).toBe('127.0.0.1:7233');
    expect(databaseUrlOf(config)).toBe('postgres://stellaops_app:stellaops-app@127.0.0.1:5433/stellaops');
    expect(config.api).toEqual({ host: '127.0.0.1', port: 3000 });
    expect(config.worker.queues).toEqual([...TASK_QUEUES]);
    expect(config.auth.useLocalKey).toBe(true);
  });

  it('points at external servers when TEMPORAL_ADDRESS and DATABASE_URL are set', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', DATABASE_URL: 'postgres://u:p@db:5432/app' });
    expect(temporalAddressOf(config)).toBe('temporal:7233');
    expect(databaseUrlOf(config)).toBe('postgres://u:p@db:5432/app');
  });

  it('selects task queues with WORKER_QUEUES and deduplicates them', () => {
    expect(loadConfig({ WORKER_QUEUES: 'saga, effects,saga' }).worker.queues).toEqual(['saga', 'effects']);
  });

  it('lists every invalid variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        WORKER_QUEUES: 'saga,nope',
        API_PORT: 'abc',
        DATABASE_URL: 'mysql://x',
        TEMPORAL_ADDRESS: 'no-port',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('WORKER_QUEUES');
    expect(problems).toContain('API_PORT');
    expect(problems).toContain('DATABASE_URL');
    expect(problems).toContain('TEMPORAL_ADDRESS');
  });

  it('refuses production without a verification key: the local key is for local runs only', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY/);
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp.example/jwks.json' })).toThrow(
      /PACK_EVENTS_SIGNING_SECRETS and APPROVAL_LINK_SECRET/,
    );
    const config = loadConfig({
      NODE_ENV: 'production',
      AUTH_JWKS_URL: 'https://idp.example/jwks.json',
      PACK_EVENTS_SIGNING_SECRETS: 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=',
      APPROVAL_LINK_SECRET: 'a-long-link-secret',
      PAYLOAD_CODEC_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
    });
    expect(config.auth.useLocalKey).toBe(false);
  });
});

describe('one configuration', () => {
  it('validates the completion webhook with everything else and reports all problems at once', () => {
    let error: unknown;
    try {
      loadConfig({ API_PORT: 'abc', POLICY_WEBHOOK_ENABLED: 'true', POLICY_WEBHOOK_MAX_ATTEMPTS: '0' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems } = error as ConfigError;
    expect(problems).toHaveLength(3);
    for (const name of ['API_PORT', 'POLICY_WEBHOOK_ENDPOINT', 'POLICY_WEBHOOK_MAX_ATTEMPTS']) {
      expect(problems.filter((p) => p.startsWith(name))).toHaveLength(1);
    }
  });

  it('carries the webhook settings to the workers', () => {
    const config = loadConfig({
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: 'https://hooks.example.com/policy',
      POLICY_WEBHOOK_TIMEOUT_SECONDS: '3',
    });
    expect(config.simulations.webhook).toMatchObject({ enabled: true, timeoutSeconds: 3, maxAttempts: 5 });
    expect(config.simulations.webhook.endpoint?.href).toBe('https://hooks.example.com/policy');
  });

  it('applies the outbound URL policy to the webhook endpoint: no credentials in the URL', () => {
    expect(() => loadConfig({ POLICY_WEBHOOK_ENDPOINT: 'https://user:pw@hooks.example.com/policy' })).toThrow(
      /POLICY_WEBHOOK_ENDPOINT must not carry credentials/,
    );
    expect(() => loadConfig({ POLICY_WEBHOOK_ENDPOINT: 'https://user:pw@hooks.example.com/policy' })).not.toThrow(/pw/);
  });

  it('reads the standalone Policy Engine settings with their ranges', () => {
    expect(loadPolicyEngineServerConfig({})).toEqual({
      host: '127.0.0.1',
      port: 3100,
      dataDir: undefined,
      logLevel: 'info',
    });
    expect(
      loadPolicyEngineServerConfig({ POLICY_ENGINE_PORT: '0', POLICY_ENGINE_DATA_DIR: ' /srv/data ' }),
    ).toMatchObject({ port: 0, dataDir: '/srv/data' });
    expect(() => loadPolicyEngineServerConfig({ POLICY_ENGINE_PORT: '65536' })).toThrow(
      /POLICY_ENGINE_PORT must be an integer between 0 and 65535/,
    );
  });

  it('reads benchmark sizes, refusing nonsense instead of running a NaN-sized round', () => {
    expect(loadBenchConfig({}).throughput).toEqual({ runs: 200, concurrency: 20 });
    expect(loadBenchConfig({ BENCH_INGEST_RATE: '5' }).packApprovals.ingestRate).toBe(5);
    expect(() => loadBenchConfig({ BENCH_THROUGHPUT_RUNS: 'many', BENCH_ACKS: '-1' })).toThrow(
      /BENCH_THROUGHPUT_RUNS[\s\S]*BENCH_ACKS/,
    );
    expect(() => loadBenchConfig({ BENCH_SAGA_RUNS: '0', BENCH_SAGA_INGRESS_RATE: '1.5' })).toThrow(
      /BENCH_SAGA_RUNS[\s\S]*BENCH_SAGA_INGRESS_RATE/,
    );
    expect(() => loadBenchConfig({ BENCH_SAGA_CONCURRENCY: '1001', BENCH_SAGA_INGRESS_SECONDS: 'long' })).toThrow(
      /BENCH_SAGA_CONCURRENCY[\s\S]*BENCH_SAGA_INGRESS_SECONDS/,
    );
  });
});
