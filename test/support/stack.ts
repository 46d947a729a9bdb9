/**
 * Runs `npm start` as a child process for e2e tests: its own process group, like a terminal job, so a group signal
 * reaches the `tsx` launcher and the product process at once, as Ctrl-C does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from './ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running `npm start`. */
export interface Stack {
  child: ChildProcess;
  output: () => string;
  /** The local token it printed. */
  token: string;
  exited: Promise<number | null>;
}

/**
 * Starts the stack with `env` and waits for its ready banner: by default as `npm start` runs it, one process
 * (`node --import tsx`; npm itself and its `sh -c` are left out: on Ctrl-C they report death by SIGINT whatever the
 * product's exit code); with `launcher: 'tsx'` behind the `tsx` launcher process, which relays signals to it.
 */
export async function startStack(env: NodeJS.ProcessEnv, options: { launcher?: 'tsx' | 'node' } = {}): Promise<Stack> {
  const args =
    options.launcher === 'tsx'
      ? [join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'scripts/start.ts']
      : ['--import', 'tsx', 'scripts/start.ts'];
  const { child, output: out, exited } = spawnGroup(args, env);
  const output = () => out();
  const deadline = Date.now() + 150_000;
  while (!/StellaOps Workflows is ready/.test(output())) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output()}`);
    if (/is NOT ready/.test(output()) || Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`npm start did not become ready:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const token = /Local token[^\n]*\n\s+(\S+)/.exec(output())?.[1];
  if (!token) throw new Error(`no token printed:\n${output()}`);
  return { child, output, token, exited };
}

/**
 * Spawns `node {args}` in the project directory as its own process group (as a terminal runs a job), collecting
 * stdout and stderr together.
 */
export function spawnGroup(
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Free ports of one stack (a type, not an interface, so `Object.values` sees numbers). */
export type StackPorts = {
  api: number;
  temporal: number;
  ui: number;
  pg: number;
  engine: number;
  reference: number;
  nats: number;
};

/**
 * A data directory and free ports for the stacks of one e2e file, created before its tests and removed after them;
 * a stack still registered as `current` then is killed.
 */
export function useStackSandbox(name: string): { dataDir: string; ports: StackPorts; current: Stack | undefined } {
  const sandbox = {
    dataDir: '',
    ports: { api: 0, temporal: 0, ui: 0, pg: 0, engine: 0, reference: 0, nats: 0 },
    current: undefined as Stack | undefined,
  };
  beforeAll(async () => {
    sandbox.dataDir = await mkdtemp(join(tmpdir(), `stellaops-e2e-${name}-`));
    await chmod(sandbox.dataDir, 0o755); // the postgres system user must reach the data directory
    sandbox.ports = {
      api: await freePort(),
      temporal: await freePort(),
      ui: await freePort(),
      pg: await freePort(),
      engine: await freePort(),
      reference: await freePort(),
      nats: await freePort(),
    };
  });
  afterAll(async () => {
    if (sandbox.current) process.kill(-sandbox.current.child.pid!, 'SIGKILL');
    await rm(sandbox.dataDir, { recursive: true, force: true });
  });
  return sandbox;
}

/**
 * Ctrl-C: SIGINT to the whole process group; resolves with the exit code. `repeat` more signals follow, `gapMs`
 * apart (a second Ctrl-C, or the launcher forwarding the first one again).
 */
export async function stopStack(
  stack: Stack,
  options: { repeat?: number; gapMs?: number } = {},
): Promise<number | null> {
  process.kill(-stack.child.pid!, 'SIGINT');
  for (let i = 0; i < (options.repeat ?? 0); i++) {
    if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
    try {
      process.kill(-stack.child.pid!, 'SIGINT');
    } catch {
      break; // the whole group has exited already
    }
  }
  const code = await Promise.race([
    stack.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 45_000)),
  ]);
  if (code === 'timeout') throw new Error(`npm start did not stop within 45 s:\n${stack.output()}`);
  return code;
}

/** Environment of an isolated stack: no external servers, everything on the given ports and data directory. */
export function stackEnv(dataDir: string, ports: StackPorts): NodeJS.ProcessEnv {
  const {
    TEMPORAL_ADDRESS: _t,
    DATABASE_URL: _d,
    POLICY_ENGINE_URL: _p,
    SMTP_URL: _s,
    GATEWAY_URL: _g,
    EFFECTS_MANIFEST: _e,
    NATS_URL: _n,
    NATS_CREDENTIALS_FILE: _c,
    ...rest
  } = process.env;
  return {
    ...rest,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
    API_PORT: String(ports.api),
    TEMPORAL_DEV_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    PG_EMBEDDED_PORT: String(ports.pg),
    POLICY_ENGINE_PORT: String(ports.engine),
    REFERENCE_SERVICES_PORT: String(ports.reference),
    NATS_EMBEDDED_PORT: String(ports.nats),
    // A free port: stacks of two test files may run at once.
    WORKER_OPS_PORT: '0',
  };
}

/** One JSON log line of the stack (pino), with its position in the output. */
export interface StackLogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The JSON log lines of `output`, in order; banner lines and anything else that is not JSON are left out. */
export function stackLogLines(output: string): StackLogLine[] {
  const lines: StackLogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as Partial<StackLogLine>;
      if (typeof entry.msg === 'string' && typeof entry.level === 'number') lines.push(entry as StackLogLine);
    } catch {
      // a line that merely starts with a brace
    }
  }
  return lines;
}
