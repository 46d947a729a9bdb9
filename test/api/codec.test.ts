/**
 * The codec endpoint (`POST /codec/decode`, `POST /codec/encode`) with real AES-256-GCM keys, on an API that listens
 * and a dev server whose Web UI is pointed at it as `npm start` points it: payloads round-trip through the endpoints,
 * the `temporal` CLI shows a workflow's encrypted input decoded, only an operator's token (or, with `trustLocalUi`,
 * the embedded Web UI from this machine) decodes, CORS answers the Web UI's origins only, bad input answers 400 before
 * anything is decoded, and an undecodable payload answers 422 naming its key id, never key material.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import type { CodecPayload, CodecPayloads } from '../../api/schemas/codec.js';
import { CODEC_BODY_LIMIT_BYTES, MAX_CODEC_DATA_LENGTH, MAX_CODEC_PAYLOADS } from '../../api/schemas/codec.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import {
  createPayloadCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  type PayloadCodecKey,
} from '../../core/payload-codec.js';
import { ALL_SCOPES, Scope } from '../../core/scopes.js';
import { resolveTemporalCli } from '../../stack/binaries.js';
import { startDevServer, type DevServerHandle } from '../../stack/temporal.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from '../support/auth.js';
import { injectAs } from '../support/api.js';
import { memoryLogger, type MemoryLogger } from '../support/logger.js';
import { freePort } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { uniqueName } from '../support/temporal.js';

const DECODE = '/codec/decode';
const ENCODE = '/codec/encode';
const SECRET = 'sbom-payments-api-finding-CVE-2026-0001-secret-marker';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const previousKey: PayloadCodecKey = { id: 'codec-test-1', key: randomBytes(32) };
const currentKey: PayloadCodecKey = { id: 'codec-test-2', key: randomBytes(32) };
const foreignKey: PayloadCodecKey = { id: 'elsewhere-7', key: randomBytes(32) };
const codec = createPayloadCodec([previousKey, currentKey]);
/** Key material as it could leak: raw bytes in base64, base64url and hex. */
const keyTexts = [previousKey, currentKey, foreignKey].flatMap(({ key }) => [
  key.toString('base64'),
  key.toString('base64url'),
  key.toString('hex'),
]);

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const text = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');
/** A payload as the SDK's JSON converter writes it, in proto3 JSON. */
const jsonPayload = (value: unknown): CodecPayload => ({
  metadata: { encoding: b64('json/plain') },
  data: b64(JSON.stringify(value)),
});
/** A codec's payload in proto3 JSON. */
const wire = (payload: Payload): CodecPayload => ({
  metadata: Object.fromEntries(
    Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  ),
  data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
});
/** `value` encrypted by `by` (the API's codec unless told), in proto3 JSON. */
const encrypted = async (value: unknown, by: PayloadCodec = codec): Promise<CodecPayload> => {
  const [payload] = await by.encode([
    { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) },
  ]);
  return wire(payload!);
};

let db: TestDatabase;
let signer: TestSigner;
let operatorToken: string;
let temporalPort: number;
let uiPort: number;
let apiUrl: string;
/** The UI's origin as the browser sends it, and as npm start's configuration lists it. */
let uiOrigin: string;
let devServer: DevServerHandle;
const apps: { app: FastifyInstance; temporal: TemporalFacade }[] = [];
/** The API as production runs it (no trusted local UI). */
let app: FastifyInstance;
let appLog: MemoryLogger;
/** The API as npm start runs it, listening on `apiUrl`: the embedded Web UI trusted from this machine. */
let trusting: FastifyInstance;
let trustingLog: MemoryLogger;

