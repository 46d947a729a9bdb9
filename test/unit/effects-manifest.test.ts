import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import {
  assertSagaEffectsDeclared,
  backoffDelayMs,
  BUILT_IN_CALL_POLICY,
  BUNDLED_EFFECTS_MANIFEST,
  callPolicyOf,
  schemaProblem,
  checkUrlTemplate,
  EffectsManifestError,
  expandUrlTemplate,
  fieldOf,
  isLastAttempt,
  loadEffectsManifest,
  parseEffectsManifest,
  referenceServicesUrlOf,
  UrlTemplateError,
  type EffectsManifest,
  type SecretSources,
} from '../../activities/sagas/effects-manifest.js';
import { loadConfig } from '../../core/config.js';
import { SAGAS } from '../../workflows/sagas/registry.js';
import { effectsDepsFromConfig } from '../../workers/main.js';
import { memoryLogger } from '../support/logger.js';

const SECRETS: SecretSources = {
  readSecretFile: (path) => {
    if (path === '/run/secrets/impact-token') return 'file-secret-value\n';
    if (path === '/run/secrets/bad') return 'two\nlines';
    throw Object.assign(new Error(`ENOENT: no such file ${path}`), { code: 'ENOENT' });
  },
  environmentSecret: (name) => ({ IMPACT_KEY: 'env-secret-value', BAD_KEY: 'bad\u0001value' })[name],
};

const parse = (text: string, source = 'effects.yaml', secrets: SecretSources = SECRETS) =>
  parseEffectsManifest(text, { source, referenceServicesUrl: 'http://127.0.0.1:3200/', ...secrets });

/** The problems the manifest text is refused with (it must be). */
function problemsOf(text: string, source = 'effects.yaml'): string[] {
  try {
    parse(text, source);
  } catch (error) {
    expect(error).toBeInstanceOf(EffectsManifestError);
    const problems = (error as EffectsManifestError).problems;
    expect((error as Error).message).toContain(`Invalid effects manifest ${source}`);
    for (const problem of problems) expect(problem.startsWith(`${source}: `)).toBe(true);
    return problems.map((p) => p.slice(source.length + 2));
  }
  throw new Error('expected the manifest to be refused');
}

const provider = (fields: string) =>
  `providers:\n  - name: p\n    kind: http\n    url: https://p.example.com/x\n${fields}`;

