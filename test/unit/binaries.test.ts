import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BinaryUnavailableError,
  NATS_SERVER_VERSION,
  natsServerCacheDir,
  resolveChromium,
  resolveNatsServer,
  resolveTemporalCli,
  resolveTestServer,
  temporalCliCacheDir,
  testServerCacheDir,
} from '../../stack/binaries.js';
import { executable } from '../support/files.js';

let dir: string;

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

describe('nats-server resolution', () => {
  it('prefers NATS_SERVER_PATH, then PATH, then the version-keyed cache', async () => {
    const cache = join(dir, 'nats-cache');
    const explicit = await executable(join(dir, 'nats-explicit', 'nats-server'));
    const onPath = await executable(join(dir, 'nats-bin', 'nats-server'));
    const cached = await executable(join(natsServerCacheDir({ STELLAOPS_CACHE_DIR: cache }), 'nats-server'));
    const base = { STELLAOPS_CACHE_DIR: cache, PATH: join(dir, 'nats-bin') };

    expect(await resolveNatsServer({ env: { ...base, NATS_SERVER_PATH: explicit }, build: false })).toEqual({
      source: 'env',
      path: explicit,
    });
    expect(await resolveNatsServer({ env: base, build: false })).toEqual({ source: 'path', path: onPath });
    expect(await resolveNatsServer({ env: { ...base, PATH: '' }, build: false })).toEqual({
      source: 'cache',
      path: cached,
    });
    expect(natsServerCacheDir({ STELLAOPS_CACHE_DIR: '/c' })).toBe(`/c/nats-server-${NATS_SERVER_VERSION}`);
    expect(NATS_SERVER_VERSION).toBe('2.15.2');
  });

  it('refuses a NATS_SERVER_PATH that is not executable, naming it', async () => {
    const path = join(dir, 'nats-missing');
    await expect(resolveNatsServer({ env: { NATS_SERVER_PATH: path }, build: false })).rejects.toThrow(
      `NATS_SERVER_PATH=${path} is not an executable file. Fix the path or unset NATS_SERVER_PATH.`,
    );
  });

  it('builds the pinned release with go install into the cache when nothing is found', async () => {
    // A stand-in for Go, alone on PATH (hence /bin/cp), that records its calls and installs a binary where GOBIN says.
    const bin = join(dir, 'go-ok');
    const calls = join(dir, 'go-ok-calls');
    await executable(
      join(bin, 'go'),
      `echo "$* GOBIN=$GOBIN GOFLAGS=$GOFLAGS" >> '${calls}'\n` +
        `[ "$1" = install ] && /bin/cp "$0" "$GOBIN/nats-server"\nexit 0`,
    );
    const cache = join(dir, 'go-ok-cache');
    const messages: string[] = [];
    const resolved = await resolveNatsServer({
      env: { STELLAOPS_CACHE_DIR: cache, PATH: bin },
      log: (message) => messages.push(message),
    });
    const cacheDir = natsServerCacheDir({ STELLAOPS_CACHE_DIR: cache });
    expect(resolved).toEqual({ source: 'built', path: join(cacheDir, 'nats-server') });
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toEqual([
      `-version GOBIN= GOFLAGS=`,
      // Staged beside the cache entry, which only appears complete.
      `install github.com/nats-io/nats-server/v2@v2.15.2 GOBIN=${cacheDir}.build-${process.pid} GOFLAGS=-mod=mod`,
    ]);
    expect(messages).toEqual([
      'Building nats-server v2.15.2 with go install github.com/nats-io/nats-server/v2@v2.15.2 (first run only, takes about 30 s)…',
    ]);
    // The next resolution finds the build in the cache.
    expect(await resolveNatsServer({ env: { STELLAOPS_CACHE_DIR: cache, PATH: '' }, build: false })).toEqual({
      source: 'cache',
      path: join(cacheDir, 'nats-server'),
    });
  });

  it('says how to provide nats-server when the build fails or Go is missing, naming NATS_SERVER_PATH', async () => {
    const bin = join(dir, 'go-fail');
    await executable(join(bin, 'go'), '[ "$1" = install ] && echo "proxy unreachable" >&2 && exit 1\nexit 0');
    const failed = resolveNatsServer({ env: { STELLAOPS_CACHE_DIR: join(dir, 'go-fail-cache'), PATH: bin } });
    await expect(failed).rejects.toBeInstanceOf(BinaryUnavailableError);
    await expect(failed).rejects.toThrow(
      /go install failed: .*proxy unreachable.*NATS_SERVER_PATH=\/path\/to\/nats-server/s,
    );

    const noGo = resolveNatsServer({
      env: { STELLAOPS_CACHE_DIR: join(dir, 'no-go-cache'), PATH: join(dir, 'empty') },
    });
    await expect(noGo).rejects.toThrow(
      "No nats-server found (Go is not installed). Provide one with NATS_SERVER_PATH=/path/to/nats-server, put 'nats-server' on PATH, install Go so that 'go install github.com/nats-io/nats-server/v2@v2.15.2' can run, or point NATS_URL at an existing NATS server.",
    );
    await expect(
      resolveNatsServer({ env: { STELLAOPS_CACHE_DIR: join(dir, 'no-go-cache'), PATH: '' }, build: false }),
    ).rejects.toThrow('No nats-server found (build disabled).');
  });
});
