import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BinaryUnavailableError,
  resolveChromium,
  resolveTemporalCli,
  resolveTestServer,
  temporalCliCacheDir,
  testServerCacheDir,
} from '../../stack/binaries.js';

let dir: string;
async function executable(path: string): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, '#!/bin/sh\nexit 0\n');
  await chmod(path, 0o755);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-binaries-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('binary resolution order', () => {
  it('prefers an explicit path, then PATH, then the version-keyed cache', async () => {
    const cache = join(dir, 'cache');
    const explicit = await executable(join(dir, 'explicit', 'temporal'));
    const onPath = await executable(join(dir, 'bin', 'temporal'));
    const cached = await executable(join(temporalCliCacheDir({ STELLAOPS_CACHE_DIR: cache }), 'temporal'));
    const base = { STELLAOPS_CACHE_DIR: cache, PATH: join(dir, 'bin') };

    expect(await resolveTemporalCli({ env: { ...base, TEMPORAL_CLI_PATH: explicit }, build: false })).toMatchObject({
      source: 'env',
      executable: { type: 'existing-path', path: explicit },
    });
    expect(await resolveTemporalCli({ env: base, build: false })).toMatchObject({ source: 'path', path: onPath });
    expect(await resolveTemporalCli({ env: { ...base, PATH: '' }, build: false })).toMatchObject({
      source: 'cache',
      path: cached,
    });
  });

  it('keys the cache by version so an upgrade never reuses an old binary', () => {
    const env = { STELLAOPS_CACHE_DIR: '/c' };
    expect(temporalCliCacheDir(env)).toMatch(/^\/c\/temporal-cli-\d+\.\d+\.\d+$/);
    expect(testServerCacheDir(env)).toMatch(/^\/c\/temporal-test-server-\d+\.\d+\.\d+$/);
  });

  it('rejects an explicit path that is not executable, naming the variable', async () => {
    await expect(
      resolveTestServer({ env: { TEMPORAL_TEST_SERVER_PATH: join(dir, 'missing') }, build: false }),
    ).rejects.toThrow(/TEMPORAL_TEST_SERVER_PATH=.*not an executable/);
  });

  it('says how to provide a binary when none can be provisioned', async () => {
    const env = { STELLAOPS_CACHE_DIR: join(dir, 'empty-cache'), PATH: '' };
    const cli = resolveTemporalCli({ env, build: false, allowDownload: false });
    await expect(cli).rejects.toBeInstanceOf(BinaryUnavailableError);
    await expect(cli).rejects.toThrow(/TEMPORAL_CLI_PATH=.*go install github.com\/temporalio\/cli\/cmd\/temporal@v/s);
    await expect(resolveTestServer({ env, build: false, allowDownload: false })).rejects.toThrow(
      /TEMPORAL_TEST_SERVER_PATH=.*io\.temporal:temporal-test-server/s,
    );
  });

  it('uses CHROMIUM_PATH for the browser tests and names it when it is wrong', async () => {
    const chromium = await executable(join(dir, 'bin', 'chromium'));
    expect(await resolveChromium({ env: { CHROMIUM_PATH: chromium }, build: false })).toBe(chromium);
    await expect(resolveChromium({ env: { CHROMIUM_PATH: join(dir, 'nope') }, build: false })).rejects.toThrow(
      /CHROMIUM_PATH=/,
    );
  });

  it('falls back to the SDK download when allowed', async () => {
    const env = { STELLAOPS_CACHE_DIR: join(dir, 'empty-cache'), PATH: '' };
    expect(await resolveTemporalCli({ env, build: false })).toMatchObject({
      source: 'sdk-download',
      executable: { type: 'cached-download' },
    });
  });
});