async function codecApp(env: NodeJS.ProcessEnv, log: MemoryLogger): Promise<FastifyInstance> {
  const temporal = createTemporalFacade({
    address: `127.0.0.1:${temporalPort}`,
    namespace: 'default',
    dataConverter: { payloadCodecs: [codec] },
  });
  const built = await buildApp({
    // TEMPORAL_UI_PORT: the Web UI's origins are the configuration's defaults, as npm start has them.
    config: loadConfig({
      AUTH_JWT_ISSUER: TEST_ISSUER,
      AUTH_JWT_AUDIENCE: TEST_AUDIENCE,
      TEMPORAL_UI_PORT: String(uiPort),
      ...env,
    }),
    logger: log.logger,
    pool: db.pool,
    temporal,
    verifyToken: signer.verifier,
    payloadCodec: codec,
    packApprovalSecrets: { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() },
  });
  apps.push({ app: built, temporal });
  return built;
}

beforeAll(async () => {
  [db, signer, temporalPort, uiPort] = await Promise.all([
    createTestDatabase(),
    createTestSigner(),
    freePort(),
    freePort(),
  ]);
  uiOrigin = `http://127.0.0.1:${uiPort}`;
  operatorToken = await signer.token({ tenant: 'ops', scopes: [Scope.PayloadsDecode], subject: 'operator' });
  appLog = memoryLogger();
  trustingLog = memoryLogger();
  app = await codecApp({}, appLog);
  trusting = await codecApp({ CODEC_TRUST_LOCAL_UI: 'true' }, trustingLog);
  apiUrl = await trusting.listen({ host: '127.0.0.1', port: 0 });
  devServer = await startDevServer({
    ip: '127.0.0.1',
    port: temporalPort,
    uiPort,
    uiCodecEndpoint: `${apiUrl}/codec`,
    namespace: 'default',
  });
});

afterAll(async () => {
  for (const { app: built, temporal } of apps) {
    await built.close();
    await temporal.close();
  }
  await devServer?.stop();
  await db?.drop();
});

/** `POST path` on `target` with `body` as JSON and `headers`. */
const post = (target: FastifyInstance, path: string, body: unknown, headers: Record<string, string> = {}, extra = {}) =>
  target.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
    ...extra,
  } as InjectOptions);
const asOperator = (path: string, body: unknown) => injectAs(app, 'POST', path, operatorToken, body);

/** No log line of `log` carries key material or `secrets`. */
function expectNoSecretsIn(log: MemoryLogger, secrets: readonly string[]) {
  for (const line of log.lines) for (const secret of [...keyTexts, ...secrets]) expect(line).not.toContain(secret);
}

