/**
 * The Runner as real processes, for the fault drills of the JetStream bridge: worker processes
 * (`node --import tsx workers/main.ts`, as `npm run worker` and the image run it) in the modes of the Runner —
 * `saga` replicas running the bridge on one shared durable consumer, `effect` replicas running the effects — each
 * with its own operations port, all pointed at one dev server, one test database and one embedded nats-server with
 * the streams of sagas. The reference Gateway and providers run in the test process, so their counters see every
 * arrival; the events the Gateway's commands cause are published to the aggregate stream, as an aggregate would.
 *
 * A replica is started and waited for until its `/ready` answers 200; it is stopped with SIGTERM (the orderly drain,
 * awaited with its exit code) or SIGKILL (its whole process group at once, as a machine that dies). Every process
 * started here is killed when the test file ends, and when the test process exits however it exits.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, type ConsumerInfo } from '@nats-io/jetstream';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { AppConfig, WorkerMode } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { createJetStreamEmitter, type OutboxEmitter } from '../../reference-services/emitter.js';
import { startReferenceServices, type RunningReferenceServices } from '../../reference-services/server.js';
import type { AggregateEvent } from '../../workflows/sagas/definitions.js';
import { aggregatePublishPrefix } from '../../workers/saga-streams.js';
import { startTestNats, type TestNats } from './nats.js';
import { freePort } from './ports.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { createProcessGroups, killProcessGroup } from './process-groups.js';
import { createDevServerEnv } from './temporal.js';
import { workerProcessDataConverter, workerProcessEnv } from './worker-process.js';

/** What one replica is. */
export interface RunnerSpec {
  /** A name for logs and messages (`saga-1`, `effect-2`). */
  name: string;
  mode: WorkerMode;
  /** `NATS_BRIDGE`; the configuration's default (on in the saga and combined modes) when undefined. */
  bridge?: boolean;
}

/** How a runner process ended. */
export interface RunnerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When it exited (epoch ms). */
  at: number;
}

/** A started runner process. */
export interface RunnerProcess {
  spec: RunnerSpec;
  pid: number;
  /** Base URL of its operations port, e.g. `http://127.0.0.1:41234`. */
  opsUrl: string;
  /** When it was spawned and when its `/ready` first answered 200 (epoch ms). */
  spawnedAt: number;
  readyAt: number;
  /** Settles when the process has exited. */
  exited: Promise<RunnerExit>;
  /** The last part of what it wrote to stdout and stderr, for the message of a failing test. */
  output(): string;
}

/** What a process keeps of its own output: enough to show why it failed, bounded under a busy run. */
const OUTPUT_TAIL_CHARS = 30_000;
/** How long a replica may take to become ready: generous, since several bundle the workflows at once on 2 cores. */
const READY_TIMEOUT_MS = 180_000;
/** How long an orderly stop may take before the test fails: beyond the drain's own deadline. */
const STOP_TIMEOUT_MS = 90_000;
/** Attempts at a start whose operations port was taken between choosing it and binding it. */
const PORT_ATTEMPTS = 3;

/** What each mode polls in a drill. */
const MODE_QUEUES: Record<WorkerMode, string> = { saga: 'saga', effect: 'effects', combined: 'saga,effects' };