describe('parseEffectsManifest', () => {
  it('applies defaults field by field, resolves secrets and the reference services placeholder', () => {
    const manifest = parse(`
defaults:
  timeoutMs: 2000
  retry: { initialIntervalMs: 100, maximumAttempts: 3 }
  breaker: { threshold: 2 }
gateway:
  retry: { maximumAttempts: 0 }
providers:
  - name: impact-index.resolve
    kind: http
    url: \${REFERENCE_SERVICES_URL}/impact/{tenantId}/{payload.advisoryId}?c={commandId}
    headers:
      x-api-key: { secretEnv: IMPACT_KEY }
      authorization: { secretFile: /run/secrets/impact-token }
      x-client: stellaops
  - name: mirror.publish
    kind: http
    method: PUT
    url: https://mirror.example.com/publish
    timeoutMs: 500
    retry: { backoffCoefficient: 3 }
    breaker: { halfOpenAfterMs: 700 }
`);
    expect(manifest.source).toBe('effects.yaml');
    expect(manifest.providers.get('impact-index.resolve')).toEqual({
      name: 'impact-index.resolve',
      kind: 'http',
      url: 'http://127.0.0.1:3200/impact/{tenantId}/{payload.advisoryId}?c={commandId}',
      upstream: 'http://127.0.0.1:3200',
      method: 'POST',
      headers: { 'x-api-key': 'env-secret-value', authorization: 'file-secret-value', 'x-client': 'stellaops' },
      timeoutMs: 2000,
      retry: { initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 60_000, maximumAttempts: 3 },
      breaker: { threshold: 2, halfOpenAfterMs: 30_000 },
    });
    expect(manifest.providers.get('mirror.publish')).toMatchObject({
      method: 'PUT',
      upstream: 'https://mirror.example.com',
      timeoutMs: 500,
      retry: { initialIntervalMs: 100, backoffCoefficient: 3, maximumIntervalMs: 60_000, maximumAttempts: 3 },
      breaker: { threshold: 2, halfOpenAfterMs: 700 },
    });
    expect(manifest.gateway).toEqual({
      timeoutMs: 2000,
      retry: { initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 60_000, maximumAttempts: 0 },
      breaker: { threshold: 2, halfOpenAfterMs: 30_000 },
    });
  });

  it('takes the built-in defaults without a defaults section, and reads JSON files as JSON', () => {
    const manifest = parse(
      JSON.stringify({ providers: [{ name: 'p', kind: 'http', url: 'https://p.example.com' }] }),
      'effects.json',
    );
    expect(manifest.gateway).toEqual(BUILT_IN_CALL_POLICY);
    expect(manifest.providers.get('p')).toMatchObject({ ...BUILT_IN_CALL_POLICY, method: 'POST', headers: {} });
  });

  it('refuses text that is not JSON or YAML, naming the format', () => {
    expect(problemsOf('{"providers": [', 'effects.json')[0]).toMatch(/^is not valid JSON \(/);
    expect(problemsOf('providers: [\n  - a: b', 'effects.yml')[0]).toMatch(/^is not valid YAML \(/);
  });

  it('reports every schema problem at once, one per field, naming the field', () => {
    expect(
      problemsOf(`
extra: 1
defaults: { timeoutMs: 50 }
providers:
  - name: 9bad
    kind: grpc
    url: https://p.example.com
    method: POST
  - kind: http
    url: ""
    method: TRACE
    timeoutMs: 1.5
    retry: { maximumAttempts: -1, jitter: true }
    breaker: { threshold: 0, halfOpenAfterMs: 3600001 }
    headers: { x-a: 5 }
  - "just a string"
`),
    ).toEqual([
      'extra is not a known field',
      'defaults.timeoutMs must be an integer between 100 and 300000 (got 50)',
      'providers[0].name must be an effect name ([A-Za-z][A-Za-z0-9._-]*) (got "9bad")',
      'providers[0].kind must be "http" (got "grpc")',
      'providers[1].name is required',
      'providers[1].url must be a non-empty string (got "")',
      'providers[1].method must be one of POST, PUT, PATCH, DELETE, GET (got "TRACE")',
      'providers[1].headers["x-a"] must be a string, { secretFile: <path> } or { secretEnv: <NAME> } (got 5)',
      'providers[1].timeoutMs must be an integer between 100 and 300000 (got 1.5)',
      'providers[1].retry.jitter is not a known field',
      'providers[1].retry.maximumAttempts must be an integer between 0 and 1000 (got -1)',
      'providers[1].breaker.threshold must be an integer between 1 and 1000 (got 0)',
      'providers[1].breaker.halfOpenAfterMs must be an integer between 1 and 3600000 (got 3600001)',
      'providers[2] must be an object (got "just a string")',
    ]);
  });

  it('names what is missing or mistyped at the top level', () => {
    expect(problemsOf('')).toEqual(['the manifest must be an object (got null)']);
    expect(problemsOf('defaults: {}')).toEqual(['providers is required']);
    expect(problemsOf('providers: {}')).toEqual(['providers must be a list of providers (got {})']);
    expect(problemsOf(provider('    retry: { backoffCoefficient: 0.5 }\n'))).toEqual([
      'providers[0].retry.backoffCoefficient must be a number between 1 and 10 (got 0.5)',
    ]);
    expect(problemsOf(provider('    retry: { initialIntervalMs: "1s" }\n'))).toEqual([
      'providers[0].retry.initialIntervalMs must be an integer between 1 and 3600000 (got "1s")',
    ]);
  });

  it('allows only the reference services placeholder, and says so for any other', () => {
    expect(
      problemsOf(`
providers:
  - name: p
    kind: http
    url: \${GATEWAY_URL}/x
    headers: { x-a: "\${SECRET}", x-b: "\${REFERENCE_SERVICES_URL}", x-c: "\${open" }
`),
    ).toEqual([
      'providers[0].url uses "${GATEWAY_URL}": the only placeholder is ${REFERENCE_SERVICES_URL}',
      'providers[0].headers["x-a"] uses "${SECRET}": the only placeholder is ${REFERENCE_SERVICES_URL}',
      'providers[0].headers["x-c"] uses "${open": the only placeholder is ${REFERENCE_SERVICES_URL}',
    ]);
  });

  it('checks each URL template: placeholders, host, the outbound URL policy', () => {
    const manifest = `
providers:
  - { name: a, kind: http, url: "https://a.example.com/{tenant}/{payload.}/{payload.x-y}" }
  - { name: b, kind: http, url: "https://{tenantId}.example.com/x" }
  - { name: c, kind: http, url: "http://mirror.example.com/x" }
  - { name: d, kind: http, url: "https://user:pw@d.example.com/x" }
  - { name: e, kind: http, url: "ftp://e.example.com/x" }
  - { name: f, kind: http, url: "not a url" }
  - { name: g, kind: http, url: "https://g.example.com/{payload.id}?t={tenantId}&c={commandId}" }
`;
    const problems = problemsOf(manifest);
    expect(problems.slice(0, 3)).toEqual([
      'providers[0].url has an unknown placeholder {tenant} (use {tenantId}, {commandId} or {payload.<field>})',
      'providers[0].url has an unknown placeholder {payload.} (use {tenantId}, {commandId} or {payload.<field>})',
      'providers[0].url has an unknown placeholder {payload.x-y} (use {tenantId}, {commandId} or {payload.<field>})',
    ]);
    expect(problems[3]).toBe('providers[1].url may have placeholders in its path and query only, not in its host');
    expect(problems[4]).toMatch(/^providers\[2\]\.url must use https \(plain http is allowed only for loopback/);
    expect(problems[5]).toBe('providers[3].url must not carry credentials');
    expect(problems[6]).toBe('providers[4].url must be an https URL (got protocol "ftp:")');
    expect(problems[7]).toBe('providers[5].url must be an absolute URL');
    expect(problems).toHaveLength(8);
  });

  it('checks headers: names, reserved names, repeats, literal values, secrets, without quoting a secret', () => {
    const problems = problemsOf(
      provider(`    headers:
      "bad name": x
      Idempotency-Key: mine
      x-dup: one
      X-Dup: two
      x-literal: "caf\u00e9"
      x-empty: ""
      x-relative: { secretFile: run/secrets/x }
      x-missing-file: { secretFile: /run/secrets/missing }
      x-bad-file: { secretFile: /run/secrets/bad }
      x-bad-name: { secretEnv: "1NAME" }
      x-unset: { secretEnv: UNSET_KEY }
      x-bad-env: { secretEnv: BAD_KEY }
      x-empty-ref: { secretEnv: "" }
`),
    );
    expect(problems).toEqual([
      'providers[0].headers["x-empty-ref"] must be a string, { secretFile: <path> } or { secretEnv: <NAME> } (got {"secretEnv":""})',
    ]);
    const rest = problemsOf(
      provider(`    headers:
      "bad name": x
      Idempotency-Key: mine
      x-dup: one
      X-Dup: two
      x-literal: "caf\u00e9"
      x-empty: ""
      x-relative: { secretFile: run/secrets/x }
      x-missing-file: { secretFile: /run/secrets/missing }
      x-bad-file: { secretFile: /run/secrets/bad }
      x-bad-name: { secretEnv: "1NAME" }
      x-unset: { secretEnv: UNSET_KEY }
      x-bad-env: { secretEnv: BAD_KEY }
`),
    );
    expect(rest).toEqual([
      'providers[0].headers: "bad name" is not a valid header name',
      'providers[0].headers["Idempotency-Key"] is set by the effect activities themselves',
      'providers[0].headers["X-Dup"] repeats a header (names are case-insensitive)',
      'providers[0].headers["x-literal"] must be non-empty visible ASCII',
      'providers[0].headers["x-empty"] must be non-empty visible ASCII',
      'providers[0].headers["x-relative"].secretFile must be an absolute path (got "run/secrets/x")',
      'providers[0].headers["x-missing-file"]: the secret file /run/secrets/missing cannot be read (ENOENT)',
      'providers[0].headers["x-bad-file"]: the secret must be non-empty visible ASCII',
      'providers[0].headers["x-bad-name"].secretEnv must be an environment variable name (got "1NAME")',
      'providers[0].headers["x-unset"]: the environment variable UNSET_KEY is not set',
      'providers[0].headers["x-bad-env"]: the secret must be non-empty visible ASCII',
    ]);
    expect(rest.join('\n')).not.toContain('two\nlines');
    expect(rest.join('\n')).not.toContain('bad\u0001value');
  });

  it('names a secret file that fails without an error code', () => {
    expect(() =>
      parse(provider('    headers: { x-a: { secretFile: /run/secrets/x } }\n'), 'm.yaml', {
        ...SECRETS,
        readSecretFile: () => {
          throw new Error('boom');
        },
      }),
    ).toThrow(/m\.yaml: providers\[0\]\.headers\["x-a"\]: the secret file \/run\/secrets\/x cannot be read$/);
  });

  it('refuses repeated names, contradictory intervals, and two breakers for one upstream', () => {
    expect(
      problemsOf(`
defaults: { retry: { initialIntervalMs: 5000, maximumIntervalMs: 1000 } }
gateway: { retry: { initialIntervalMs: 10, maximumIntervalMs: 5 } }
providers:
  - { name: a, kind: http, url: "https://up.example.com/a", retry: { maximumIntervalMs: 5000 } }
  - { name: a, kind: http, url: "https://up.example.com/b" }
  - { name: b, kind: http, url: "https://up.example.com/c", breaker: { threshold: 9 }, retry: { maximumIntervalMs: 9000 } }
  - { name: c, kind: http, url: "https://UP.example.com:443/d", retry: { maximumIntervalMs: 9000 } }
  - { name: d, kind: http, url: "https://other.example.com/d", breaker: { threshold: 9 }, retry: { maximumIntervalMs: 4000 } }
`),
    ).toEqual([
      'defaults.retry.maximumIntervalMs must be at least initialIntervalMs (1000 < 5000)',
      'gateway.retry.maximumIntervalMs must be at least initialIntervalMs (5 < 10)',
      'providers[1].name repeats the effect "a"',
      'providers[2].breaker must equal providers[0].breaker: both call https://up.example.com, and one breaker guards one upstream',
      'providers[4].retry.maximumIntervalMs must be at least initialIntervalMs (4000 < 5000)',
    ]);
  });

  it('accepts a gateway section that is consistent, and a provider that repeats its upstream’s breaker', () => {
    const manifest = parse(`
gateway: { timeoutMs: 700 }
providers:
  - { name: a, kind: http, url: "https://up.example.com/a", breaker: { threshold: 3 } }
  - { name: b, kind: http, url: "https://up.example.com/b", breaker: { threshold: 3, halfOpenAfterMs: 30000 } }
`);
    expect([...manifest.providers.keys()]).toEqual(['a', 'b']);
    expect(manifest.gateway.timeoutMs).toBe(700);
  });
});

describe('parseEffectsManifest: every check on its own', () => {
  it('names its error class, and quotes long values shortened', () => {
    let error: unknown;
    try {
      parse(provider(`    method: "${'X'.repeat(100)}"\n`));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EffectsManifestError);
    expect((error as Error).name).toBe('EffectsManifestError');
    expect((error as EffectsManifestError).problems).toEqual([
      `effects.yaml: providers[0].method must be one of POST, PUT, PATCH, DELETE, GET (got "${'X'.repeat(76)}...)`,
    ]);
    // Exactly 80 characters are shown as they are.
    expect(problemsOf(provider(`    method: "${'Y'.repeat(78)}"\n`))).toEqual([
      `providers[0].method must be one of POST, PUT, PATCH, DELETE, GET (got "${'Y'.repeat(78)}")`,
    ]);
  });

  it('refuses unknown fields at every level', () => {
    expect(
      problemsOf(`
defaults: { retries: 3, breaker: { open: true } }
gateway: { url: "https://gw.example.com" }
providers:
  - name: p
    kind: http
    url: https://p.example.com
    timeout: 5
    headers: { x-a: { secretFile: /s, mode: 1 }, x-b: { secretEnv: B, file: x } }
`),
    ).toEqual([
      'defaults.retries is not a known field',
      'defaults.breaker.open is not a known field',
      'gateway.url is not a known field',
      'providers[0].timeout is not a known field',
      'providers[0].headers["x-a"] must be a string, { secretFile: <path> } or { secretEnv: <NAME> } (got {"secretFile":"/s","mode":1})',
      'providers[0].headers["x-b"] must be a string, { secretFile: <path> } or { secretEnv: <NAME> } (got {"secretEnv":"B","file":"x"})',
    ]);
    expect(problemsOf(provider('    headers: [1]\n'))).toEqual([
      'providers[0].headers must be a map of header names to values (got [1])',
    ]);
  });

  it('checks every bounded setting against its own bounds', () => {
    expect(
      problemsOf(`
defaults:
  timeoutMs: 300001
  retry: { initialIntervalMs: 0, backoffCoefficient: 11, maximumIntervalMs: 86400001, maximumAttempts: 1001 }
  breaker: { threshold: 1001, halfOpenAfterMs: 0 }
providers: []
`),
    ).toEqual([
      'defaults.timeoutMs must be an integer between 100 and 300000 (got 300001)',
      'defaults.retry.initialIntervalMs must be an integer between 1 and 3600000 (got 0)',
      'defaults.retry.backoffCoefficient must be a number between 1 and 10 (got 11)',
      'defaults.retry.maximumIntervalMs must be an integer between 1 and 86400000 (got 86400001)',
      'defaults.retry.maximumAttempts must be an integer between 0 and 1000 (got 1001)',
      'defaults.breaker.threshold must be an integer between 1 and 1000 (got 1001)',
      'defaults.breaker.halfOpenAfterMs must be an integer between 1 and 3600000 (got 0)',
    ]);
    expect(problemsOf('gateway: { timeoutMs: 99 }\nproviders: []')).toEqual([
      'gateway.timeoutMs must be an integer between 100 and 300000 (got 99)',
    ]);
  });

  it('accepts the bounds themselves', () => {
    const manifest = parse(`
defaults:
  timeoutMs: 100
  retry: { initialIntervalMs: 1, backoffCoefficient: 1, maximumIntervalMs: 1, maximumAttempts: 0 }
  breaker: { threshold: 1, halfOpenAfterMs: 1 }
providers:
  - { name: a, kind: http, url: "https://a.example.com", timeoutMs: 300000, retry: { initialIntervalMs: 3600000, backoffCoefficient: 10, maximumIntervalMs: 86400000, maximumAttempts: 1000 }, breaker: { threshold: 1000, halfOpenAfterMs: 3600000 } }
  - { name: b, kind: http, method: GET, url: "https://b.example.com" }
  - { name: c, kind: http, method: DELETE, url: "https://c.example.com" }
  - { name: d, kind: http, method: PATCH, url: "https://d.example.com" }
`);
    expect(manifest.providers.get('a')).toMatchObject({
      timeoutMs: 300_000,
      retry: {
        initialIntervalMs: 3_600_000,
        backoffCoefficient: 10,
        maximumIntervalMs: 86_400_000,
        maximumAttempts: 1000,
      },
      breaker: { threshold: 1000, halfOpenAfterMs: 3_600_000 },
    });
    expect(['b', 'c', 'd'].map((name) => manifest.providers.get(name)?.method)).toEqual(['GET', 'DELETE', 'PATCH']);
  });

  it('refuses each header the activities set themselves, whatever its case', () => {
    const reserved = [
      'Content-Type',
      'content-length',
      'Host',
      'idempotency-key',
      'X-Tenant-Id',
      'x-correlation-id',
      'Traceparent',
    ];
    const headers = reserved.map((name) => `"${name}": v`).join(', ');
    expect(problemsOf(provider(`    headers: { ${headers} }\n`))).toEqual(
      reserved.map((name) => `providers[0].headers["${name}"] is set by the effect activities themselves`),
    );
  });

  it('checks a secretEnv name in full, and breakers field by field', () => {
    expect(problemsOf(provider('    headers: { x-a: { secretEnv: "MY-KEY" } }\n'))).toEqual([
      'providers[0].headers["x-a"].secretEnv must be an environment variable name (got "MY-KEY")',
    ]);
    expect(
      problemsOf(`
providers:
  - { name: a, kind: http, url: "https://up.example.com/a", breaker: { halfOpenAfterMs: 10 } }
  - { name: b, kind: http, url: "https://up.example.com/b", breaker: { halfOpenAfterMs: 20 } }
`),
    ).toEqual([
      'providers[1].breaker must equal providers[0].breaker: both call https://up.example.com, and one breaker guards one upstream',
    ]);
  });

  it('skips the upstream checks of a URL with an unknown placeholder', () => {
    expect(
      problemsOf(`
providers:
  - { name: a, kind: http, url: "https://up.example.com/{bad}", breaker: { threshold: 1 } }
  - { name: b, kind: http, url: "https://up.example.com/b", breaker: { threshold: 2 } }
`),
    ).toEqual(['providers[0].url has an unknown placeholder {bad} (use {tenantId}, {commandId} or {payload.<field>})']);
  });

  it('names the format by the file’s extension and quotes the parser’s first line', () => {
    expect(problemsOf('{"providers": [', 'effects.json.yaml')).toEqual([
      'is not valid YAML (Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 16:)',
    ]);
    // JSON.parse words its errors differently from one Node version to the next.
    expect(problemsOf('{"providers": [', 'EFFECTS.JSON')[0]).toMatch(/^is not valid JSON \(.+\)$/);
  });

  it('reports an invalid defaults policy once when there is no gateway section', () => {
    expect(problemsOf('defaults: { retry: { initialIntervalMs: 10, maximumIntervalMs: 5 } }\nproviders: []')).toEqual([
      'defaults.retry.maximumIntervalMs must be at least initialIntervalMs (5 < 10)',
    ]);
  });

  it('names fields whose keys hold ~ or /, and payload placeholders only as a whole', () => {
    expect(problemsOf(provider('    headers: { "x~a/b": "${X}" }\n'))).toEqual([
      'providers[0].headers["x~a/b"] uses "${X}": the only placeholder is ${REFERENCE_SERVICES_URL}',
    ]);
    expect(problemsOf(provider('').replace('/x', '/{xpayload.a}'))).toEqual([
      'providers[0].url has an unknown placeholder {xpayload.a} (use {tenantId}, {commandId} or {payload.<field>})',
    ]);
  });

  it('words a schema error without its own description after the schema’s message', () => {
    expect(
      schemaProblem({
        type: ValueErrorType.String,
        schema: Type.String(),
        path: '/a/0',
        value: 1,
        message: 'Expected string',
        errors: [],
      }),
    ).toBe('a[0] must be string (got 1)');
  });
});

describe('loadEffectsManifest', () => {
  it('loads the bundled manifest: every effect of every registered saga on the reference services', () => {
    const manifest = loadEffectsManifest({ referenceServicesUrl: 'http://127.0.0.1:4321' });
    expect(manifest.source).toBe(BUNDLED_EFFECTS_MANIFEST);
    expect(() => assertSagaEffectsDeclared(manifest, SAGAS)).not.toThrow();
    for (const p of manifest.providers.values()) {
      expect(p.upstream).toBe('http://127.0.0.1:4321');
      expect(p.url.startsWith('http://127.0.0.1:4321/providers/')).toBe(true);
    }
    expect(manifest.gateway.retry.maximumAttempts).toBe(0);
  });

  it('names the file it cannot read, with and without an error code', () => {
    expect(() => loadEffectsManifest({ path: '/nonexistent/effects.yaml', referenceServicesUrl: 'http://x' })).toThrow(
      '/nonexistent/effects.yaml: cannot be read (ENOENT): set EFFECTS_MANIFEST to a readable file',
    );
    expect(() =>
      loadEffectsManifest({
        path: 'e.yaml',
        referenceServicesUrl: 'http://x',
        readFile: () => {
          throw new Error('nope');
        },
      }),
    ).toThrow('e.yaml: cannot be read: set EFFECTS_MANIFEST to a readable file');
  });

  it('reads the file and secrets through the given readers', () => {
    const manifest = loadEffectsManifest({
      path: 'e.yaml',
      referenceServicesUrl: 'http://127.0.0.1:1',
      readFile: () => provider('    headers: { x-a: { secretEnv: K }, x-b: { secretFile: /s } }\n'),
      environmentSecret: (name) => (name === 'K' ? 'k-value' : undefined),
      readSecretFile: () => 's-value',
    });
    expect(manifest.providers.get('p')?.headers).toEqual({ 'x-a': 'k-value', 'x-b': 's-value' });
  });

  it('derives the placeholder from the configuration', () => {
    expect(referenceServicesUrlOf(loadConfig({ REFERENCE_SERVICES_PORT: '4555' }))).toBe('http://127.0.0.1:4555');
  });
});

describe('assertSagaEffectsDeclared', () => {
  it('names each saga and each effect no provider declares', () => {
    // Built inside the test (not at collection time), so mutation testing attributes its coverage to this test.
    const manifest = parse(provider('')) satisfies EffectsManifest;
    expect(() =>
      assertSagaEffectsDeclared(manifest, [
        { name: 'one', effects: ['p', 'q'] },
        { name: 'two', effects: ['r'] },
      ]),
    ).toThrow(
      'effects.yaml: the saga one calls the effect q, which no provider declares\n  - effects.yaml: the saga two calls the effect r, which no provider declares',
    );
    expect(() => assertSagaEffectsDeclared(manifest, [{ name: 'one', effects: ['p'] }])).not.toThrow();
  });
});

describe('URL templates', () => {
  it('refuses a placeholder it does not know (a template that was not validated)', () => {
    expect(() => expandUrlTemplate('https://h/{foo}', { tenantId: 't', commandId: 'c', payload: {} })).toThrow(
      new UrlTemplateError('the payload needs  (a string, number or boolean) for {foo}'),
    );
    try {
      expandUrlTemplate('https://h/{payload.x}', { tenantId: 't', commandId: 'c', payload: {} });
    } catch (error) {
      expect((error as Error).name).toBe('UrlTemplateError');
    }
  });

  it('fills placeholders URL-encoded; a payload without the field is refused', () => {
    const values = { tenantId: 'acme/eu', commandId: 'a:b c', payload: { id: 'x?y', n: 3, ok: false, o: {} } };
    expect(expandUrlTemplate('https://h/{tenantId}/{payload.id}/{payload.n}/{payload.ok}?c={commandId}', values)).toBe(
      'https://h/acme%2Feu/x%3Fy/3/false?c=a%3Ab%20c',
    );
    expect(() => expandUrlTemplate('https://h/{payload.o}', values)).toThrow(UrlTemplateError);
    expect(() => expandUrlTemplate('https://h/{payload.missing}', values)).toThrow(
      'the payload needs missing (a string, number or boolean) for {payload.missing}',
    );
  });

  it('returns the upstream of a valid template', () => {
    const problems: string[] = [];
    expect(checkUrlTemplate('https://H.example.com:8443/{payload.a}', 'f', problems)).toBe(
      'https://h.example.com:8443',
    );
    expect(problems).toEqual([]);
  });
});

describe('retry arithmetic', () => {
  const retry = { initialIntervalMs: 100, backoffCoefficient: 3, maximumIntervalMs: 2000, maximumAttempts: 4 };
  it('grows exponentially from the first attempt and is capped', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelayMs(retry, attempt))).toEqual([100, 300, 900, 2000, 2000]);
    expect(backoffDelayMs(retry, 0)).toBe(100);
    expect(backoffDelayMs({ ...retry, backoffCoefficient: 1.5 }, 2)).toBe(150);
  });
  it('knows the last attempt; 0 attempts never ends', () => {
    expect([3, 4, 5].map((a) => isLastAttempt(retry, a))).toEqual([false, true, true]);
    expect(isLastAttempt({ ...retry, maximumAttempts: 0 }, 10_000)).toBe(false);
  });
  it('merges a policy field by field', () => {
    expect(callPolicyOf(BUILT_IN_CALL_POLICY, undefined)).toEqual(BUILT_IN_CALL_POLICY);
    expect(callPolicyOf(BUILT_IN_CALL_POLICY, { retry: { maximumAttempts: 2 } }).retry).toEqual({
      ...BUILT_IN_CALL_POLICY.retry,
      maximumAttempts: 2,
    });
  });
});