describe('encode and decode', () => {
  it('round-trips payloads through the endpoints: encode encrypts with the current key, decode restores them', async () => {
    const plain = [
      jsonPayload({ finding: SECRET }),
      jsonPayload([1, 2, 3]),
      { metadata: { encoding: b64('binary/null') } },
    ];
    const encodedRes = await asOperator(ENCODE, { payloads: plain });
    expect(encodedRes.statusCode).toBe(200);
    const encoded = encodedRes.json<CodecPayloads>().payloads;
    expect(encoded).toHaveLength(3);
    for (const payload of encoded) {
      expect(text(payload.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(payload.metadata?.[KEY_ID_METADATA])).toBe(currentKey.id);
      expect(text(payload.data)).not.toContain(SECRET);
    }

    const decodedRes = await asOperator(DECODE, { payloads: encoded });
    expect(decodedRes.statusCode).toBe(200);
    expect(decodedRes.headers['content-type']).toMatch(/^application\/json/);
    expect(decodedRes.json()).toEqual({ payloads: plain });
  });

  it('decodes payloads of an older key of the ring, and passes unencrypted payloads through unchanged', async () => {
    const older = createPayloadCodec([previousKey]);
    const plain = jsonPayload({ legacy: true });
    const res = await asOperator(DECODE, { payloads: [await encrypted({ rotated: 'yes' }, older), plain] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ payloads: [jsonPayload({ rotated: 'yes' }), plain] });
  });

  it('answers an empty list with an empty list', async () => {
    const res = await asOperator(DECODE, { payloads: [] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ payloads: [] });
  });

  it('reads URL-safe and unpadded base64, as proto3 JSON allows', async () => {
    const value = { bytes: '\u00ff\u00fe?>' };
    const data = Buffer.from(JSON.stringify(value)).toString('base64url');
    const res = await asOperator(DECODE, { payloads: [{ metadata: { encoding: 'anNvbi9wbGFpbg' }, data }] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ payloads: [jsonPayload(value)] });
  });

  it('round-trips a payload as large as Temporal accepts', async () => {
    const big = {
      metadata: { encoding: b64('binary/plain') },
      data: randomBytes(2 * 1024 * 1024 - 64).toString('base64'),
    };
    const encodedRes = await asOperator(ENCODE, { payloads: [big] });
    expect(encodedRes.statusCode).toBe(200);
    const decodedRes = await asOperator(DECODE, encodedRes.json());
    expect(decodedRes.statusCode).toBe(200);
    expect(decodedRes.json()).toEqual({ payloads: [big] });
  });
});

describe('with Temporal and its clients', () => {
  let connection: Connection;
  beforeAll(async () => {
    connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  });
  afterAll(async () => {
    await connection?.close();
  });

  /** Starts a workflow (no worker runs it) whose input carries {@link SECRET}, as a product client encrypts it. */
  async function startProbe(): Promise<string> {
    const workflowId = uniqueName('codec-probe');
    const client = new Client({ connection, namespace: 'default', dataConverter: { payloadCodecs: [codec] } });
    await client.workflow.start('codecProbeWorkflow', {
      workflowId,
      taskQueue: uniqueName('codec-probe'),
      args: [{ finding: SECRET }],
    });
    return workflowId;
  }

  it('lets the temporal CLI show a workflow input decoded that Temporal only holds encrypted', async () => {
    const workflowId = await startProbe();
    const history = await connection.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId },
    });
    const input = history.history!.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(Buffer.from(input.data!).toString('latin1')).not.toContain(SECRET);
    expect(Buffer.from(input.metadata!.encoding!).toString('utf8')).toBe(ENCRYPTED_ENCODING);

    const cli = (await resolveTemporalCli({ build: false, allowDownload: false })).path!;
    const show = (auth: string[]) =>
      promisify(execFile)(cli, [
        ...['workflow', 'show', '--address', `127.0.0.1:${temporalPort}`, '--namespace', 'default'],
        ...['--workflow-id', workflowId, '--output', 'json', '--codec-endpoint', `${apiUrl}/codec`, ...auth],
      ]);
    /** The workflow input as the CLI shows it: its first event's first payload. */
    const shownInput = (stdout: string): CodecPayload =>
      (
        JSON.parse(stdout) as {
          events: { workflowExecutionStartedEventAttributes: { input: { payloads: CodecPayload[] } } }[];
        }
      ).events[0]!.workflowExecutionStartedEventAttributes.input.payloads[0]!;
    const decoded = shownInput((await show(['--codec-auth', `Bearer ${operatorToken}`])).stdout);
    expect(text(decoded.metadata?.encoding)).toBe('json/plain');
    expect(JSON.parse(text(decoded.data))).toEqual({ finding: SECRET });

    // Without a token the codec refuses, and the CLI, which retries a failed decode until its timeout, shows nothing.
    const logged = trustingLog.records.length;
    const refused = await show(['--command-timeout', '3s']).then(
      ({ stdout }) => ({ failed: false, output: stdout }),
      (error: { stdout?: string; stderr?: string }) => ({ failed: true, output: `${error.stdout}${error.stderr}` }),
    );
    expect(refused.failed).toBe(true);
    const refusals = trustingLog.records
      .slice(logged)
      .filter((r) => (r.res as { statusCode?: number } | undefined)?.statusCode === 401);
    expect(refusals.length).toBeGreaterThan(0);
    expect(refused.output).not.toContain(SECRET);
    expect(refused.output).not.toContain(b64(JSON.stringify({ finding: SECRET })));
    expectNoSecretsIn(trustingLog, [SECRET]);
  });

  it('shows the embedded Web UI, in a browser, a workflow input decoded through the endpoint', async () => {
    const workflowId = await startProbe();
    // Fails (never skips) without Chromium; the test setup provisions it.
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`).toBe(true);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage();
      const decodes: number[] = [];
      page.on('response', (res) => {
        if (res.url() === `${apiUrl}${DECODE}`) decodes.push(res.status());
      });
      await page.goto(`${devServer.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
      await page.getByText(SECRET).first().waitFor({ timeout: 60_000 });
      expect(decodes.length).toBeGreaterThan(0);
      expect(decodes.every((status) => status === 200)).toBe(true);
    } finally {
      await browser.close();
    }
  });

  it('gives the dev server Web UI the API codec endpoint', async () => {
    const res = await fetch(`${devServer.uiUrl}/api/v1/settings`);
    expect(res.status).toBe(200);
    const settings = (await res.json()) as { Codec: { Endpoint: string; PassAccessToken: boolean } };
    expect(settings.Codec).toMatchObject({ Endpoint: `${apiUrl}/codec`, PassAccessToken: false });
  });
});

