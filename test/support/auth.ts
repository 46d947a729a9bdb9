/** Test tokens signed with a throwaway key pair, and a verifier that trusts it. */
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createTokenVerifier, type TokenVerifier } from '../../api/plugins/auth.js';

export const TEST_ISSUER = 'stellaops-test';
export const TEST_AUDIENCE = 'stellaops-workflows';

/** Signs tokens for tests. */
export interface TestSigner {
  verifier: TokenVerifier;
  token(claims: {
    tenant?: string;
    scopes?: string[];
    subject?: string;
    expiresIn?: string;
    audience?: string;
  }): Promise<string>;
  /** A key the verifier does not trust. */
  foreignToken(claims: { tenant: string; scopes: string[] }): Promise<string>;
}

async function sign(
  key: CryptoKey,
  claims: Record<string, unknown>,
  audience: string,
  expiresIn: string,
  subject: string,
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(TEST_ISSUER)
    .setAudience(audience)
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key);
}

/** Creates a signer with a fresh key pair. */
export async function createTestSigner(): Promise<TestSigner> {
  const trusted = await generateKeyPair('ES256');
  const foreign = await generateKeyPair('ES256');
  return {
    verifier: createTokenVerifier({ key: trusted.publicKey }, { issuer: TEST_ISSUER, audience: TEST_AUDIENCE }),
    token: ({ tenant, scopes = [], subject = 'tester', expiresIn = '10m', audience = TEST_AUDIENCE }) =>
      sign(
        trusted.privateKey,
        { ...(tenant ? { tenant } : {}), scope: scopes.join(' ') },
        audience,
        expiresIn,
        subject,
      ),
    foreignToken: ({ tenant, scopes }) =>
      sign(foreign.privateKey, { tenant, scope: scopes.join(' ') }, TEST_AUDIENCE, '10m', 'intruder'),
  };
}
