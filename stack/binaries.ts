/**
 * Provisioning of the server binaries the product runs embedded: the Temporal CLI (dev server + Web UI), the
 * time-skipping test server and nats-server (JetStream).
 *
 * Resolution order, for each of them:
 * 1. an explicit path from the environment (`TEMPORAL_CLI_PATH`, `TEMPORAL_TEST_SERVER_PATH`, `NATS_SERVER_PATH`);
 * 2. a binary on `PATH` (`temporal`, `temporal-test-server`, `nats-server`);
 * 3. a cache outside the repository keyed by version;
 * 4. a local build (`go install` for the CLI and nats-server, Maven for the Java test server) into that cache;
 * 5. for the Temporal binaries, the SDK's own download, which works on machines with internet; for nats-server, an
 *    error saying how to provide one.
 */
import { execFile, spawn } from 'node:child_process';
import { access, chmod, constants, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { EphemeralServerExecutable } from '@temporalio/testing';
import { provisioningEnv } from '../core/config.js';

/** Temporal CLI release built with `go install` (the newest whose go.mod has no `replace` directive). */
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Maven version of `io.temporal:temporal-test-server`. */
export const TEMPORAL_TEST_SERVER_VERSION = '1.38.0';
/** nats-server release built with `go install` (JetStream included). */
export const NATS_SERVER_VERSION = '2.15.2';

/** Where a binary came from, for logs and error messages. */
export type BinarySource = 'env' | 'path' | 'cache' | 'built' | 'sdk-download';

/** A resolved server binary. */
export interface ResolvedBinary {
  source: BinarySource;
  /** What to hand to `@temporalio/testing`. */
  executable: EphemeralServerExecutable;
  /** Absolute path when the binary is local. */
  path?: string;
}

/** A binary found or built on this machine (nats-server has no download fallback). */
export interface LocalBinary {
  source: Exclude<BinarySource, 'sdk-download'>;
  path: string;
}

/** Options shared by the resolvers. */
export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Build the binary when it is not found (default true). */
  build?: boolean;
  /** Fall back to the SDK download when nothing else works (default true; the Temporal binaries only). */
  allowDownload?: boolean;
  /** Progress messages (builds take minutes on a cold machine). */
  log?: (message: string) => void;
}

/** Thrown when no binary can be provisioned; the message says how to provide one. */
export class BinaryUnavailableError extends Error {
  override name = 'BinaryUnavailableError';
}

