/**
 * Bearer authentication as a client meets it: the `bearerAuth` plugin on a capability plugin of a real Fastify
 * instance with the API's error handler, driven with `app.inject` (no server needed). Tokens are verified by a real
 * verifier, with a local key or a JWKS served on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorResponse, registerErrorHandlers } from '../../api/errors.js';
import { bearerAuth, createTokenVerifier, principalOf, type TokenVerifier } from '../../api/plugins/auth.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from '../support/auth.js';

let signer: TestSigner;
let app: FastifyInstance;

/** A capability whose routes need `things:read` (or what a route names), checked at `hook`. */
function capability(prefix: string, verify: TokenVerifier, hook?: 'onRequest' | 'preHandler'): FastifyPluginAsync {
  return async (scope) => {
    await scope.register(bearerAuth, { verify, scopes: ['things:read'], ...(hook ? { hook } : {}) });
    const whoami = async (request: Parameters<typeof principalOf>[0]) => {
      const p = principalOf(request);
      return { subject: p.subject, tenantId: p.tenantId, scopes: [...p.scopes].sort() };
    };
    scope.get(`${prefix}/things`, whoami);
    scope.post(
      `${prefix}/things`,
      { schema: { body: Type.Object({ name: Type.String() }, { additionalProperties: false }) } },
      whoami,
    );
    scope.get(`${prefix}/admin`, { config: { scopes: ['things:admin', 'things:owner'] } }, whoami);
    scope.get(`${prefix}/any-token`, { config: { scopes: [] } }, whoami);
    scope.get(`${prefix}/public`, { config: { scopes: false } }, async () => ({ public: true }));
    scope.get(`${prefix}/public-whoami`, { config: { scopes: false } }, whoami);
  };
}

