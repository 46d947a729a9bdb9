import { generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HttpError } from '../../api/errors.js';
import { createTokenVerifier, DEFAULT_MAX_TOKEN_LIFETIME_SECONDS } from '../../api/plugins/auth.js';
import { ConfigError, loadConfig } from '../../core/config.js';
import { mintToken } from '../../core/local-keys.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';

/** The HTTP status and message `promise` is rejected with (an `HttpError`), or `resolved`. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; message: string } | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    expect(error).toBeInstanceOf(HttpError);
    return { status: (error as HttpError).statusCode, message: (error as HttpError).message };
  }
}

/**
 * A token with `claims` (plus issuer and audience, and unless `claims` name them, issued now and expiring in ten
 * minutes; `undefined` leaves a claim out), signed with `key`.
 */
function rawToken(key: CryptoKey, claims: JWTPayload): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .sign(key);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('token verification', () => {
  it('accepts a valid token and exposes subject, tenant and scopes', async () => {
    const signer = await createTestSigner();
    const principal = await signer.verifier(
      await signer.token({ tenant: 'acme', scopes: ['a:read', 'b:write'], subject: 'alice' }),
    );
    expect(principal.subject).toBe('alice');
    expect(principal.tenantId).toBe('acme');
    expect([...principal.scopes].sort()).toEqual(['a:read', 'b:write']);
  });

  it('reads scopes from a space-separated `scope` and a `scp` array, ignoring blanks and non-strings', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const verify = createTokenVerifier({ key: publicKey }, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
    const both = await verify(
      await rawToken(privateKey, { tenant: 'acme', sub: 'svc', scope: ' a:read  b:write ', scp: ['c:admin', 7, null] }),
    );
    expect([...both.scopes].sort()).toEqual(['a:read', 'b:write', 'c:admin']);
    const scpOnly = await verify(await rawToken(privateKey, { tenant: 'acme', sub: 'svc', scp: ['c:admin'] }));
    expect([...scpOnly.scopes]).toEqual(['c:admin']);
    const none = await verify(await rawToken(privateKey, { tenant: 'acme', scope: 42, scp: 'not-a-list' }));
    expect(none.scopes.size).toBe(0);
    // No `sub`: the principal is still someone the audit trail can name.
    expect(none.subject).toBe('unknown');
  });

  it('verifies with a configured PEM public key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const { exportSPKI } = await import('jose');
    const verify = createTokenVerifier(
      { publicKeyPem: await exportSPKI(publicKey) },
      { issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
    );
    expect((await verify(await rawToken(privateKey, { tenant: 'acme', sub: 'pem' }))).subject).toBe('pem');
    const other = await generateKeyPair('ES256');
    expect(await refusal(verify(await rawToken(other.privateKey, { tenant: 'acme' })))).toMatchObject({ status: 401 });
  });

  it.each([
    [
      'signed by an unknown key',
      (s: Awaited<ReturnType<typeof createTestSigner>>) => s.foreignToken({ tenant: 'acme', scopes: [] }),
    ],
    [
      'for another audience',
      (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({ tenant: 'acme', audience: 'other' }),
    ],
    ['expired', (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({ tenant: 'acme', expiresIn: '-1m' })],
  ])('rejects a token %s with 401 Invalid bearer token', async (_label, make) => {
    const signer = await createTestSigner();
    const result = await refusal(signer.verifier(await make(signer)));
    expect(result).toMatchObject({ status: 401 });
    expect(result !== 'resolved' && result.message).toMatch(/^Invalid bearer token: \S/);
  });

  it.each([
    ['without a tenant', undefined],
    ['with a numeric tenant', 42],
    ['with an empty tenant', ''],
    ['with a path as tenant', '../etc'],
    ['with a tenant that only starts like one', 'acme/../x'],
    ['with a tenant followed by a newline', 'acme\n'],
    ['with a tenant starting with a separator', '-acme'],
    ['with a tenant of 65 characters', `a${'b'.repeat(64)}`],
    ['with a tenant containing a space', 'ac me'],
  ])('rejects a token %s with 401', async (_label, tenant) => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const verify = createTokenVerifier({ key: publicKey }, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
    const token = await rawToken(privateKey, tenant === undefined ? { sub: 'x' } : { sub: 'x', tenant });
    expect(await refusal(verify(token))).toEqual({ status: 401, message: 'Token has no valid tenant claim' });
  });

  it.each(['a', 'Acme-Corp_2.eu', `a${'b'.repeat(63)}`, '0tenant'])('accepts the tenant %j', async (tenant) => {
    const signer = await createTestSigner();
    expect((await signer.verifier(await signer.token({ tenant }))).tenantId).toBe(tenant);
  });

  it('stops accepting a verified token once it expires, although verified tokens are remembered', async () => {
    const signer = await createTestSigner();
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = new Date('2030-01-01T00:00:00Z');
    vi.setSystemTime(start);
    const token = await signer.token({ tenant: 'acme', expiresIn: '2m' });
    const expiresAtMs = start.getTime() + 120_000;

    expect((await signer.verifier(token)).tenantId).toBe('acme');
    vi.setSystemTime(expiresAtMs - 1);
    expect((await signer.verifier(token)).tenantId).toBe('acme');
    vi.setSystemTime(expiresAtMs);
    const expired = await refusal(signer.verifier(token));
    expect(expired).toMatchObject({ status: 401 });
    expect(expired !== 'resolved' && expired.message).toMatch(/^Invalid bearer token: .*exp/);
    vi.setSystemTime(expiresAtMs + 3_600_000);
    expect(await refusal(signer.verifier(token))).toMatchObject({ status: 401 });
  });

  describe('cost: a token reused for many requests is verified once', () => {
    /** Counts signature checks (jose verifies with WebCrypto). */
    const countSignatureChecks = () => vi.spyOn(globalThis.crypto.subtle, 'verify');

    afterEach(() => {
      vi.restoreAllMocks();
    });

    it('checks the signature of a token once until it expires, then again', async () => {
      const signer = await createTestSigner();
      vi.useFakeTimers({ toFake: ['Date'] });
      const start = new Date('2030-01-01T00:00:00Z');
      vi.setSystemTime(start);
      const token = await signer.token({ tenant: 'acme', expiresIn: '2m' });
      const checks = countSignatureChecks();
      for (let i = 0; i < 3; i++) await signer.verifier(token);
      expect(checks).toHaveBeenCalledTimes(1);
      vi.setSystemTime(start.getTime() + 120_000);
      await signer.verifier(token).catch(() => undefined);
      expect(checks).toHaveBeenCalledTimes(2);
    });

    it('remembers at most 1000 tokens, forgetting the oldest first', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const verify = createTokenVerifier({ key: publicKey }, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE });
      const tokens = await Promise.all(
        Array.from({ length: 1001 }, (_, i) => rawToken(privateKey, { tenant: 'acme', sub: `s${i}` })),
      );
      for (const token of tokens) await verify(token);
      const checks = countSignatureChecks();
      // The second oldest and the newest are still remembered; the oldest was dropped for the newest.
      await verify(tokens[1]!);
      await verify(tokens[1000]!);
      expect(checks).toHaveBeenCalledTimes(0);
      await verify(tokens[0]!);
      expect(checks).toHaveBeenCalledTimes(1);
    });
  });
});