/** Root of the version-keyed binary cache; never inside the repository. */
export function cacheRoot(env: NodeJS.ProcessEnv = provisioningEnv()): string {
  if (env.STELLAOPS_CACHE_DIR) return env.STELLAOPS_CACHE_DIR;
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'stellaops-workflows');
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output.slice(-4000)}`));
    });
  });
}

function commandExists(command: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(command, ['-version'], { env }, (error) =>
      resolve(!error || (error as { code?: unknown }).code !== 'ENOENT'),
    );
  });
}

/** Directory of the cached Temporal CLI for {@link TEMPORAL_CLI_VERSION}. */
export function temporalCliCacheDir(env: NodeJS.ProcessEnv = provisioningEnv()): string {
  return join(cacheRoot(env), `temporal-cli-${TEMPORAL_CLI_VERSION}`);
}

/** Directory of the cached nats-server for {@link NATS_SERVER_VERSION}. */
export function natsServerCacheDir(env: NodeJS.ProcessEnv = provisioningEnv()): string {
  return join(cacheRoot(env), `nats-server-${NATS_SERVER_VERSION}`);
}

/** Directory of the cached Java test server for {@link TEMPORAL_TEST_SERVER_VERSION}. */
export function testServerCacheDir(env: NodeJS.ProcessEnv = provisioningEnv()): string {
  return join(cacheRoot(env), `temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}`);
}

async function fromEnv(variable: string, env: NodeJS.ProcessEnv): Promise<LocalBinary | undefined> {
  const path = env[variable];
  if (!path) return undefined;
  if (!(await isExecutable(path))) {
    throw new BinaryUnavailableError(
      `${variable}=${path} is not an executable file. Fix the path or unset ${variable}.`,
    );
  }
  return { source: 'env', path };
}

const local = (source: BinarySource, path: string): ResolvedBinary => ({
  source,
  path,
  executable: { type: 'existing-path', path },
});

/** A Go program the project builds itself when no binary is at hand. */
interface GoBinary {
  /** What it is, for progress messages. */
  what: string;
  /** The environment variable of an explicit path. */
  variable: string;
  /** The executable's name on PATH and in the cache. */
  name: string;
  cacheDir: string;
  /** The `go install` argument: `module/path@vX.Y.Z`. */
  module: string;
  /** How long the build takes on a cold machine, for the progress message. */
  buildTime: string;
}

/**
 * Steps 1–4 of the resolution order for a Go program: explicit path, PATH, cache, `go install` into the cache.
 * @returns the binary, or the reasons the build did not produce one.
 */
async function findOrBuildGoBinary(
  binary: GoBinary,
  env: NodeJS.ProcessEnv,
  options: ResolveOptions,
): Promise<LocalBinary | { problems: string[] }> {
  const explicit = await fromEnv(binary.variable, env);
  if (explicit) return explicit;
  const onPath = await findOnPath(binary.name, env);
  if (onPath) return { source: 'path', path: onPath };
  const cached = join(binary.cacheDir, binary.name);
  if (await isExecutable(cached)) return { source: 'cache', path: cached };

  const problems: string[] = [];
  if (options.build === false) return { problems };
  if (!(await commandExists('go', env))) return { problems: ['Go is not installed'] };
  options.log?.(
    `Building ${binary.what} with go install ${binary.module} (first run only, takes ${binary.buildTime})…`,
  );
  try {
    await mkdir(binary.cacheDir, { recursive: true });
    await run('go', ['install', binary.module], { env: { ...env, GOBIN: binary.cacheDir, GOFLAGS: '-mod=mod' } });
    if (await isExecutable(cached)) return { source: 'built', path: cached };
    problems.push('go install finished but produced no binary');
  } catch (error) {
    problems.push(`go install failed: ${(error as Error).message}`);
  }
  return { problems };
}

/**
 * Resolves the Temporal CLI, building it with `go install` into the cache when needed.
 * @throws BinaryUnavailableError when nothing works and downloads are not allowed.
 */
export async function resolveTemporalCli(options: ResolveOptions = {}): Promise<ResolvedBinary> {
  const env = options.env ?? provisioningEnv();
  const found = await findOrBuildGoBinary(
    {
      what: `the Temporal CLI v${TEMPORAL_CLI_VERSION}`,
      variable: 'TEMPORAL_CLI_PATH',
      name: 'temporal',
      cacheDir: temporalCliCacheDir(env),
      module: `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`,
      buildTime: 'minutes',
    },
    env,
    options,
  );
  if ('path' in found) return local(found.source, found.path);
  if (options.allowDownload !== false) {
    options.log?.('No local Temporal CLI; falling back to the SDK download (needs internet).');
    return {
      source: 'sdk-download',
      executable: { type: 'cached-download', downloadDir: join(cacheRoot(env), 'sdk') },
    };
  }
  throw new BinaryUnavailableError(
    `No Temporal CLI found (${found.problems.join('; ') || 'build disabled'}). Provide one with TEMPORAL_CLI_PATH=/path/to/temporal, ` +
      `put 'temporal' on PATH, or install Go so that 'go install github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}' can run.`,
  );
}

/**
 * Resolves nats-server (JetStream is built in), building it with `go install` into the cache when needed (about
 * 30 s on a cold machine). There is no download fallback: the SDK does not ship one.
 * @throws BinaryUnavailableError naming `NATS_SERVER_PATH` when nothing works.
 */
export async function resolveNatsServer(options: Omit<ResolveOptions, 'allowDownload'> = {}): Promise<LocalBinary> {
  const env = options.env ?? provisioningEnv();
  const module = `github.com/nats-io/nats-server/v2@v${NATS_SERVER_VERSION}`;
  const found = await findOrBuildGoBinary(
    {
      what: `nats-server v${NATS_SERVER_VERSION}`,
      variable: 'NATS_SERVER_PATH',
      name: 'nats-server',
      cacheDir: natsServerCacheDir(env),
      module,
      buildTime: 'about 30 s',
    },
    env,
    options,
  );
  if ('path' in found) return found;
  throw new BinaryUnavailableError(
    `No nats-server found (${found.problems.join('; ') || 'build disabled'}). Provide one with ` +
      `NATS_SERVER_PATH=/path/to/nats-server, put 'nats-server' on PATH, install Go so that 'go install ${module}' ` +
      `can run, or point NATS_URL at an existing NATS server.`,
  );
}

const testServerPom = (version: string): string => `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>stellaops.local</groupId>
  <artifactId>temporal-test-server-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>${version}</version>
    </dependency>
  </dependencies>
