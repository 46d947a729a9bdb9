/**
 * Signed events (Standard Webhooks): the pure check {@link verifySignedEvent}, and the `signedEvents` plugin on a
 * capability plugin of a real Fastify instance with the API's error handler, driven with `app.inject` (no server).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorResponse, registerErrorHandlers } from '../../api/errors.js';
import { bearerAuth } from '../../api/plugins/auth.js';
import { signedEvents, verifySignedEvent } from '../../api/plugins/signed-events.js';
import { generateWebhookSecret } from '../../core/local-secrets.js';
import { signedHeaders } from '../../scripts/pack-event.js';
import { createTestSigner, type TestSigner } from '../support/auth.js';

const current = generateWebhookSecret();
const next = generateWebhookSecret();
const MISSING = 'Missing signature headers (webhook-id, webhook-timestamp, webhook-signature)';
const STALE = 'Signature timestamp outside the ±5 minute window';
const body = JSON.stringify({ eventId: 'evt-1', kind: 'pack.approval', requiredGrants: ['deploy:prod'] });
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

describe('verifySignedEvent', () => {
  it('accepts a body signed with the current secret and answers the signature id to claim', () => {
    const headers = signedHeaders(current, body, { id: 'msg_1' });
    expect(verifySignedEvent(body, headers, [current, next])).toEqual({ ok: true, signatureId: 'msg_1' });
  });

  it('accepts a body signed with the second secret of a rotation, whichever order they are configured in', () => {
    const headers = signedHeaders(next, body, { id: 'msg_2' });
    expect(verifySignedEvent(body, headers, [current, next])).toEqual({ ok: true, signatureId: 'msg_2' });
    expect(verifySignedEvent(body, headers, [next, current])).toEqual({ ok: true, signatureId: 'msg_2' });
  });

  it('refuses a body signed with a secret it does not hold, or when it holds none', () => {
    const headers = signedHeaders(generateWebhookSecret(), body);
    expect(verifySignedEvent(body, headers, [current, next])).toEqual({ ok: false, reason: 'Invalid signature' });
    expect(verifySignedEvent(body, signedHeaders(current, body), [])).toEqual({
      ok: false,
      reason: 'Invalid signature',
    });
  });

  it('refuses a tampered body, a reused signature for another id, and a garbled signature', () => {
    const headers = signedHeaders(current, body, { id: 'msg_3' });
    const tampered = body.replace('deploy:prod', 'deploy:dev');
    expect(verifySignedEvent(tampered, headers, [current])).toEqual({ ok: false, reason: 'Invalid signature' });
    expect(verifySignedEvent(`${body} `, headers, [current])).toEqual({ ok: false, reason: 'Invalid signature' });
    expect(verifySignedEvent(body, { ...headers, 'webhook-id': 'msg_4' }, [current])).toEqual({
      ok: false,
      reason: 'Invalid signature',
    });
    expect(verifySignedEvent(body, { ...headers, 'webhook-signature': 'v1,AAAA' }, [current])).toMatchObject({
      ok: false,
      reason: 'Invalid signature',
    });
  });

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('refuses an event without %s', (name) => {
    const headers: Record<string, string | undefined> = signedHeaders(current, body);
    for (const value of [undefined, '']) {
      headers[name] = value;
      expect(verifySignedEvent(body, headers, [current])).toEqual({ ok: false, reason: MISSING });
    }
  });

  it('reads headers as any transport carries them, also as a single-valued list', () => {
    const headers = signedHeaders(current, body, { id: 'msg_5' });
    const listed = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
    expect(verifySignedEvent(body, listed, [current])).toEqual({ ok: true, signatureId: 'msg_5' });
  });

  it('tells the sender its clock is off for a stale or future timestamp, whatever the secret', () => {
    const stale = signedHeaders(current, body, { at: minutesAgo(6) });
    expect(verifySignedEvent(body, stale, [current, next])).toEqual({ ok: false, reason: STALE });
    const future = signedHeaders(current, body, { at: minutesAgo(-6) });
    expect(verifySignedEvent(body, future, [current])).toEqual({ ok: false, reason: STALE });
    // Within the window the timestamp is fine.
    expect(verifySignedEvent(body, signedHeaders(current, body, { at: minutesAgo(4) }), [current])).toMatchObject({
      ok: true,
    });
  });
});

describe('signedEvents plugin', () => {
  let app: FastifyInstance;
  let open: FastifyInstance;
  let signer: TestSigner;
  let token: string;

  /** An app whose `events` capability takes signed events (and bearer tokens) from `ipAllowlist`. */
  async function eventsApp(ipAllowlist: string[]): Promise<FastifyInstance> {
    const instance = Fastify({ logger: false });
    instance.addSchema(ErrorResponse);
    registerErrorHandlers(instance);
    await instance.register(async (scope) => {
      await scope.register(signedEvents, { secrets: [current, next], ipAllowlist });
      await scope.register(bearerAuth, { verify: signer.verifier, scopes: ['events:write'] });
      scope.post('/events', { config: { signedEvents: true } }, async (request) => ({
        received: request.body ?? null,
        rawBody: request.rawBody ?? null,
      }));
      scope.post('/unsigned', { config: { scopes: false } }, async (request) => ({
        received: request.body ?? null,
        rawBody: request.rawBody ?? null,
      }));
    });
    // Outside the capability: Fastify's own JSON parser, no raw body.
    instance.post('/elsewhere', async (request) => ({ rawBody: request.rawBody ?? null }));
    await instance.ready();
    return instance;
  }

  beforeAll(async () => {
    signer = await createTestSigner();
    token = await signer.token({ tenant: 'acme', scopes: ['events:write'] });
    app = await eventsApp(['10.0.0.0/8', '127.0.0.1', 'fd00::/8', '::1/128']);
    open = await eventsApp([]);
  });
  afterAll(async () => {
    await app?.close();
    await open?.close();
  });

  const postEvent = (
    instance: FastifyInstance,
    raw: string,
    options: { headers?: Record<string, string>; remoteAddress?: string; url?: string } = {},
  ) =>
    instance.inject({
      method: 'POST',
      url: options.url ?? '/events',
      remoteAddress: options.remoteAddress ?? '127.0.0.1',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        ...(options.headers ?? signedHeaders(current, raw)),
      },
      payload: raw,
    });

  it('accepts an event signed over the exact bytes sent, and gives the route those bytes', async () => {
    const raw = '{ "eventId" :"evt-2",\n  "n": 1.50 }';
    const res = await postEvent(app, raw);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: { eventId: 'evt-2', n: 1.5 }, rawBody: raw });
    const rotated = await postEvent(app, raw, { headers: signedHeaders(next, raw) });
    expect(rotated.statusCode).toBe(200);
  });

  it('verifies an event without a body over the empty string', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/events',
      remoteAddress: '127.0.0.1',
      headers: { authorization: `Bearer ${token}`, ...signedHeaders(current, '') },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: null, rawBody: null });
    const empty = await postEvent(app, '', { headers: signedHeaders(current, '') });
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toEqual({ received: null, rawBody: '' });
  });

  it.each([
    [
      'a tampered body',
      (raw: string) => ({ body: raw.replace('evt-3', 'evt-4'), headers: signedHeaders(current, raw) }),
    ],
    ['an unknown secret', (raw: string) => ({ body: raw, headers: signedHeaders(generateWebhookSecret(), raw) })],
    ['no signature', (raw: string) => ({ body: raw, headers: {} })],
    [
      'a stale signature',
      (raw: string) => ({ body: raw, headers: signedHeaders(current, raw, { at: minutesAgo(10) }) }),
    ],
  ])('answers 401 with the reason for %s', async (label, make) => {
    const raw = JSON.stringify({ eventId: 'evt-3' });
    const { body: sent, headers } = make(raw);
    const res = await postEvent(app, sent, { headers });
    expect(res.statusCode).toBe(401);
    const reason = label === 'no signature' ? MISSING : label === 'a stale signature' ? STALE : 'Invalid signature';
    expect(res.json()).toMatchObject({ error: 'Unauthorized', message: reason });
  });

  it('answers 400 InvalidJson for a body that is not JSON, before looking at its signature', async () => {
    const res = await postEvent(app, '{"eventId":', { headers: {} });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'InvalidJson', message: 'The body is not valid JSON' });
  });

  it.each([
    ['192.168.1.20', '192.168.1.20'],
    ['11.0.0.1', '11.0.0.1'],
    ['127.0.0.2', '127.0.0.2'],
    ['::ffff:192.168.1.20', '::ffff:192.168.1.20'],
    ['fe80::1', 'fe80::1'],
  ])('refuses %s, outside the allowlist, with 403 before authenticating', async (address, shown) => {
    const raw = JSON.stringify({ eventId: 'evt-5' });
    const res = await app.inject({
      method: 'POST',
      url: '/events',
      remoteAddress: address,
      headers: { 'content-type': 'application/json' },
      payload: raw,
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'Forbidden', message: `Address ${shown} is not allowed to post events` });
  });

  it.each(['10.1.2.3', '127.0.0.1', '::ffff:10.9.9.9', 'fd12:3456::1', '::1'])(
    'accepts %s, inside the allowlist',
    async (address) => {
      const raw = JSON.stringify({ eventId: 'evt-6' });
      expect((await postEvent(app, raw, { remoteAddress: address })).statusCode).toBe(200);
    },
  );

  it('allows every address with an empty allowlist, but still requires the signature', async () => {
    const raw = JSON.stringify({ eventId: 'evt-7' });
    expect((await postEvent(open, raw, { remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
    expect((await postEvent(open, raw, { remoteAddress: '203.0.113.9', headers: {} })).statusCode).toBe(401);
  });

  it('leaves routes without `signedEvents` alone, though they keep the raw body', async () => {
    const raw = '{"a": 1}';
    const res = await postEvent(app, raw, { url: '/unsigned', headers: {}, remoteAddress: '192.168.1.20' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: { a: 1 }, rawBody: raw });
    const outside = await postEvent(app, raw, { url: '/elsewhere', headers: {}, remoteAddress: '192.168.1.20' });
    expect(outside.statusCode).toBe(200);
    expect(outside.json()).toEqual({ rawBody: null });
  });

  it('refuses to start with a malformed secret, not on the first event', async () => {
    const instance = Fastify({ logger: false });
    const starting = (async () => {
      await instance.register(async (scope) => {
        await scope.register(signedEvents, { secrets: [current, 'whsec_'], ipAllowlist: [] });
      });
      await instance.ready();
    })();
    await expect(starting).rejects.toThrow(/empty/);
    await instance.close().catch(() => undefined);
  });
});
