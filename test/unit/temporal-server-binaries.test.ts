/**
 * Provisioning of the production Temporal server, its SQL tool and the release's schema files (stack/binaries.ts),
 * with stand-ins for Go: the resolution order, the names the build's programs get in the cache, one build for
 * several processes at once, and messages that say how to provide what is missing.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BinaryUnavailableError,
  resolveTemporalServer,
  resolveTemporalServerModule,
  resolveTemporalSqlTool,
  TEMPORAL_SERVER_VERSION,
  temporalServerCacheDir,
} from '../../stack/binaries.js';
import { executable } from '../support/files.js';

let dir: string;

/**
 * A stand-in for Go, alone on PATH (hence /bin/…), that records its calls and, for `go install`, writes the
 * programs it was asked for (`server`, `sql`) where GOBIN says after `delay` seconds.
 */
async function fakeGo(name: string, options: { delay?: number } = {}): Promise<{ bin: string; calls: string }> {
  const bin = join(dir, name);
  const calls = join(dir, `${name}-calls`);
  await executable(
    join(bin, 'go'),
    [
      `echo "$1 GOBIN=$GOBIN" >> '${calls}'`,
      'if [ "$1" = install ]; then',
      `  /bin/sleep ${options.delay ?? 0}`,
      '  for p in "$@"; do case "$p" in */cmd/server@*) /bin/cp "$0" "$GOBIN/server";; */cmd/tools/sql@*) /bin/cp "$0" "$GOBIN/sql";; esac; done',
      'fi',
      'exit 0',
    ].join('\n'),
  );
  return { bin, calls };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-temporal-server-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Temporal server and SQL tool resolution', () => {
  it('prefers the explicit path, then PATH, then the version-keyed cache', async () => {
    const cache = join(dir, 'order-cache');
    const explicit = await executable(join(dir, 'explicit', 'temporal-server'));
    const onPath = await executable(join(dir, 'order-bin', 'temporal-sql-tool'));
    const cacheDir = temporalServerCacheDir({ STELLAOPS_CACHE_DIR: cache });
    const cachedServer = await executable(join(cacheDir, 'temporal-server'));
    const cachedTool = await executable(join(cacheDir, 'temporal-sql-tool'));
    const base = { STELLAOPS_CACHE_DIR: cache, PATH: join(dir, 'order-bin') };

    expect(await resolveTemporalServer({ env: { ...base, TEMPORAL_SERVER_PATH: explicit }, build: false })).toEqual({
      source: 'env',
      path: explicit,
    });
    expect(await resolveTemporalServer({ env: base, build: false })).toEqual({ source: 'cache', path: cachedServer });
    expect(await resolveTemporalSqlTool({ env: base, build: false })).toEqual({ source: 'path', path: onPath });
    expect(await resolveTemporalSqlTool({ env: { ...base, PATH: '' }, build: false })).toEqual({
      source: 'cache',
      path: cachedTool,
    });
    expect(cacheDir).toBe(join(cache, `temporal-server-${TEMPORAL_SERVER_VERSION}`));
    await expect(
      resolveTemporalSqlTool({ env: { TEMPORAL_SQL_TOOL_PATH: join(dir, 'missing') }, build: false }),
    ).rejects.toThrow(/TEMPORAL_SQL_TOOL_PATH=.*not an executable/);
  });

  it('builds both programs of the release in one go install, under the names of the server images', async () => {
    const { bin, calls } = await fakeGo('go-once', { delay: 1 });
    const cache = join(dir, 'once-cache');
    const env = { STELLAOPS_CACHE_DIR: cache, PATH: bin };
    const messages: string[] = [];
    const log = (message: string) => messages.push(message);
    // Two processes' worth of resolutions at once: the second waits for the first one's build.
    const [server, tool] = await Promise.all([
      resolveTemporalServer({ env, log }),
      resolveTemporalSqlTool({ env, log }),
    ]);
    const cacheDir = temporalServerCacheDir(env);
    expect(server).toEqual({ source: 'built', path: join(cacheDir, 'temporal-server') });
    expect(tool).toEqual({ source: 'built', path: join(cacheDir, 'temporal-sql-tool') });
    const installs = (await readFile(calls, 'utf8')).split('\n').filter((line) => line.startsWith('install'));
    expect(installs).toEqual([`install GOBIN=${cacheDir}.build-${process.pid}`]);
    // One build is announced; the other resolution may say it waits before or after that line.
    expect(messages.filter((m) => m.startsWith('Building'))).toEqual([
      `Building the Temporal server v${TEMPORAL_SERVER_VERSION} and its SQL tool with go install ` +
        `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION} (first run only, takes about 3 min)…`,
    ]);
    // Nothing but the complete entry is left: no staging directory, no lock.
    expect((await readdir(cache)).sort()).toEqual([`temporal-server-${TEMPORAL_SERVER_VERSION}`]);
    expect((await readdir(cacheDir)).sort()).toEqual(['temporal-server', 'temporal-sql-tool']);
  });

  it('takes over the lock of a build whose process is gone', async () => {
    const { bin } = await fakeGo('go-stale');
    const cache = join(dir, 'stale-cache');
    const env = { STELLAOPS_CACHE_DIR: cache, PATH: bin };
    const cacheDir = temporalServerCacheDir(env);
    await mkdir(cache, { recursive: true });
    // A pid above the kernel's limit never runs.
    await writeFile(`${cacheDir}.lock`, '4194305');
    expect(await resolveTemporalServer({ env })).toEqual({ source: 'built', path: join(cacheDir, 'temporal-server') });
  });

  it('says how to provide the server when Go is missing', async () => {
    const noGo = resolveTemporalServer({ env: { STELLAOPS_CACHE_DIR: join(dir, 'no-go'), PATH: join(dir, 'empty') } });
    await expect(noGo).rejects.toBeInstanceOf(BinaryUnavailableError);
    await expect(noGo).rejects.toThrow(
      `No Temporal server found (Go is not installed). Provide one with TEMPORAL_SERVER_PATH=/path/to/temporal-server, ` +
        `put 'temporal-server' on PATH, or install Go so that 'go install go.temporal.io/server/cmd/server@v1.29.1 ` +
        `go.temporal.io/server/cmd/tools/sql@v1.29.1' can run.`,
    );
  });
});

