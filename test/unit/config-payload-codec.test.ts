/**
 * The payload codec's configuration: keys inline or from a file (oldest first), every malformed entry refused by its
 * variable and position without quoting key material, production without keys refused, and the codec endpoint's CORS
 * origins and local-UI trust.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig, type ReadTextFile } from '../../core/config.js';
import { configProblems } from '../support/config.js';

const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
const SHORT = randomBytes(16).toString('base64');
const FILE = '/etc/stellaops/payload-codec-keys';

/** A reader that serves `content` for the key file only. */
const serving =
  (content: string): ReadTextFile =>
  (path) => {
    if (path !== FILE) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return content;
  };

/** Every problem the configuration reports, checked never to carry key material. */
function problemsOf(env: NodeJS.ProcessEnv, readFile?: ReadTextFile): string[] {
  const problems = configProblems(env, readFile);
  for (const secret of [KEY_A, KEY_B, SHORT]) expect(problems.join('\n')).not.toContain(secret);
  return problems;
}

/** Production settings that pass except for what a test varies. */
const PRODUCTION = {
  NODE_ENV: 'production',
  AUTH_JWKS_URL: 'https://idp.example/jwks.json',
  PACK_EVENTS_SIGNING_SECRETS: 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=',
  APPROVAL_LINK_SECRET: 'a-long-link-secret',
};

