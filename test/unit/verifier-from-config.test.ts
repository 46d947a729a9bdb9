import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifierFromConfig } from '../../api/server.js';
import { loadConfig } from '../../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../../core/local-keys.js';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'stellaops-verifier-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('the API’s token verifier from the configuration', () => {
  it('applies AUTH_JWT_MAX_LIFETIME_SECONDS to the tokens it accepts', async () => {
    const config = loadConfig({ DATA_DIR: dataDir, AUTH_JWT_MAX_LIFETIME_SECONDS: '3600' });
    const key = await loadOrCreateLocalKey(config.dataDir);
    const mint = (expiresIn: string) =>
      mintToken(key, {
        tenant: 'acme',
        scopes: ['policy:simulate'],
        subject: 'alice',
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        expiresIn,
      });
    const verify = await createVerifierFromConfig(config);
    await expect(verify(await mint('30m'))).resolves.toMatchObject({ tenantId: 'acme', subject: 'alice' });
    await expect(verify(await mint('2h'))).rejects.toMatchObject({ statusCode: 401 });
    // Without the setting, the default (24 h) still admits a 2 h token.
    const lenient = await createVerifierFromConfig(loadConfig({ DATA_DIR: dataDir }));
    await expect(lenient(await mint('2h'))).resolves.toMatchObject({ tenantId: 'acme' });
  });
});