describe('Temporal server module resolution', () => {
  it('uses TEMPORAL_SERVER_MODULE_DIR, laid out as the release is', async () => {
    const module = join(dir, 'module');
    await mkdir(join(module, 'config'), { recursive: true });
    await writeFile(join(module, 'config', 'development-postgres12.yaml'), 'log: {}\n');
    expect(await resolveTemporalServerModule({ env: { TEMPORAL_SERVER_MODULE_DIR: module } })).toEqual({
      dir: module,
      postgresSchemaDir: join(module, 'schema', 'postgresql', 'v12', 'temporal', 'versioned'),
      postgresVisibilitySchemaDir: join(module, 'schema', 'postgresql', 'v12', 'visibility', 'versioned'),
      postgresConfigTemplate: join(module, 'config', 'development-postgres12.yaml'),
    });
    await expect(
      resolveTemporalServerModule({ env: { TEMPORAL_SERVER_MODULE_DIR: join(dir, 'not-a-module') } }),
    ).rejects.toThrow(/TEMPORAL_SERVER_MODULE_DIR=.*no config\/development-postgres12\.yaml/);
  });

  it('finds the release in the Go module cache, else downloads it, else says how to provide it', async () => {
    const modCache = join(dir, 'gomodcache');
    const inCache = join(modCache, `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`);
    await mkdir(join(inCache, 'config'), { recursive: true });
    await writeFile(join(inCache, 'config', 'development-postgres12.yaml'), 'log: {}\n');
    const bin = join(dir, 'go-mod');
    await executable(
      join(bin, 'go'),
      `[ "$1" = env ] && echo '${modCache}'\n[ "$1" = mod ] && echo '{"Dir": "${inCache}"}'\nexit 0`,
    );
    expect((await resolveTemporalServerModule({ env: { PATH: bin } })).dir).toBe(inCache);

    const emptyCache = join(dir, 'go-mod-empty');
    await executable(
      join(emptyCache, 'go'),
      `[ "$1" = env ] && echo '${join(dir, 'nothing-here')}'\n[ "$1" = mod ] && echo '{"Dir": "${inCache}"}'\nexit 0`,
    );
    expect((await resolveTemporalServerModule({ env: { PATH: emptyCache } })).dir).toBe(inCache);
    await expect(resolveTemporalServerModule({ env: { PATH: emptyCache }, build: false })).rejects.toThrow(
      /go\.temporal\.io\/server@v1\.29\.1 .*download disabled.*TEMPORAL_SERVER_MODULE_DIR/s,
    );
    await expect(resolveTemporalServerModule({ env: { PATH: join(dir, 'empty') } })).rejects.toThrow(
      /Go is not installed.*TEMPORAL_SERVER_MODULE_DIR/s,
    );
  });
});