describe('fieldOf', () => {
  it('writes JSON pointers as field paths', () => {
    expect(fieldOf('')).toBe('the manifest');
    expect(fieldOf('/providers/2/timeoutMs')).toBe('providers[2].timeoutMs');
    expect(fieldOf('/providers/0/headers/x-a~1b~0c')).toBe('providers[0].headers["x-a/b~c"]');
    expect(fieldOf('/a/$b_1')).toBe('a.$b_1');
    expect(fieldOf('/a/1b')).toBe('a["1b"]');
    expect(fieldOf('/a/12')).toBe('a[12]');
  });
});

describe('worker start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'effects-manifest-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('loads the bundled manifest for the effects and saga queues, with the Gateway of the configuration', () => {
    const { logger, records } = memoryLogger();
    const deps = effectsDepsFromConfig(
      loadConfig({ WORKER_QUEUES: 'saga', GATEWAY_URL: 'https://gw.example.com/' }),
      logger,
    );
    expect(deps?.gatewayUrl).toBe('https://gw.example.com');
    expect(deps?.manifest.current().source).toBe(BUNDLED_EFFECTS_MANIFEST);
    expect(records.find((r) => r.msg === 'effects manifest loaded')).toMatchObject({
      manifest: BUNDLED_EFFECTS_MANIFEST,
    });
    expect(effectsDepsFromConfig(loadConfig({ WORKER_QUEUES: 'effects' }), logger)?.gatewayUrl).toBe(
      'http://127.0.0.1:3200',
    );
  });

  it('does not load a manifest for workers of other queues', () => {
    const env = { WORKER_QUEUES: 'policy-simulation,pack-approval', EFFECTS_MANIFEST: '/nonexistent.yaml' };
    expect(effectsDepsFromConfig(loadConfig(env), memoryLogger().logger)).toBeUndefined();
  });

  it('fails naming the file and the field, or the saga whose effect is missing', () => {
    const invalid = file(
      'invalid.yaml',
      'providers:\n  - { name: p, kind: http, url: "https://p.example.com", timeoutMs: 1 }\n',
    );
    expect(() => effectsDepsFromConfig(loadConfig({ EFFECTS_MANIFEST: invalid }), memoryLogger().logger)).toThrow(
      `${invalid}: providers[0].timeoutMs must be an integer between 100 and 300000 (got 1)`,
    );
    const partial = file(
      'partial.json',
      JSON.stringify({ providers: [{ name: 'impact-index.resolve', kind: 'http', url: 'https://i.example.com' }] }),
    );
    expect(() => effectsDepsFromConfig(loadConfig({ EFFECTS_MANIFEST: partial }), memoryLogger().logger)).toThrow(
      `${partial}: the saga mirror-bundle-export calls the effect mirror.reserve-quota, which no provider declares`,
    );
  });

  it('reads secretEnv from the environment by default', () => {
    process.env.EFFECTS_TEST_SECRET = 'env-value';
    try {
      const manifest = loadEffectsManifest({
        path: 'e.yaml',
        referenceServicesUrl: 'http://127.0.0.1:1',
        readFile: () => provider('    headers: { x-a: { secretEnv: EFFECTS_TEST_SECRET } }\n'),
      });
      expect(manifest.providers.get('p')?.headers).toEqual({ 'x-a': 'env-value' });
    } finally {
      delete process.env.EFFECTS_TEST_SECRET;
    }
  });

  it('reads secret files from disk, without their trailing newline', () => {
    const secret = file('token', 'disk-secret\n');
    const manifest = loadEffectsManifest({
      path: file('m.yaml', provider(`    headers: { authorization: { secretFile: ${secret} } }\n`)),
      referenceServicesUrl: 'http://127.0.0.1:1',
    });
    expect(manifest.providers.get('p')?.headers).toEqual({ authorization: 'disk-secret' });
  });
});