describe('token lifetime', () => {
  const HOUR = 3600;
  const NOW = Date.parse('2030-01-01T00:00:00Z') / 1000;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  const verifier = (maxLifetimeSeconds?: number) =>
    createTokenVerifier(
      { key: keys.publicKey },
      {
        issuer: TEST_ISSUER,
        audience: TEST_AUDIENCE,
        ...(maxLifetimeSeconds === undefined ? {} : { maxLifetimeSeconds }),
      },
    );
  const token = (claims: JWTPayload) => rawToken(keys.privateKey, { tenant: 'acme', sub: 'svc', ...claims });

  beforeEach(async () => {
    keys = await generateKeyPair('ES256');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW * 1000);
  });

  it('refuses a signed token without `exp`, whatever the maximum', async () => {
    for (const max of [undefined, 0, 366 * 24 * HOUR]) {
      expect(await refusal(verifier(max)(await token({ exp: undefined })))).toEqual({
        status: 401,
        message: 'Invalid bearer token: missing required "exp" claim',
      });
    }
  });

  it('accepts at most 24 hours from `iat` to `exp` by default', async () => {
    expect(DEFAULT_MAX_TOKEN_LIFETIME_SECONDS).toBe(24 * HOUR);
    expect((await verifier()(await token({ iat: NOW, exp: NOW + 24 * HOUR }))).subject).toBe('svc');
    expect(await refusal(verifier()(await token({ iat: NOW, exp: NOW + 24 * HOUR + 1 })))).toEqual({
      status: 401,
      message: 'Invalid bearer token: Token lifetime of 86401 s exceeds the maximum of 86400 s',
    });
  });

  it('measures the lifetime from `iat`, not from now, when the token has one', async () => {
    // Issued 23 hours ago, valid for two more: 25 hours in all.
    const old = await token({ iat: NOW - 23 * HOUR, exp: NOW + 2 * HOUR });
    expect(await refusal(verifier()(old))).toMatchObject({ status: 401 });
    // Issued 23 hours ago, valid for one more: 24 hours in all.
    expect((await verifier()(await token({ iat: NOW - 23 * HOUR, exp: NOW + HOUR }))).subject).toBe('svc');
  });

  it('measures the lifetime from now when the token has no `iat`', async () => {
    expect((await verifier()(await token({ iat: undefined, exp: NOW + 24 * HOUR }))).subject).toBe('svc');
    expect(await refusal(verifier()(await token({ iat: undefined, exp: NOW + 24 * HOUR + 1 })))).toEqual({
      status: 401,
      message: 'Invalid bearer token: Token lifetime of 86401 s exceeds the maximum of 86400 s',
    });
  });

  it('applies a configured maximum, and 0 as no limit', async () => {
    const tenMinutes = await token({ iat: NOW, exp: NOW + 600 });
    const elevenMinutes = await token({ iat: NOW, exp: NOW + 660 });
    expect((await verifier(600)(tenMinutes)).subject).toBe('svc');
    expect(await refusal(verifier(600)(elevenMinutes))).toMatchObject({ status: 401 });
    const tenYears = await token({ iat: NOW, exp: NOW + 10 * 365 * 24 * HOUR });
    expect((await verifier(0)(tenYears)).subject).toBe('svc');
    expect(await refusal(verifier()(tenYears))).toMatchObject({ status: 401 });
  });

  it('accepts the tokens of `npm run token` (12 hours) and of the test signer', async () => {
    const minted = await mintToken(
      { kid: 'k', privateKey: keys.privateKey },
      { tenant: 'acme', scopes: ['a'], issuer: TEST_ISSUER, audience: TEST_AUDIENCE },
    );
    expect((await verifier()(minted)).tenantId).toBe('acme');
    const signer = await createTestSigner();
    expect((await signer.verifier(await signer.token({ tenant: 'acme' }))).tenantId).toBe('acme');
  });
});

describe('AUTH_JWT_MAX_LIFETIME_SECONDS', () => {
  it('defaults to 24 hours and accepts 0 (no limit) up to 366 days', () => {
    expect(loadConfig({}).auth.maxTokenLifetimeSeconds).toBe(86_400);
    expect(loadConfig({ AUTH_JWT_MAX_LIFETIME_SECONDS: '0' }).auth.maxTokenLifetimeSeconds).toBe(0);
    expect(loadConfig({ AUTH_JWT_MAX_LIFETIME_SECONDS: '31622400' }).auth.maxTokenLifetimeSeconds).toBe(31_622_400);
  });

  it.each(['-1', '31622401', '1.5', 'a day'])('refuses %j, naming the variable', (value) => {
    expect(() => loadConfig({ AUTH_JWT_MAX_LIFETIME_SECONDS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH_JWT_MAX_LIFETIME_SECONDS: value })).toThrow(
      `AUTH_JWT_MAX_LIFETIME_SECONDS must be an integer between 0 and 31622400 (got "${value}")`,
    );
  });
});