const groups = createProcessGroups();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `url` answers 200 now. */
async function answersOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Spawns one replica on `opsPort` and resolves once its `/ready` answers 200; rejects when it exits first. */
async function spawnRunner(spec: RunnerSpec, env: Record<string, string>, opsPort: number): Promise<RunnerProcess> {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    // Its own process group: a SIGKILL takes the process and whatever it started (the transform service) at once.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...env,
      WORKER_MODE: spec.mode,
      // The sagas' queues only: the other workflow queues of the saga mode have no work here.
      WORKER_QUEUES: MODE_QUEUES[spec.mode],
      WORKER_OPS_HOST: '127.0.0.1',
      WORKER_OPS_PORT: String(opsPort),
      ...(spec.bridge !== undefined && { NATS_BRIDGE: String(spec.bridge) }),
    },
  });
  groups.add(child);
  let output = '';
  // Both pipes are read for the whole life of the process: a full pipe would block the worker's logging.
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<RunnerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      // What the process started outlives it otherwise; nothing of a stopped replica may keep running.
      killProcessGroup(child);
      resolve({ code, signal, at: Date.now() });
    });
  });
  const opsUrl = `http://127.0.0.1:${opsPort}`;
  let gone: RunnerExit | undefined;
  void exited.then((exit) => (gone = exit));
  const deadline = spawnedAt + READY_TIMEOUT_MS;
  while (!(await answersOk(`${opsUrl}/ready`))) {
    if (gone) {
      throw new Error(
        `${spec.name} (${spec.mode}) exited (${gone.signal ?? gone.code}) before it was ready:\n${output}`,
      );
    }
    if (Date.now() > deadline) {
      killProcessGroup(child);
      throw new Error(`${spec.name} (${spec.mode}) was not ready within ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(100);
  }
  return { spec, pid: child.pid!, opsUrl, spawnedAt, readyAt: Date.now(), exited, output: () => output };
}

/**
 * Starts a replica of `spec` with `env` over this process' environment (a free operations port of its own) and
 * resolves once it is ready (`GET /ready` answers 200).
 * @throws Error with the replica's output when it exits before, or is not ready within 3 minutes.
 */
export async function startRunnerProcess(spec: RunnerSpec, env: Record<string, string>): Promise<RunnerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnRunner(spec, env, await freePort());
    } catch (error) {
      // Another test file may bind the chosen port first: that start is repeated on another port.
      if (attempt >= PORT_ATTEMPTS || !String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

/** An orderly stop: its exit and how long the drain took. */
export interface RunnerStop extends RunnerExit {
  /** Milliseconds from SIGTERM to the exit. */
  tookMs: number;
}

/**
 * Sends SIGTERM to the replica (the process itself, as an orchestrator does) and resolves with its exit once it has
 * exited.
 * @throws Error with its output when it has not exited within 90 s (it is then SIGKILLed).
 */
export async function terminateRunnerProcess(runner: RunnerProcess): Promise<RunnerStop> {
  const at = Date.now();
  try {
    process.kill(runner.pid, 'SIGTERM');
  } catch {
    // already gone: its exit says how
  }
  const timeout = sleep(STOP_TIMEOUT_MS).then(() => undefined);
  const exit = await Promise.race([runner.exited, timeout]);
  if (!exit) {
    killProcessGroup(runner.pid);
    throw new Error(`${runner.spec.name} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM:\n${runner.output()}`);
  }
  return { ...exit, tookMs: exit.at - at };
}

/** SIGKILLs the replica's whole process group and resolves once it has exited (epoch ms of the kill). */
export async function killRunnerProcess(runner: RunnerProcess): Promise<number> {
  const at = Date.now();
  killProcessGroup(runner.pid);
  await runner.exited;
  return at;
}

/** SIGKILLs every runner process still running (afterAll: also when the test failed half-way). */
export function killAllRunnerProcesses(): Promise<void> {
  return groups.killAll();
}

/** A small seeded generator (mulberry32): a drill prints its seed, so a run's schedule can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link startRunnerDrillStack}. */
export interface RunnerDrillOptions {
  /** Delay before a requested rescan completes at the reference Gateway (ms). */
  scanDelayMs?: number;
  /** More environment of every replica (bridge settings of the drill). */
  env?: Record<string, string>;
}

/** The shared parts of a drill and the replicas running on them. */
export interface RunnerDrillStack {
  env: TestWorkflowEnvironment;
  /** A client of `env` with the replicas' data converter: it reads the results they encrypt. */
  client: Client;
  db: TestDatabase;
  nats: TestNats;
  /** The reference services; their emitter publishes the Gateway's events to the aggregate stream. */
  reference: RunningReferenceServices & { emitter: OutboxEmitter };
  /** The configuration the replicas run with (stream and consumer names as they see them). */
  config: AppConfig;
  /** The environment every replica gets (besides its mode and operations port). */
  runnerEnv: Record<string, string>;
  /**
   * Publishes `events` to the aggregate stream as aggregates do (in order, on their subjects, `Nats-Msg-Id` =
   * eventId) and resolves once the stream has stored each one.
   * @throws Error when one was dropped (it cannot be put on a subject).
   */
  publish(events: readonly AggregateEvent[]): Promise<void>;
  /** The bridge's durable consumer as the server sees it. */
  consumer(): Promise<ConsumerInfo>;
  /** Starts a replica on this stack (see {@link startRunnerProcess}). */
  start(spec: RunnerSpec): Promise<RunnerProcess>;
  close(): Promise<void>;
}

/**
 * Starts what the replicas share: a dev server of its own (the replicas serve the unprefixed task queues), a test
 * database, a test nats-server with the streams of sagas (`startTestNats`, configured with `env` as the replicas
 * are), and the reference services on a free port, whose Gateway publishes the events its commands cause to the
 * aggregate stream (their JetStream target). The test's own events go through the same kind of emitter.
 */
export async function startRunnerDrillStack(options: RunnerDrillOptions = {}): Promise<RunnerDrillStack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'stellaops-runner-drill-'));
  const [env, db, nats, referencePort] = await Promise.all([
    createDevServerEnv(),
    createTestDatabase(),
    startTestNats(options.env),
    freePort(),
  ]);
  const runnerEnv: Record<string, string> = {
    ...workerProcessEnv({ dataDir, env, db }),
    // Four replicas and the test share the test run's Postgres with the other test files.
    PG_POOL_MAX: '6',
    NATS_URL: nats.server.url,
    REFERENCE_SERVICES_PORT: String(referencePort),
    GATEWAY_URL: `http://127.0.0.1:${referencePort}`,
    // The bundled manifest, whatever the environment running the tests points at.
    EFFECTS_MANIFEST: '',
    ...options.env,
  };
  const { config } = nats;
  const subjectPrefix = aggregatePublishPrefix(config.nats.aggregateStream.subjects)!;
  const logger = createLogger({ level: 'warn', name: 'runner-drill' });
  const reference = await startReferenceServices({
    host: '127.0.0.1',
    port: referencePort,
    logger,
    ...(options.scanDelayMs !== undefined && { scanDelayMs: options.scanDelayMs }),
    events: { nats: nats.connection, subjectPrefix },
  });
  const aggregates = createJetStreamEmitter({ js: jetstream(nats.connection), subjectPrefix, logger });

  const client = new Client({
    connection: env.connection,
    namespace: env.namespace ?? 'default',
    dataConverter: await workerProcessDataConverter(dataDir),
  });

  return {
    env,
    client,
    db,
    nats,
    reference: reference as RunningReferenceServices & { emitter: OutboxEmitter },
    config,
    runnerEnv,
    async publish(events) {
      const dropped = aggregates.stats().dropped;
      for (const event of events) aggregates.emit(event);
      await aggregates.idle();
      if (aggregates.stats().dropped !== dropped) throw new Error('an event was dropped instead of published');
    },
    consumer: () => nats.jsm.consumers.info(config.nats.aggregateStream.name, config.nats.bridge.durable),
    start: (spec) => startRunnerProcess(spec, runnerEnv),
    async close() {
      await killAllRunnerProcesses();
      await aggregates.close();
      await reference.close();
      await nats.cleanup();
      await db.drop();
      await env.teardown();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
