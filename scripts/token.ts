/** `npm run token -- --tenant T --scopes a,b [--subject S] [--ttl 12h]`: mints a token with the local key. */
import { parseArgs } from 'node:util';
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
process.stdout.write(`${token}\n`);