describe('authentication', () => {
  it.each([DECODE, ENCODE])('answers %s without a token with 401 and the bearer challenge', async (path) => {
    const res = await injectAs(app, 'POST', path, undefined, { payloads: [jsonPayload(1)] });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="stellaops"');
    expect(res.json()).toMatchObject({ error: 'Unauthorized' });
  });

  it('answers a token without the operator scope with 403, before reading the body', async () => {
    const token = await signer.token({ tenant: 'ops', scopes: [Scope.RunnerSagasRead, Scope.SystemAdmin] });
    const res = await injectAs(app, 'POST', DECODE, token, { payloads: [await encrypted({ finding: SECRET })] });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ message: string }>().message).toContain(Scope.PayloadsDecode);
    // Invalid input changes nothing: the scope is checked first.
    const invalid = await injectAs(app, 'POST', DECODE, token, { nope: true });
    expect(invalid.statusCode).toBe(403);
  });

  it('decodes for the local development token, which carries every scope', async () => {
    const token = await signer.token({ tenant: 'local', scopes: [...ALL_SCOPES] });
    const res = await injectAs(app, 'POST', DECODE, token, { payloads: [await encrypted({ finding: SECRET })] });
    expect(res.statusCode).toBe(200);
    expect(text(res.json<CodecPayloads>().payloads[0]!.data)).toContain(SECRET);
  });

  describe('the embedded Web UI, which cannot pass a token', () => {
    const fromUi = async (target: FastifyInstance, headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
      post(target, DECODE, { payloads: [await encrypted({ finding: SECRET })] }, headers, { remoteAddress });

    it.each(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])(
      'is trusted with trustLocalUi, from loopback (%s), with a listed Origin',
      async (address) => {
        const res = await fromUi(trusting, { origin: uiOrigin, 'x-namespace': 'default' }, address);
        expect(res.statusCode).toBe(200);
        expect(text(res.json<CodecPayloads>().payloads[0]!.data)).toContain(SECRET);
        expect(res.headers['access-control-allow-origin']).toBe(uiOrigin);
      },
    );

    it('is trusted under its other listed origin (localhost)', async () => {
      const res = await fromUi(trusting, { origin: `http://localhost:${uiPort}` });
      expect(res.statusCode).toBe(200);
    });

    it.each([
      ['without trustLocalUi', () => app, { origin: `http://127.0.0.1:${uiPort}` }, '127.0.0.1'],
      ['from an address that is not loopback', () => trusting, { origin: `http://127.0.0.1:${uiPort}` }, '192.0.2.10'],
      [
        'from an IPv4-mapped address that is not loopback',
        () => trusting,
        { origin: `http://127.0.0.1:${uiPort}` },
        '::ffff:192.0.2.10',
      ],
      ['with an Origin that is not listed', () => trusting, { origin: 'http://127.0.0.1:1' }, '127.0.0.1'],
      ['without an Origin', () => trusting, {}, '127.0.0.1'],
      [
        'with a forwarded loopback address',
        () => trusting,
        { origin: `http://127.0.0.1:${uiPort}`, 'x-forwarded-for': '127.0.0.1' },
        '192.0.2.10',
      ],
    ] as const)('is refused %s (401)', async (_label, target, headers, address) => {
      const res = await fromUi(target(), { ...headers }, address);
      expect(res.statusCode).toBe(401);
      expect(res.body).not.toContain(b64(SECRET).slice(0, 16));
    });
  });
});