beforeAll(async () => {
  signer = await createTestSigner();
  app = Fastify({
    logger: false,
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false } },
  });
  app.addSchema(ErrorResponse);
  registerErrorHandlers(app);
  await app.register(capability('/default', signer.verifier));
  await app.register(capability('/early', signer.verifier, 'onRequest'));
  await app.register(capability('/late', signer.verifier, 'preHandler'));
  // A route outside every capability: the hook does not leak out of the plugin that registers it.
  app.get('/open', async () => ({ open: true }));
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('bearerAuth', () => {
  it('lets a token with the capability scope through and exposes its principal', async () => {
    const token = await signer.token({ tenant: 'acme', scopes: ['things:read', 'other'], subject: 'alice' });
    const res = await get('/default/things', bearer(token));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ subject: 'alice', tenantId: 'acme', scopes: ['other', 'things:read'] });
  });

  it.each([
    ['no Authorization header', {}],
    ['another scheme', { authorization: 'Basic YWxpY2U6cHc=' }],
    ['the scheme alone', { authorization: 'Bearer' }],
    ['the scheme and a blank', { authorization: 'Bearer ' }],
    ['two words after the scheme', { authorization: 'Bearer a b' }],
    ['text before the scheme', { authorization: 'XBearer abc' }],
  ])('answers 401 with the bearer challenge for %s', async (_label, headers) => {
    const res = await get('/default/things', headers);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="stellaops"');
    expect(res.json()).toMatchObject({
      error: 'Unauthorized',
      message: 'Missing bearer token (Authorization: Bearer <token>)',
    });
  });

  it('accepts the scheme in any case and any whitespace before the token', async () => {
    const token = await signer.token({ tenant: 'acme', scopes: ['things:read'] });
    expect((await get('/default/things', { authorization: `bearer ${token}` })).statusCode).toBe(200);
    expect((await get('/default/things', { authorization: `BEARER \t ${token}` })).statusCode).toBe(200);
  });

  it('answers 401 for a token it cannot verify, saying why', async () => {
    const res = await get('/default/things', bearer(await signer.foreignToken({ tenant: 'acme', scopes: [] })));
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="stellaops"');
    expect(res.json<ErrorResponse>().message).toMatch(/^Invalid bearer token: /);
    const garbage = await get('/default/things', bearer('not-a-jwt'));
    expect(garbage.statusCode).toBe(401);
  });

  it('answers 403 naming the scopes when the token has none of them', async () => {
    const token = await signer.token({ tenant: 'acme', scopes: ['things:write'] });
    const res = await get('/default/things', bearer(token));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'Forbidden', message: 'Missing scope: one of things:read is required' });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('lets a route require other scopes, any one of which suffices', async () => {
    const reader = await signer.token({ tenant: 'acme', scopes: ['things:read'] });
    const refused = await get('/default/admin', bearer(reader));
    expect(refused.statusCode).toBe(403);
    expect(refused.json<ErrorResponse>().message).toBe('Missing scope: one of things:admin, things:owner is required');
    const owner = await signer.token({ tenant: 'acme', scopes: ['things:owner'] });
    expect((await get('/default/admin', bearer(owner))).statusCode).toBe(200);
  });

  it('lets a route with no scopes accept any valid token, and only a valid one', async () => {
    const scopeless = await signer.token({ tenant: 'acme', scopes: [] });
    const res = await get('/default/any-token', bearer(scopeless));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tenantId: 'acme', scopes: [] });
    expect((await get('/default/any-token')).statusCode).toBe(401);
  });

  it('leaves routes that opt out, and routes outside the capability, unauthenticated', async () => {
    const res = await get('/default/public');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ public: true });
    expect((await get('/open')).json()).toEqual({ open: true });
    // An opted-out route has no principal: asking for one is a 401, not a crash.
    const anonymous = await get('/default/public-whoami', bearer(await signer.token({ tenant: 'acme' })));
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: 'Unauthorized', message: 'Not authenticated' });
  });

  it('requires a tenant header, when sent, to name the token’s tenant', async () => {
    const token = await signer.token({ tenant: 'acme', scopes: ['things:read'] });
    expect((await get('/default/things', { ...bearer(token), 'x-stellaops-tenant': 'acme' })).statusCode).toBe(200);
    const other = await get('/default/things', { ...bearer(token), 'x-stellaops-tenant': 'globex' });
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({
      error: 'Forbidden',
      message: "Tenant header 'globex' does not match the token's tenant",
    });
    // The tenant is checked before the scopes: a wrong tenant is refused even on a route any token may use.
    const anyToken = await get('/default/any-token', { ...bearer(token), 'x-stellaops-tenant': 'globex' });
    expect(anyToken.statusCode).toBe(403);
  });

  it('checks before validation by default and at onRequest, after validation at preHandler', async () => {
    const invalid = { method: 'POST' as const, payload: { extra: true } };
    for (const prefix of ['/default', '/early']) {
      const res = await app.inject({ ...invalid, url: `${prefix}/things` });
      expect(res.statusCode, prefix).toBe(401);
    }
    const late = await app.inject({ ...invalid, url: '/late/things' });
    expect(late.statusCode).toBe(400);
    expect(late.json()).toMatchObject({ error: 'ValidationFailed' });
    const token = await signer.token({ tenant: 'acme', scopes: ['things:read'] });
    const valid = await app.inject({
      method: 'POST',
      url: '/late/things',
      payload: { name: 'n' },
      headers: bearer(token),
    });
    expect(valid.statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/late/things', payload: { name: 'n' } })).statusCode).toBe(401);
  });
});

describe('verification keys from a JWKS', () => {
  let jwks: Server;
  let url: string;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  beforeAll(async () => {
    keys = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('verifies tokens signed with a key of the set and refuses others', async () => {
    const verify = createTokenVerifier({ jwksUrl: url }, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
    const sign = (key: CryptoKey, issuer = TEST_ISSUER) =>
      new SignJWT({ tenant: 'acme', scope: 'things:read' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(TEST_AUDIENCE)
        .setSubject('jwks-user')
        .setExpirationTime('5m')
        .sign(key);
    expect(await verify(await sign(keys.privateKey))).toMatchObject({ subject: 'jwks-user', tenantId: 'acme' });
    const other = await generateKeyPair('ES256');
    await expect(verify(await sign(other.privateKey))).rejects.toMatchObject({ statusCode: 401 });
    await expect(verify(await sign(keys.privateKey, 'someone-else'))).rejects.toMatchObject({ statusCode: 401 });
  });
});
