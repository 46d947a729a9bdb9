/**
 * The local signing key: an ES256 key pair generated once under the data directory, used by `npm start`
 * and `npm run token` when no JWKS URL or public key is configured. Never used in production.
 */
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import { loadOrCreateSecret } from './local-secrets.js';

const ALG = 'ES256';

/** A loaded local key pair. */
export interface LocalKeyPair {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** Loads the local key pair, generating it on first use (`DATA_DIR/auth/local-jwt-key.json`, mode 0600). */
export async function loadOrCreateLocalKey(dataDir: string): Promise<LocalKeyPair> {
  const stored = JSON.parse(
    await loadOrCreateSecret(dataDir, 'local-jwt-key.json', async () => {
      const pair = await generateKeyPair(ALG, { extractable: true });
      return JSON.stringify({
        kid: `local-${Date.now().toString(36)}`,
        privateJwk: await exportJWK(pair.privateKey),
        publicJwk: await exportJWK(pair.publicKey),
      });
    }),
  ) as { kid: string; privateJwk: JWK; publicJwk: JWK };
  return {
    kid: stored.kid,
    privateKey: (await importJWK(stored.privateJwk, ALG)) as CryptoKey,
    publicKey: (await importJWK(stored.publicJwk, ALG)) as CryptoKey,
  };
}

/** Claims of a product token. */
export interface TokenClaims {
  tenant: string;
  scopes: string[];
  subject?: string;
  issuer: string;
  audience: string;
  /** Lifetime, e.g. `12h` (default). */
  expiresIn?: string;
}

/** Signs a bearer token with `tenant` and space-separated `scope` claims. */
export async function mintToken(key: Pick<LocalKeyPair, 'kid' | 'privateKey'>, claims: TokenClaims): Promise<string> {
  return new SignJWT({ tenant: claims.tenant, scope: claims.scopes.join(' ') })
    .setProtectedHeader({ alg: ALG, kid: key.kid })
    .setSubject(claims.subject ?? `local-user@${claims.tenant}`)
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '12h')
    .sign(key.privateKey);
}
