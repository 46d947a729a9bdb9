/**
 * Provisioning of the server binaries the product runs embedded: the Temporal CLI (dev server + Web UI), the
 * time-skipping test server and nats-server (JetStream); and of the production Temporal server with its SQL schema
 * tool, which the production-topology test runs on Postgres as docker-compose.yml does.
 *
 * Resolution order, for each of them:
 * 1. an explicit path from the environment (`TEMPORAL_CLI_PATH`, `TEMPORAL_TEST_SERVER_PATH`, `NATS_SERVER_PATH`,
 *    `TEMPORAL_SERVER_PATH`, `TEMPORAL_SQL_TOOL_PATH`);
 * 2. a binary on `PATH` (`temporal`, `temporal-test-server`, `nats-server`, `temporal-server`, `temporal-sql-tool`);
 * 3. a cache outside the repository keyed by version;
 * 4. a local build (`go install` for the Go programs, Maven for the Java test server) into that cache: staged in a
 *    directory of its own and renamed into place once complete, under a lock, so a second process waits for the
 *    first build instead of starting its own or finding half a cache entry;
 * 5. for the Temporal CLI and test server, the SDK's own download, which works on machines with internet; for the
 *    others, an error saying how to provide one.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, chmod, constants, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { EphemeralServerExecutable } from '@temporalio/testing';
import { provisioningEnv } from '../core/config.js';

/** Temporal CLI release built with `go install` (the newest whose go.mod has no `replace` directive). */
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Maven version of `io.temporal:temporal-test-server`. */
export const TEMPORAL_TEST_SERVER_VERSION = '1.38.0';
/** nats-server release built with `go install` (JetStream included). */
export const NATS_SERVER_VERSION = '2.15.2';
/** Release of the production Temporal server (and its SQL schema tool): the one docker-compose.yml runs. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
/** The Go module of the Temporal server: its `cmd/server`, `cmd/tools/sql`, `schema/` and `config/`. */
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';

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

/** Runs `command` to its end; resolves with its standard output, rejects quoting its output on a non-zero exit. */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
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

/** Directory of the cached Temporal server and SQL tool for {@link TEMPORAL_SERVER_VERSION}. */
export function temporalServerCacheDir(env: NodeJS.ProcessEnv = provisioningEnv()): string {
  return join(cacheRoot(env), `temporal-server-${TEMPORAL_SERVER_VERSION}`);
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
  /** More packages of the same module built with it into the same cache entry (`module/path@vX.Y.Z` each). */
  alsoBuilds?: string[];
  /**
   * Names in the cache of what `go install` writes under another name (the last element of a package path:
   * `cmd/server` installs `server`).
   */
  renames?: Record<string, string>;
  /** How long the build takes on a cold machine, for the progress message. */
  buildTime: string;
}

