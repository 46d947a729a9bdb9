import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadWebhookConfig, WebhookConfigError } from '../../core/config.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const dir = mkdtempSync(join(tmpdir(), 'stellaops-webhook-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `document` as JSON to a temporary file and returns its path. */
function configFile(name: string, document: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof document === 'string' ? document : JSON.stringify(document, null, 2));
  return path;
}

/** The problems of a configuration that must be rejected. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadWebhookConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookConfigError);
    expect(error).toBeInstanceOf(Error);
    return (error as WebhookConfigError).problems;
  }
  throw new Error('expected a WebhookConfigError');
}

const enabled = { POLICY_WEBHOOK_ENABLED: 'true', POLICY_WEBHOOK_ENDPOINT: 'https://hooks.example.com/policy' };

describe('loadWebhookConfig', () => {
  it('is disabled by default, with a 10 s timeout and 5 attempts', () => {
    expect(loadWebhookConfig({})).toEqual({ enabled: false, timeoutSeconds: 10, maxAttempts: 5 });
  });

  it('reads every environment variable', () => {
    const config = loadWebhookConfig({
      ...enabled,
      POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key',
      POLICY_WEBHOOK_API_KEY: 'k-123',
      POLICY_WEBHOOK_TIMEOUT_SECONDS: '30',
      POLICY_WEBHOOK_SIGNING_SECRET: SECRET,
      POLICY_WEBHOOK_MAX_ATTEMPTS: '8',
    });
    expect(config).toEqual({
      enabled: true,
      endpoint: new URL('https://hooks.example.com/policy'),
      apiKeyHeader: 'X-Api-Key',
      apiKey: 'k-123',
      timeoutSeconds: 30,
      signingSecret: SECRET,
      maxAttempts: 8,
    });
    expect(config.endpoint).toBeInstanceOf(URL);
  });

  it('parses POLICY_WEBHOOK_ENABLED as true/false (case-insensitive) and rejects anything else', () => {
    expect(loadWebhookConfig({ ...enabled, POLICY_WEBHOOK_ENABLED: 'TRUE' }).enabled).toBe(true);
    expect(loadWebhookConfig({ POLICY_WEBHOOK_ENABLED: 'false' }).enabled).toBe(false);
    expect(loadWebhookConfig({ POLICY_WEBHOOK_ENABLED: '' }).enabled).toBe(false);
    expect(problemsOf({ POLICY_WEBHOOK_ENABLED: 'yes' })).toEqual([
      expect.stringMatching(/^POLICY_WEBHOOK_ENABLED must be true or false/),
    ]);
  });

  it('reads the original scheduler JSON shape from POLICY_WEBHOOK_CONFIG_FILE', () => {
    const path = configFile('appsettings.json', {
      Logging: { LogLevel: { Default: 'Information' } },
      Scheduler: {
        Worker: {
          Policy: {
            Webhook: {
              Enabled: true,
              Endpoint: 'https://scheduler-hooks.example.com/runs',
              ApiKeyHeader: 'X-StellaOps-Webhook-Key',
              ApiKey: 'file-key',
              TimeoutSeconds: 15,
            },
          },
        },
      },
    });
    expect(loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: path })).toEqual({
      enabled: true,
      endpoint: new URL('https://scheduler-hooks.example.com/runs'),
      apiKeyHeader: 'X-StellaOps-Webhook-Key',
      apiKey: 'file-key',
      timeoutSeconds: 15,
      maxAttempts: 5,
    });
  });

  it('lets environment variables override file values', () => {
    const path = configFile('override.json', {
      Scheduler: {
        Worker: {
          Policy: {
            Webhook: {
              Enabled: false,
              Endpoint: 'https://a.example.com/hook',
              TimeoutSeconds: 15,
              ApiKeyHeader: 'X-A',
            },
          },
        },
      },
    });
    const config = loadWebhookConfig({
      POLICY_WEBHOOK_CONFIG_FILE: path,
      POLICY_WEBHOOK_ENABLED: 'true',
      POLICY_WEBHOOK_ENDPOINT: 'https://b.example.com/hook',
      POLICY_WEBHOOK_API_KEY: 'from-env',
    });
    expect(config).toMatchObject({
      enabled: true,
      endpoint: new URL('https://b.example.com/hook'),
      timeoutSeconds: 15,
      apiKeyHeader: 'X-A',
      apiKey: 'from-env',
    });
  });

  it('treats a file without the webhook section as empty, and reports unreadable or invalid files', () => {
    expect(loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: configFile('other.json', { Scheduler: {} }) }).enabled).toBe(
      false,
    );
    expect(problemsOf({ POLICY_WEBHOOK_CONFIG_FILE: join(dir, 'missing.json') })).toEqual([
      expect.stringMatching(/^POLICY_WEBHOOK_CONFIG_FILE cannot be read/),
    ]);
    expect(problemsOf({ POLICY_WEBHOOK_CONFIG_FILE: configFile('broken.json', '{ "Scheduler": ') })).toEqual([
      expect.stringMatching(/^POLICY_WEBHOOK_CONFIG_FILE is not valid JSON/),
    ]);
  });

  it('names the file key of a wrongly typed file value', () => {
    const path = configFile('typed.json', {
      Scheduler: { Worker: { Policy: { Webhook: { Enabled: 'sometimes', TimeoutSeconds: 0 } } } },
    });
    const problems = problemsOf({ POLICY_WEBHOOK_CONFIG_FILE: path });
    expect(problems).toContainEqual(
      expect.stringContaining('Scheduler:Worker:Policy:Webhook:Enabled must be true or false'),
    );
    expect(problems).toContainEqual(
      expect.stringContaining('Scheduler:Worker:Policy:Webhook:TimeoutSeconds must be an integer between 1 and 300'),
    );
  });

  it('accepts an injected readFile', () => {
    const readFile = (path: string) =>
      path === '/etc/stellaops/scheduler.json'
        ? JSON.stringify({ Scheduler: { Worker: { Policy: { Webhook: { Enabled: false, TimeoutSeconds: 42 } } } } })
        : '';
    expect(loadWebhookConfig({ POLICY_WEBHOOK_CONFIG_FILE: '/etc/stellaops/scheduler.json' }, readFile)).toEqual({
      enabled: false,
      timeoutSeconds: 42,
      maxAttempts: 5,
    });
  });

  describe('endpoint', () => {
    it('is required when enabled', () => {
      expect(problemsOf({ POLICY_WEBHOOK_ENABLED: 'true' })).toEqual([
        expect.stringMatching(/^POLICY_WEBHOOK_ENDPOINT .*is required when the webhook is enabled/),
      ]);
    });

    it('must be absolute', () => {
      expect(problemsOf({ ...enabled, POLICY_WEBHOOK_ENDPOINT: '/hooks/policy' })).toEqual([
        expect.stringMatching(/^POLICY_WEBHOOK_ENDPOINT must be an absolute URL/),
      ]);
    });

    it('must be https, except plain http to loopback hosts', () => {
      for (const endpoint of ['http://hooks.example.com/policy', 'http://10.0.0.5:8080/hook', 'http://[::2]/hook']) {
        expect(problemsOf({ ...enabled, POLICY_WEBHOOK_ENDPOINT: endpoint })).toEqual([
          expect.stringMatching(/^POLICY_WEBHOOK_ENDPOINT must use https/),
        ]);
      }
      expect(problemsOf({ ...enabled, POLICY_WEBHOOK_ENDPOINT: 'ftp://hooks.example.com/x' })).toEqual([
        expect.stringMatching(/^POLICY_WEBHOOK_ENDPOINT must be an https URL/),
      ]);
      for (const endpoint of [
        'http://127.0.0.1:8080/hook',
        'http://127.10.20.30/hook',
        'http://[::1]:9000/hook',
        'http://localhost:3000/hook',
        'http://LOCALHOST/hook',
      ]) {
        expect(loadWebhookConfig({ ...enabled, POLICY_WEBHOOK_ENDPOINT: endpoint }).endpoint?.href).toBe(
          new URL(endpoint).href,
        );
      }
    });
  });

  describe('API key header', () => {
    it('goes with the API key: one without the other is an error', () => {
      expect(problemsOf({ ...enabled, POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key' })).toEqual([
        'POLICY_WEBHOOK_API_KEY (Scheduler:Worker:Policy:Webhook:ApiKey) is required when POLICY_WEBHOOK_API_KEY_HEADER is set',
      ]);
      expect(problemsOf({ ...enabled, POLICY_WEBHOOK_API_KEY: 'k' })).toEqual([
        'POLICY_WEBHOOK_API_KEY_HEADER (Scheduler:Worker:Policy:Webhook:ApiKeyHeader) is required when POLICY_WEBHOOK_API_KEY is set',
      ]);
    });

    it('must be a valid header name the sender does not set itself', () => {
      expect(
        problemsOf({ ...enabled, POLICY_WEBHOOK_API_KEY_HEADER: 'X Api Key', POLICY_WEBHOOK_API_KEY: 'k' }),
      ).toEqual([expect.stringMatching(/^POLICY_WEBHOOK_API_KEY_HEADER must be a valid HTTP header name/)]);
      expect(
        problemsOf({ ...enabled, POLICY_WEBHOOK_API_KEY_HEADER: 'X-StellaOps-Run-Id', POLICY_WEBHOOK_API_KEY: 'k' }),
      ).toEqual([expect.stringMatching(/^POLICY_WEBHOOK_API_KEY_HEADER must not be a header the webhook sets/)]);
    });

    it('never quotes the API key or the signing secret in messages', () => {
      const problems = problemsOf({
        ...enabled,
        POLICY_WEBHOOK_API_KEY_HEADER: 'X-Api-Key',
        POLICY_WEBHOOK_API_KEY: 'top\u0001secret',
        POLICY_WEBHOOK_SIGNING_SECRET: 'whsec_not*base64',
      });
      expect(problems).toHaveLength(2);
      expect(problems.join('\n')).not.toMatch(/top|not\*base64/);
      expect(problems).toContainEqual(
        expect.stringMatching(/^POLICY_WEBHOOK_SIGNING_SECRET must be a Standard Webhooks/),
      );
    });
  });

  it('bounds the timeout to 1..300 seconds', () => {
    expect(loadWebhookConfig({ POLICY_WEBHOOK_TIMEOUT_SECONDS: '1' }).timeoutSeconds).toBe(1);
    expect(loadWebhookConfig({ POLICY_WEBHOOK_TIMEOUT_SECONDS: '300' }).timeoutSeconds).toBe(300);
    for (const value of ['0', '301', '-5', '2.5', 'ten']) {
      expect(problemsOf({ POLICY_WEBHOOK_TIMEOUT_SECONDS: value })).toEqual([
        `POLICY_WEBHOOK_TIMEOUT_SECONDS must be an integer between 1 and 300 (got "${value}")`,
      ]);
    }
  });

  it('bounds max attempts to 1..20', () => {
    expect(loadWebhookConfig({ POLICY_WEBHOOK_MAX_ATTEMPTS: '20' }).maxAttempts).toBe(20);
    expect(problemsOf({ POLICY_WEBHOOK_MAX_ATTEMPTS: '0' })).toEqual([
      expect.stringMatching(/^POLICY_WEBHOOK_MAX_ATTEMPTS must be an integer between 1 and 20/),
    ]);
    expect(problemsOf({ POLICY_WEBHOOK_MAX_ATTEMPTS: '21' })).toHaveLength(1);
  });

  it('requires a signing secret that decodes', () => {
    expect(loadWebhookConfig({ POLICY_WEBHOOK_SIGNING_SECRET: SECRET }).signingSecret).toBe(SECRET);
    for (const secret of ['whsec_', 'whsec_!!!!', 'whsec_YWJ']) {
      expect(problemsOf({ POLICY_WEBHOOK_SIGNING_SECRET: secret })).toEqual([
        expect.stringMatching(/^POLICY_WEBHOOK_SIGNING_SECRET must be a Standard Webhooks secret/),
      ]);
    }
  });

  it('lists every problem in one error whose message names each setting', () => {
    let error: unknown;
    try {
      loadWebhookConfig({
        POLICY_WEBHOOK_ENABLED: 'true',
        POLICY_WEBHOOK_ENDPOINT: 'http://hooks.example.com',
        POLICY_WEBHOOK_TIMEOUT_SECONDS: '0',
        POLICY_WEBHOOK_API_KEY: 'k',
        POLICY_WEBHOOK_MAX_ATTEMPTS: '99',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookConfigError);
    const { message, name, problems } = error as WebhookConfigError;
    expect(name).toBe('WebhookConfigError');
    expect(problems).toHaveLength(4);
    for (const setting of [
      'POLICY_WEBHOOK_ENDPOINT',
      'POLICY_WEBHOOK_TIMEOUT_SECONDS',
      'POLICY_WEBHOOK_API_KEY_HEADER',
      'POLICY_WEBHOOK_MAX_ATTEMPTS',
    ]) {
      expect(message).toContain(setting);
    }
  });
});
