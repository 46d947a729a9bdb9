/**
 * `npm run pack-event -- <event.json> [--fresh] [--api URL]`: signs a Task Runner event with the local signing
 * secret and posts it to the local API, as the Task Runner would. `--fresh` gives it new ids and timestamps.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { signatureHeaders } from '../activities/shared/http.js';
import { loadConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { packEventSecretsOf } from '../core/local-secrets.js';
import { Scope } from '../core/scopes.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { fresh: { type: 'boolean', default: false }, api: { type: 'string' } },
});
const file = positionals[0] ?? 'samples/pack-approvals/pack-approval-requested.json';
const config = loadConfig();
const event = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
if (values.fresh) {
  const now = Date.now();
  Object.assign(event, {
    eventId: `evt-${randomUUID()}`,
    runId: `run-${randomUUID().slice(0, 8)}`,
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 24 * 3600 * 1000).toISOString(),
  });
}
const body = JSON.stringify(event);
const [secret] = await packEventSecretsOf(config);
const token = await mintToken(await loadOrCreateLocalKey(config.dataDir), {
  tenant: String(event.tenantId),
  scopes: [Scope.NotifierEventsWrite],
  subject: 'task-runner',
  issuer: config.auth.issuer,
  audience: config.auth.audience,
  expiresIn: '5m',
});
const response = await fetch(`${values.api ?? `http://127.0.0.1:${config.api.port}`}/notifications/pack-approvals`, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    authorization: `Bearer ${token}`,
    ...signatureHeaders(new Webhook(secret!), `msg_${randomUUID()}`, new Date(), body),
  },
  body,
});
console.log(response.status, await response.text());
process.exitCode = response.ok ? 0 : 1;
