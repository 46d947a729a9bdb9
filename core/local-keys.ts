/**
 * The local signing key: an ES256 key pair generated once under the data directory, used by `npm start`
 * and `npm run token` when no JWKS URL or public key is configured. Never used in production.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';

const ALG = 'ES256';

/** A loaded local key pair. */
export interface LocalKeyPair {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** Path of the local key file. */
export function localKeyPath(dataDir: string): string {
  return join(dataDir, 'auth', 'local-jwt-key.json');
}

/** Loads the local key pair, generating it on first use (file mode 0600). */
export async function loadOrCreateLocalKey(dataDir: string): Promise<LocalKeyPair> {
  const path = localKeyPath(dataDir);
  let stored: { kid: string; privateJwk: JWK; publicJwk: JWK };
  try {
    stored = JSON.parse(await readFile(path, 'utf8')) as typeof stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const pair = await generateKeyPair(ALG, { extractable: true });
    stored = {
      kid: `local-${Date.now().toString(36)}`,
      privateJwk: await exportJWK(pair.privateKey),
      publicJwk: await exportJWK(pair.publicKey),
    };
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, JSON.stringify(stored, null, 2), { mode: 0o600, flag: 'wx' }).catch(
      async (e: NodeJS.ErrnoException) => {
        // Another process created it first: use theirs.
        if (e.code !== 'EEXIST') throw e;
        stored = JSON.parse(await readFile(path, 'utf8')) as typeof stored;
      },
    );
  }
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