describe('CORS', () => {
  const preflight = (target: FastifyInstance, path: string, origin: string) =>
    target.inject({
      method: 'OPTIONS',
      url: path,
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
    });

  it.each([DECODE, ENCODE])('answers the preflight of %s for a listed origin', async (path) => {
    const res = await preflight(app, path, uiOrigin);
    expect(res.statusCode).toBe(204);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': uiOrigin,
      'access-control-allow-methods': 'POST',
      'access-control-allow-credentials': 'true',
    });
    const allowed = String(res.headers['access-control-allow-headers'])
      .toLowerCase()
      .split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'authorization', 'x-namespace']));
    expect(String(res.headers.vary)).toMatch(/origin/i);
  });

  it('gives another origin no CORS headers, on the preflight and on the request', async () => {
    const res = await preflight(app, DECODE, 'https://evil.example');
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();

    const request = await post(
      app,
      DECODE,
      { payloads: [] },
      { origin: 'https://evil.example', authorization: `Bearer ${operatorToken}` },
    );
    expect(request.statusCode).toBe(200);
    expect(request.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets a listed origin read the answers, refusals included', async () => {
    const ok = await post(
      app,
      DECODE,
      { payloads: [] },
      { origin: uiOrigin, authorization: `Bearer ${operatorToken}` },
    );
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(uiOrigin);
    const refused = await post(app, DECODE, { payloads: [] }, { origin: uiOrigin });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(uiOrigin);
  });

  it('stays on the codec routes', async () => {
    const health = await app.inject({ method: 'GET', url: '/health', headers: { origin: uiOrigin } });
    expect(health.statusCode).toBe(200);
    expect(health.headers['access-control-allow-origin']).toBeUndefined();
    const other = await preflight(app, '/api/v1/sagas', uiOrigin);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('input validation', () => {
  const tooMany = Array.from({ length: MAX_CODEC_PAYLOADS + 1 }, () => jsonPayload(1));
  it.each([
    ['a body that is not an object', [jsonPayload(1)]],
    ['no payloads', {}],
    ['payloads that are not a list', { payloads: jsonPayload(1) }],
    ['a property beside payloads', { payloads: [], extra: 1 }],
    ['a payload property that is not metadata or data', { payloads: [{ ...jsonPayload(1), size: 3 }] }],
    ['data that is not a string', { payloads: [{ data: 12 }] }],
    ['a metadata value that is not a string', { payloads: [{ metadata: { encoding: 1 } }] }],
    ['data that is not base64', { payloads: [{ data: 'bm90 IGJhc2U2NA==' }] }],
    ['data with a character outside base64', { payloads: [{ data: 'abc$' }] }],
    ['data of an impossible base64 length', { payloads: [{ data: 'abcde' }] }],
    ['data mixing the two base64 alphabets', { payloads: [{ data: 'ab+_' }] }],
    ['a metadata value that is not base64', { payloads: [{ metadata: { encoding: 'json plain' }, data: b64('1') }] }],
    ['too many payloads', { payloads: tooMany }],
    ['data over the size limit', { payloads: [{ data: 'A'.repeat(MAX_CODEC_DATA_LENGTH + 4) }] }],
    [
      'too many metadata entries',
      { payloads: [{ metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'AA=='])) }] },
    ],
    ['an empty metadata name', { payloads: [{ metadata: { '': 'AA==' } }] }],
  ])('answers 400 with field errors for %s', async (_label, body) => {
    const res = await asOperator(DECODE, body);
    expect(res.statusCode).toBe(400);
    const doc = res.json<{ error: string; errors?: unknown[] }>();
    expect(doc.error).toBe('ValidationFailed');
    expect(doc.errors?.length).toBeGreaterThan(0);
  });

  it('names the field that is not base64', async () => {
    const res = await asOperator(ENCODE, {
      payloads: [jsonPayload(1), { metadata: { encoding: 'json plain' }, data: 'x' }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual([
      'body.payloads.1.metadata.encoding',
      'body.payloads.1.data',
    ]);
  });

  it('decodes nothing when any payload is invalid: 400, not the 422 of the undecodable one before it', async () => {
    const foreign = await encrypted({ finding: SECRET }, createPayloadCodec([foreignKey]));
    const res = await asOperator(DECODE, { payloads: [foreign, { data: 'not base64!' }] });
    expect(res.statusCode).toBe(400);
  });

  it('answers JSON that does not parse with 400, a body over the limit with 413, another media type with 415', async () => {
    const auth = { authorization: `Bearer ${operatorToken}` };
    expect((await post(app, DECODE, '{"payloads": [', auth)).statusCode).toBe(400);
    const huge = JSON.stringify({ payloads: [{ data: 'A'.repeat(CODEC_BODY_LIMIT_BYTES) }] });
    expect((await post(app, DECODE, huge, auth)).statusCode).toBe(413);
    const plain = await app.inject({
      method: 'POST',
      url: DECODE,
      headers: { ...auth, 'content-type': 'application/xml' },
      payload: 'payloads',
    });
    expect(plain.statusCode).toBe(415);
  });
});

describe('undecodable payloads', () => {
  it('answers 422 naming the unknown key id, with no key material in the answer or the log', async () => {
    const foreign = await encrypted({ finding: SECRET }, createPayloadCodec([foreignKey]));
    const res = await asOperator(DECODE, { payloads: [jsonPayload(1), foreign] });
    expect(res.statusCode).toBe(422);
    const body = res.json<{ error: string; message: string }>();
    expect(body.error).toBe('PayloadNotDecodable');
    expect(body.message).toContain('Payload 1');
    expect(body.message).toContain(`"${foreignKey.id}"`);
    for (const secret of [...keyTexts, SECRET, foreign.data!]) expect(res.body).not.toContain(secret);
    expect(appLog.records.some((r) => r.msg === 'payload not decodable' && r.keyId === foreignKey.id)).toBe(true);
    expectNoSecretsIn(appLog, [SECRET, foreign.data!]);
  });

  it('answers 422 naming the key id of a payload whose ciphertext was altered', async () => {
    const payload = await encrypted({ finding: SECRET });
    const bytes = Buffer.from(payload.data!, 'base64');
    bytes[20] = bytes[20]! ^ 0x01;
    const tampered = { ...payload, data: bytes.toString('base64') };
    const res = await asOperator(DECODE, { payloads: [tampered] });
    expect(res.statusCode).toBe(422);
    expect(res.json<{ message: string }>().message).toContain(`"${currentKey.id}"`);
    for (const secret of [...keyTexts, SECRET, tampered.data]) expect(res.body).not.toContain(secret);
    expectNoSecretsIn(appLog, [SECRET, tampered.data]);
  });

  it('does not quote a key id that no key could have', async () => {
    const payload = await encrypted({ finding: SECRET });
    const odd = { ...payload, metadata: { ...payload.metadata, [KEY_ID_METADATA]: b64('<script>alert(1)</script>') } };
    const res = await asOperator(DECODE, { payloads: [odd] });
    expect(res.statusCode).toBe(422);
    expect(res.body).not.toContain('<script>');
  });

  it('logs no payload data of the trusted Web UI either', async () => {
    await post(trusting, DECODE, { payloads: [await encrypted({ finding: SECRET })] }, { origin: uiOrigin });
    expect(trustingLog.lines.length).toBeGreaterThan(0);
    expectNoSecretsIn(trustingLog, [SECRET]);
  });
});
