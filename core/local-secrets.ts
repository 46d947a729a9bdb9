/**
 * Secrets that local runs generate once under the data directory (file mode 0600): the local token signing key,
 * the inbound event signing secret and the approval-link secret. Production configures real ones (see core/config.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AppConfig } from './config.js';

/** Reads `name` from `dataDir/auth/`, generating it with `generate` on first use. */
export async function loadOrCreateSecret(
  dataDir: string,
  name: string,
  generate: () => string | Promise<string>,
): Promise<string> {
  const path = join(dataDir, 'auth', name);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(join(dataDir, 'auth'), { recursive: true, mode: 0o700 });
  const secret = await generate();
  try {
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return (await readFile(path, 'utf8')).trim(); // created concurrently: use that one
  }
}

/** A Standard Webhooks secret (`whsec_` + base64 of 32 random bytes). */
export const generateWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
/** A 256-bit random secret, base64url. */
export const generateSecret = (): string => randomBytes(32).toString('base64url');

/** The approval-link secret: configured, or generated once under the data directory (local runs). */
export async function approvalLinkSecretOf(config: AppConfig): Promise<string> {
  return config.packApprovals.linkSecret ?? loadOrCreateSecret(config.dataDir, 'approval-link-secret', generateSecret);
}

/** The inbound event signing secrets: configured, or one generated under the data directory (local runs). */
export async function packEventSecretsOf(config: AppConfig): Promise<string[]> {
  return (
    config.packApprovals.eventSecrets ?? [
      await loadOrCreateSecret(config.dataDir, 'pack-events-secret', generateWebhookSecret),
    ]
  );
}
