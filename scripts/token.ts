/** `npm run token -- --tenant T --scopes a,b [--subject S] [--ttl 12h]`: mints a token with the local key (a ttl within AUTH_JWT_MAX_LIFETIME_SECONDS). */
import { parseArgs } from 'node:util';
import { decodeJwt } from 'jose';
import { loadConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { ALL_SCOPES } from '../core/scopes.js';

const { values } = parseArgs({
  options: {
    tenant: { type: 'string', default: 'local' },
    scopes: { type: 'string', default: ALL_SCOPES.join(',') },
    subject: { type: 'string' },
    ttl: { type: 'string', default: '12h' },
  },
});
const config = loadConfig();
if (!config.auth.useLocalKey) {
  console.error('A JWKS URL or public key is configured: tokens come from that issuer, not from the local key.');
  process.exit(2);
}
const key = await loadOrCreateLocalKey(config.dataDir);
const token = await mintToken(key, {
  tenant: values.tenant,
  scopes: values.scopes
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  ...(values.subject ? { subject: values.subject } : {}),
  issuer: config.auth.issuer,
  audience: config.auth.audience,
  expiresIn: values.ttl,
});
// The API refuses tokens that live longer than AUTH_JWT_MAX_LIFETIME_SECONDS: do not hand out one it would refuse.
const { exp = 0, iat = 0 } = decodeJwt(token);
const maxLifetime = config.auth.maxTokenLifetimeSeconds;
if (maxLifetime > 0 && exp - iat > maxLifetime) {
  console.error(
    `--ttl ${values.ttl} exceeds AUTH_JWT_MAX_LIFETIME_SECONDS (${maxLifetime} s): the API would refuse it.`,
  );
  process.exit(2);
}
process.stdout.write(`${token}\n`);