</project>
`;

const launcherScript = (libDir: string): string => `#!/bin/sh
# Launches the Temporal time-skipping test server; the only argument is the port.
exec java \${JAVA_OPTS:--Xss4m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} -cp '${libDir}/*' io.temporal.testserver.TestServer "$@"
`;

/**
 * Resolves the Java time-skipping test server, fetching it and its runtime dependencies from Maven
 * into the cache and writing a launcher script when needed.
 * @throws BinaryUnavailableError when nothing works and downloads are not allowed.
 */
export async function resolveTestServer(options: ResolveOptions = {}): Promise<ResolvedBinary> {
  const env = options.env ?? provisioningEnv();
  const explicit = await fromEnv('TEMPORAL_TEST_SERVER_PATH', env);
  if (explicit) return local(explicit.source, explicit.path);
  const onPath = await findOnPath('temporal-test-server', env);
  if (onPath) return local('path', onPath);
  const dir = testServerCacheDir(env);
  const launcher = join(dir, 'temporal-test-server');
  if (await isExecutable(launcher)) return local('cache', launcher);

  const problems: string[] = [];
  if (options.build !== false) {
    const [hasJava, hasMaven] = await Promise.all([commandExists('java', env), commandExists('mvn', env)]);
    if (hasJava && hasMaven) {
      options.log?.(`Fetching the Temporal test server ${TEMPORAL_TEST_SERVER_VERSION} from Maven (first run only)…`);
      try {
        await mkdir(dir, { recursive: true });
        const staging = join(dir, 'lib.partial');
        await rm(staging, { recursive: true, force: true });
        await writeFile(join(dir, 'pom.xml'), testServerPom(TEMPORAL_TEST_SERVER_VERSION));
        await run(
          'mvn',
          ['-B', '-q', 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`, '-DincludeScope=runtime'],
          { cwd: dir, env },
        );
        const jars = (await readdir(staging)).filter((name) => name.endsWith('.jar'));
        if (!jars.some((name) => name.startsWith('temporal-test-server'))) {
          throw new Error('Maven did not produce temporal-test-server.jar');
        }
        await rm(join(dir, 'lib'), { recursive: true, force: true });
        await rename(staging, join(dir, 'lib'));
        // Write the launcher last: its presence marks a complete cache entry.
        await writeFile(`${launcher}.tmp`, launcherScript(join(dir, 'lib')));
        await chmod(`${launcher}.tmp`, 0o755);
        await rename(`${launcher}.tmp`, launcher);
        return local('built', launcher);
      } catch (error) {
        problems.push(`Maven fetch failed: ${(error as Error).message}`);
      }
    } else {
      problems.push(`${hasJava ? '' : 'java '}${hasMaven ? '' : 'mvn '}not installed`.trim());
    }
  }
  if (options.allowDownload !== false) {
    options.log?.('No local test server; falling back to the SDK download (needs internet).');
    return {
      source: 'sdk-download',
      executable: { type: 'cached-download', downloadDir: join(cacheRoot(env), 'sdk') },
    };
  }
  throw new BinaryUnavailableError(
    `No Temporal time-skipping test server found (${problems.join('; ') || 'build disabled'}). Provide one with ` +
      `TEMPORAL_TEST_SERVER_PATH=/path/to/launcher (it receives the port as its only argument), put ` +
      `'temporal-test-server' on PATH, or install Java 17+ and Maven so io.temporal:temporal-test-server:` +
      `${TEMPORAL_TEST_SERVER_VERSION} can be fetched.`,
  );
}

/**
 * Resolves a Chromium for the browser tests: `CHROMIUM_PATH`, then Debian's `/usr/bin/chromium`, else installs the
 * Debian package (as root, or with sudo) — the tests drive it with playwright-core, which downloads nothing.
 * @throws BinaryUnavailableError saying how to provide one.
 */
export async function resolveChromium(options: ResolveOptions = {}): Promise<string> {
  const env = options.env ?? provisioningEnv();
  const path = env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (await isExecutable(path)) return path;
  if (env.CHROMIUM_PATH) throw new BinaryUnavailableError(`CHROMIUM_PATH=${path} is not an executable file.`);
  if (options.build !== false && (await commandExists('apt-get', env))) {
    options.log?.('Installing Debian chromium for the browser tests (first run only)…');
    const [command, prefix] = process.getuid?.() === 0 ? ['apt-get', []] : ['sudo', ['-n', 'apt-get']];
    const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      await run(command, [...prefix, 'update', '-qq'], { env: aptEnv });
      await run(command, [...prefix, 'install', '-y', '-qq', 'chromium'], { env: aptEnv });
      if (await isExecutable(path)) return path;
    } catch (error) {
      options.log?.(`apt-get install chromium failed: ${(error as Error).message.slice(0, 500)}`);
    }
  }
  throw new BinaryUnavailableError(
    "No Chromium for the browser tests: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.",
  );
}