describe('payload codec configuration', () => {
  it('uses the generated local key outside production, with the embedded Web UI as the CORS origins', () => {
    expect(loadConfig({}).payloadCodec).toEqual({
      keys: undefined,
      corsOrigins: ['http://127.0.0.1:8233', 'http://localhost:8233'],
      trustLocalUi: undefined,
    });
    expect(loadConfig({ TEMPORAL_UI_PORT: '18233' }).payloadCodec.corsOrigins).toEqual([
      'http://127.0.0.1:18233',
      'http://localhost:18233',
    ]);
  });

  it('reads PAYLOAD_CODEC_KEYS oldest first, blanks around entries ignored', () => {
    const { keys } = loadConfig({ PAYLOAD_CODEC_KEYS: ` 2025-01:${KEY_A} , 2026.01_b:${KEY_B},` }).payloadCodec;
    expect(keys).toEqual([
      { id: '2025-01', key: Buffer.from(KEY_A, 'base64') },
      { id: '2026.01_b', key: Buffer.from(KEY_B, 'base64') },
    ]);
  });

  it('takes a key without its base64 padding', () => {
    const { keys } = loadConfig({ PAYLOAD_CODEC_KEYS: `k:${KEY_A.replace(/=+$/, '')}` }).payloadCodec;
    expect(keys).toEqual([{ id: 'k', key: Buffer.from(KEY_A, 'base64') }]);
  });

  it('reads PAYLOAD_CODEC_KEYS_FILE: one entry a line, comments and blank lines skipped', () => {
    const content = `# rotated yearly\n\n2025:${KEY_A}\r\n  # the newest last\n2026:${KEY_B}\n`;
    const { keys } = loadConfig({ PAYLOAD_CODEC_KEYS_FILE: FILE }, serving(content)).payloadCodec;
    expect(keys?.map((k) => k.id)).toEqual(['2025', '2026']);
    expect(keys?.[1]?.key.equals(Buffer.from(KEY_B, 'base64'))).toBe(true);
  });

  it('refuses both variables at once', () => {
    expect(
      problemsOf({ PAYLOAD_CODEC_KEYS: `a:${KEY_A}`, PAYLOAD_CODEC_KEYS_FILE: FILE }, serving(`b:${KEY_B}`)),
    ).toEqual(['PAYLOAD_CODEC_KEYS and PAYLOAD_CODEC_KEYS_FILE exclude each other: set one']);
  });

  it('refuses malformed entries by position, never quoting a key', () => {
    expect(
      problemsOf({
        PAYLOAD_CODEC_KEYS: [
          `ok:${KEY_A}`,
          KEY_B,
          `bad id:${KEY_B}`,
          `short:${SHORT}`,
          `junk:${KEY_B}!`,
          'empty:',
        ].join(','),
      }),
    ).toEqual([
      'PAYLOAD_CODEC_KEYS: entry 2 must be keyId:base64key',
      "PAYLOAD_CODEC_KEYS: entry 3 must start with a key id of 1 to 64 letters, digits, '.', '_' or '-' before the ':'",
      'PAYLOAD_CODEC_KEYS: entry 4 (key id "short") must have a key of exactly 32 bytes (got 16)',
      'PAYLOAD_CODEC_KEYS: entry 5 (key id "junk") must have a base64 key after the \':\'',
      'PAYLOAD_CODEC_KEYS: entry 6 (key id "empty") must have a base64 key after the \':\'',
    ]);
    expect(problemsOf({ PAYLOAD_CODEC_KEYS: `${'k'.repeat(65)}:${KEY_A}` })).toEqual([
      "PAYLOAD_CODEC_KEYS: entry 1 must start with a key id of 1 to 64 letters, digits, '.', '_' or '-' before the ':'",
    ]);
  });

  it('refuses a repeated key id', () => {
    expect(problemsOf({ PAYLOAD_CODEC_KEYS: `k:${KEY_A},k:${KEY_B}` })).toEqual([
      'PAYLOAD_CODEC_KEYS: entry 2 repeats the key id "k" (each key needs its own id)',
    ]);
  });

  it('names the file and the line of a bad entry, an unreadable file and a file without keys', () => {
    expect(problemsOf({ PAYLOAD_CODEC_KEYS_FILE: FILE }, serving(`# keys\na:${KEY_A}\nb:${SHORT}\n`))).toEqual([
      `PAYLOAD_CODEC_KEYS_FILE ("${FILE}"): line 3 (key id "b") must have a key of exactly 32 bytes (got 16)`,
    ]);
    expect(problemsOf({ PAYLOAD_CODEC_KEYS_FILE: '/missing/keys' }, serving(''))).toEqual([
      'PAYLOAD_CODEC_KEYS_FILE ("/missing/keys") cannot be read (ENOENT)',
    ]);
    expect(problemsOf({ PAYLOAD_CODEC_KEYS_FILE: FILE }, serving('# none yet\n\n'))).toEqual([
      `PAYLOAD_CODEC_KEYS_FILE ("${FILE}") lists no key`,
    ]);
  });

  it('refuses production without configured keys, as it refuses the generated token key', () => {
    expect(problemsOf(PRODUCTION)).toEqual([
      'NODE_ENV=production needs PAYLOAD_CODEC_KEYS or PAYLOAD_CODEC_KEYS_FILE: the generated local key is for local runs only',
    ]);
    const config = loadConfig({ ...PRODUCTION, PAYLOAD_CODEC_KEYS: `prod-1:${KEY_A}` });
    expect(config.payloadCodec.keys?.map((k) => k.id)).toEqual(['prod-1']);
    // No local Web UI in production: the codec endpoint answers no browser origin unless told.
    expect(config.payloadCodec.corsOrigins).toEqual([]);
    expect(
      loadConfig({ ...PRODUCTION, PAYLOAD_CODEC_KEYS_FILE: FILE }, serving(`prod-1:${KEY_A}`)).payloadCodec.keys,
    ).toHaveLength(1);
  });

  it('reads CODEC_CORS_ORIGINS as http(s) origins and refuses anything with a path, query or credentials', () => {
    const config = loadConfig({ CODEC_CORS_ORIGINS: 'https://ui.example.com, http://127.0.0.1:8080/' });
    expect(config.payloadCodec.corsOrigins).toEqual(['https://ui.example.com', 'http://127.0.0.1:8080']);
    expect(
      loadConfig({
        ...PRODUCTION,
        PAYLOAD_CODEC_KEYS: `p:${KEY_A}`,
        CODEC_CORS_ORIGINS: 'https://temporal-ui.internal',
      }).payloadCodec.corsOrigins,
    ).toEqual(['https://temporal-ui.internal']);
    const refused = [
      'https://ui.example.com/codec',
      'ftp://ui.example.com',
      'ui.example.com',
      'https://u:p@ui.example',
    ];
    for (const origin of [...refused, 'https://ui.example.com?x=1', 'https://ui.example.com#top']) {
      expect(problemsOf({ CODEC_CORS_ORIGINS: origin })).toEqual([
        `CODEC_CORS_ORIGINS must list http(s) origins without a path, e.g. https://ui.example (got "${origin}")`,
      ]);
    }
  });

  it('reads CODEC_TRUST_LOCAL_UI, refusing other values and production', () => {
    // Unset is neither: npm start turns it on, an explicit false keeps it off there too.
    expect(loadConfig({}).payloadCodec.trustLocalUi).toBeUndefined();
    expect(loadConfig({ CODEC_TRUST_LOCAL_UI: 'true' }).payloadCodec.trustLocalUi).toBe(true);
    expect(loadConfig({ CODEC_TRUST_LOCAL_UI: 'FALSE' }).payloadCodec.trustLocalUi).toBe(false);
    expect(problemsOf({ CODEC_TRUST_LOCAL_UI: 'yes' })).toEqual([
      'CODEC_TRUST_LOCAL_UI must be true or false (got "yes")',
    ]);
    expect(problemsOf({ ...PRODUCTION, PAYLOAD_CODEC_KEYS: `p:${KEY_A}`, CODEC_TRUST_LOCAL_UI: 'true' })).toEqual([
      'CODEC_TRUST_LOCAL_UI=true is for local runs only: NODE_ENV=production decodes for tokens only',
    ]);
  });
});