/** How long a process waits for another one's build of the same cache entry before giving up. */
const BUILD_LOCK_TIMEOUT_MS = 30 * 60_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `work` holding `{cacheDir}.lock` (a file naming the holder's pid), so two processes that miss the same cache
 * entry at once build it once: the second waits, then finds the first one's build. A lock whose holder has died is
 * taken over.
 */
async function withBuildLock<T>(cacheDir: string, log: ResolveOptions['log'], work: () => Promise<T>): Promise<T> {
  const lock = `${cacheDir}.lock`;
  await mkdir(dirname(lock), { recursive: true });
  const deadline = Date.now() + BUILD_LOCK_TIMEOUT_MS;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(lock, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
    // A lock file without a pid yet is being written by its holder; one whose holder is gone is stale.
    if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
      await rm(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`${lock} is still held by process ${holder} after ${BUILD_LOCK_TIMEOUT_MS / 60_000} min`);
    }
    if (!announced) log?.(`Waiting for another process (${holder || 'starting'}) to finish building ${cacheDir}…`);
    announced = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  try {
    return await work();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * `go install` of `binary` (and what it also builds) into a staging directory that is renamed to the cache entry
 * once every executable is there: the cache never holds a partial build. Runs under the build lock; a build another
 * process finished meanwhile is taken as it is.
 */
async function goInstall(binary: GoBinary, env: NodeJS.ProcessEnv, log: ResolveOptions['log']): Promise<boolean> {
  const cached = join(binary.cacheDir, binary.name);
  return withBuildLock(binary.cacheDir, log, async () => {
    if (await isExecutable(cached)) return true;
    log?.(`Building ${binary.what} with go install ${binary.module} (first run only, takes ${binary.buildTime})…`);
    const staging = `${binary.cacheDir}.build-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    try {
      await run('go', ['install', binary.module, ...(binary.alsoBuilds ?? [])], {
        env: { ...env, GOBIN: staging, GOFLAGS: '-mod=mod' },
      });
      for (const [built, name] of Object.entries(binary.renames ?? {})) {
        if (existsSync(join(staging, built))) await rename(join(staging, built), join(staging, name));
      }
      if (!(await isExecutable(join(staging, binary.name)))) return false;
      // An entry without the binary (an interrupted build of an older layout) gives way to the complete one.
      await rm(binary.cacheDir, { recursive: true, force: true });
      await rename(staging, binary.cacheDir);
      return true;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });
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
  try {
    if (await goInstall(binary, env, options.log)) return { source: 'built', path: cached };
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

/** The production Temporal server's build: both programs of the module, into one cache entry. */
function temporalServerBuild(env: NodeJS.ProcessEnv, variable: string, name: string): GoBinary {
  const version = `v${TEMPORAL_SERVER_VERSION}`;
  return {
    what: `the Temporal server ${version} and its SQL tool`,
    variable,
    name,
    cacheDir: temporalServerCacheDir(env),
    module: `${TEMPORAL_SERVER_MODULE}/cmd/server@${version}`,
    alsoBuilds: [`${TEMPORAL_SERVER_MODULE}/cmd/tools/sql@${version}`],
    // The names the server's own images give them.
    renames: { server: 'temporal-server', sql: 'temporal-sql-tool' },
    buildTime: 'about 3 min',
  };
}

function temporalServerUnavailable(what: string, variable: string, name: string, problems: string[]): Error {
  return new BinaryUnavailableError(
    `No ${what} found (${problems.join('; ') || 'build disabled'}). Provide one with ${variable}=/path/to/${name}, ` +
      `put '${name}' on PATH, or install Go so that 'go install ${TEMPORAL_SERVER_MODULE}/cmd/server@v` +
      `${TEMPORAL_SERVER_VERSION} ${TEMPORAL_SERVER_MODULE}/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}' can run.`,
  );
}

/**
 * Resolves the production Temporal server {@link TEMPORAL_SERVER_VERSION} (`TEMPORAL_SERVER_PATH`, then
 * `temporal-server` on PATH, then the cache), building it and the SQL tool with `go install` when needed (about
 * 3 min on a cold machine). There is no download fallback.
 * @throws BinaryUnavailableError naming `TEMPORAL_SERVER_PATH` when nothing works.
 */
export async function resolveTemporalServer(options: Omit<ResolveOptions, 'allowDownload'> = {}): Promise<LocalBinary> {
  const env = options.env ?? provisioningEnv();
  const found = await findOrBuildGoBinary(
    temporalServerBuild(env, 'TEMPORAL_SERVER_PATH', 'temporal-server'),
    env,
    options,
  );
  if ('path' in found) return found;
  throw temporalServerUnavailable('Temporal server', 'TEMPORAL_SERVER_PATH', 'temporal-server', found.problems);
}

/**
 * Resolves the Temporal SQL schema tool of the same release (`TEMPORAL_SQL_TOOL_PATH`, then `temporal-sql-tool` on
 * PATH, then the cache), built together with the server.
 * @throws BinaryUnavailableError naming `TEMPORAL_SQL_TOOL_PATH` when nothing works.
 */
export async function resolveTemporalSqlTool(
  options: Omit<ResolveOptions, 'allowDownload'> = {},
): Promise<LocalBinary> {
  const env = options.env ?? provisioningEnv();
  const found = await findOrBuildGoBinary(
    temporalServerBuild(env, 'TEMPORAL_SQL_TOOL_PATH', 'temporal-sql-tool'),
    env,
    options,
  );
  if ('path' in found) return found;
  throw temporalServerUnavailable('Temporal SQL tool', 'TEMPORAL_SQL_TOOL_PATH', 'temporal-sql-tool', found.problems);
}

/** Where the server module's schema and configuration files are. */
export interface TemporalServerModule {
  /** The module's directory (read-only in the module cache). */
  dir: string;
  /** `schema/postgresql/v12/temporal/versioned`: the persistence store's schema versions. */
  postgresSchemaDir: string;
  /** `schema/postgresql/v12/visibility/versioned`: the SQL visibility store's schema versions. */
  postgresVisibilitySchemaDir: string;
  /** `config/development-postgres12.yaml`: the configuration template for Postgres. */
  postgresConfigTemplate: string;
}

function moduleLayout(dir: string): TemporalServerModule {
  const v12 = join(dir, 'schema', 'postgresql', 'v12');
  return {
    dir,
    postgresSchemaDir: join(v12, 'temporal', 'versioned'),
    postgresVisibilitySchemaDir: join(v12, 'visibility', 'versioned'),
    postgresConfigTemplate: join(dir, 'config', 'development-postgres12.yaml'),
  };
}

/**
 * Finds the source of the Temporal server module {@link TEMPORAL_SERVER_VERSION} (its SQL schemas and configuration
 * templates): `TEMPORAL_SERVER_MODULE_DIR`, else Go's module cache (`go env GOMODCACHE`), else `go mod download`.
 * @throws BinaryUnavailableError saying how to provide it.
 */
export async function resolveTemporalServerModule(
  options: Omit<ResolveOptions, 'allowDownload'> = {},
): Promise<TemporalServerModule> {
  const env = options.env ?? provisioningEnv();
  const complete = (dir: string) => existsSync(moduleLayout(dir).postgresConfigTemplate);
  if (env.TEMPORAL_SERVER_MODULE_DIR) {
    if (complete(env.TEMPORAL_SERVER_MODULE_DIR)) return moduleLayout(env.TEMPORAL_SERVER_MODULE_DIR);
    throw new BinaryUnavailableError(
      `TEMPORAL_SERVER_MODULE_DIR=${env.TEMPORAL_SERVER_MODULE_DIR} has no config/development-postgres12.yaml: ` +
        `point it at the source of ${TEMPORAL_SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}.`,
    );
  }
  const problems: string[] = [];
  const spec = `${TEMPORAL_SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}`;
  if (await commandExists('go', env)) {
    try {
      const modCache = (await run('go', ['env', 'GOMODCACHE'], { env })).trim();
      const dir = join(modCache, `${TEMPORAL_SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}`);
      if (modCache && complete(dir)) return moduleLayout(dir);
      if (options.build !== false) {
        options.log?.(`Downloading ${spec} into the Go module cache (first run only)…`);
        const { Dir } = JSON.parse(await run('go', ['mod', 'download', '-json', spec], { env })) as { Dir?: string };
        if (Dir && complete(Dir)) return moduleLayout(Dir);
        problems.push(`go mod download gave no usable directory (${Dir ?? 'none'})`);
      }
    } catch (error) {
      problems.push((error as Error).message);
    }
  } else {
    problems.push('Go is not installed');
  }
  throw new BinaryUnavailableError(
    `The source of ${spec} (SQL schemas, configuration template) is not available (${problems.join('; ') || 'download disabled'}). ` +
      `Set TEMPORAL_SERVER_MODULE_DIR to a checkout of it, or install Go so that 'go mod download ${spec}' can run.`,
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

/** Everything the tests and the production-topology test run, as {@link provisionAll} resolved it. */
export interface ProvisionedBinaries {
  cli: Awaited<ReturnType<typeof resolveTemporalCli>>;
  testServer: Awaited<ReturnType<typeof resolveTestServer>>;
  nats: Awaited<ReturnType<typeof resolveNatsServer>>;
  server: Awaited<ReturnType<typeof resolveTemporalServer>>;
  sqlTool: Awaited<ReturnType<typeof resolveTemporalSqlTool>>;
  serverModule: TemporalServerModule;
  /** Chromium of the browser tests. */
  chromium: string;
}

/**
 * Resolves (building when needed, side by side) every binary of the product's tests: `npm run provision` and the
 * test run's global setup both call it, so CI caches exactly what the tests use.
 */
export async function provisionAll(options: Pick<ResolveOptions, 'log'> = {}): Promise<ProvisionedBinaries> {
  const [cli, testServer, nats, server, sqlTool, serverModule] = await Promise.all([
    resolveTemporalCli(options),
    resolveTestServer(options),
    resolveNatsServer(options),
    resolveTemporalServer(options),
    resolveTemporalSqlTool(options),
    resolveTemporalServerModule(options),
  ]);
  return { cli, testServer, nats, server, sqlTool, serverModule, chromium: await resolveChromium(options) };
}
