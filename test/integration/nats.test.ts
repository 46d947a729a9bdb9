/**
 * NATS as `npm start` runs it, on real nats-server processes from the project's own provisioning: the embedded
 * server (JetStream store in the data directory, loopback only, stopped with the other servers), the streams of
 * sagas (created when missing, idempotently; refused when missing with NATS_CREATE_STREAMS=false), an existing
 * deployment through NATS_URL (nothing embedded started) and its credentials file.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nkeys, type NatsConnection } from '@nats-io/transport-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { resolveNatsServer } from '../../stack/binaries.js';
import { startInfrastructure } from '../../stack/index.js';
import { startEmbeddedNats, type EmbeddedNatsHandle } from '../../stack/nats.js';
import { startServerProcess, type ServerProcess } from '../../stack/server-process.js';
import {
  aggregateEventSubject,
  connectNats,
  prepareSagaStreams,
  SagaStreamsError,
  sagaTriggerSubjects,
} from '../../workers/saga-streams.js';
import { memoryLogger } from '../support/logger.js';
import { freePort, isListening } from '../support/ports.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createDevServerEnv } from '../support/temporal.js';

let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stellaops-nats-'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An embedded server on a free port with its store in a fresh directory, stopped after the test. */
async function embedded(name: string): Promise<EmbeddedNatsHandle> {
  const server = await startEmbeddedNats({ storeDir: join(dir, name, 'nats'), port: await freePort() });
  cleanups.push(() => server.stop());
  return server;
}

async function client(url: string): Promise<NatsConnection> {
  const connection = await connect({ servers: url, reconnect: false });
  cleanups.push(() => connection.close());
  return connection;
}

function alive(pid: number | undefined): boolean {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
}

const ADVISORY = { tenantId: 'acme', aggregateType: 'Advisory', eventType: 'Advisory.Published' };

describe('the embedded nats-server', () => {
  it('runs JetStream with its store in the data directory, on loopback only, and keeps the store across restarts', async () => {
    const storeDir = join(dir, 'restart', 'nats');
    const port = await freePort();
    const first = await startEmbeddedNats({ storeDir, port });
    cleanups.push(() => first.stop());
    expect(first.url).toBe(`nats://127.0.0.1:${port}`);
    // Bound to 127.0.0.1 only: another loopback address of the same machine is refused.
    expect(await isListening(port, '127.0.0.1')).toBe(true);
    expect(await isListening(port, '127.0.0.2')).toBe(false);

    const config = loadConfig({ NATS_URL: first.url });
    const streams = await prepareSagaStreams(config);
    expect(streams.map((s) => [s.name, s.created])).toEqual([
      ['AGGREGATE_EVENTS', true],
      ['WORKFLOW_EVENTS', true],
    ]);
    const connection = await client(first.url);
    const ack = await jetstream(connection).publish(aggregateEventSubject('aggregate', ADVISORY), '{"eventId":"e-1"}');
    expect(ack).toMatchObject({ stream: 'AGGREGATE_EVENTS', seq: 1 });
    expect(await readdir(join(storeDir, 'jetstream', '$G', 'streams'))).toEqual([
      'AGGREGATE_EVENTS',
      'WORKFLOW_EVENTS',
    ]);
    await connection.close();

    await first.stop();
    expect(alive(first.pid)).toBe(false);
    expect(await isListening(port)).toBe(false);
    await first.stop(); // idempotent

    const second = await startEmbeddedNats({ storeDir, port });
    cleanups.push(() => second.stop());
    expect(second.pid).not.toBe(first.pid);
    const again = await prepareSagaStreams(config);
    expect(again.map((s) => s.created)).toEqual([false, false]);
    const jsm = await jetstreamManager(await client(second.url));
    const stored = await jsm.streams.getMessage('AGGREGATE_EVENTS', { seq: 1 });
    expect(stored?.subject).toBe('aggregate.acme.Advisory.Advisory.Published');
    expect(stored?.string()).toBe('{"eventId":"e-1"}');
  });

  it('fails clearly when its port is taken, naming NATS_EMBEDDED_PORT', async () => {
    const taken = await embedded('busy-first');
    const start = startEmbeddedNats({ storeDir: join(dir, 'busy-second', 'nats'), port: taken.port });
    await expect(start).rejects.toThrow(/nats-server exited with code 1 \(is port \d+ free\? Set NATS_EMBEDDED_PORT\)/);
    await expect(start).rejects.toThrow(/address already in use/);
    // The server already there keeps running.
    expect(await isListening(taken.port)).toBe(true);
  });
});

describe('the streams of sagas', () => {
  it('are created when missing, with the configured names and subjects, and found again idempotently', async () => {
    const server = await embedded('create');
    const config = loadConfig({
      NATS_URL: server.url,
      NATS_AGGREGATE_STREAM: 'PLATFORM_AGGREGATES',
      NATS_AGGREGATE_SUBJECTS: 'eu.aggregate.>,us.aggregate.>',
      NATS_WORKFLOW_STREAM: 'RUNNER_FACTS',
      NATS_WORKFLOW_SUBJECTS: 'runner.>',
    });
    const { logger, records } = memoryLogger();
    // Two processes starting at once (npm start's replicas) both succeed.
    const [one, two] = await Promise.all([prepareSagaStreams(config, logger), prepareSagaStreams(config, logger)]);
    expect(one.map((s) => [s.role, s.name, s.subjects])).toEqual([
      ['aggregate', 'PLATFORM_AGGREGATES', ['eu.aggregate.>', 'us.aggregate.>']],
      ['workflow', 'RUNNER_FACTS', ['runner.>']],
    ]);
    expect(two.map((s) => s.name)).toEqual(['PLATFORM_AGGREGATES', 'RUNNER_FACTS']);
    expect(await prepareSagaStreams(config)).toEqual([
      {
        role: 'aggregate',
        name: 'PLATFORM_AGGREGATES',
        subjects: ['eu.aggregate.>', 'us.aggregate.>'],
        created: false,
      },
      { role: 'workflow', name: 'RUNNER_FACTS', subjects: ['runner.>'], created: false },
    ]);
    expect(records.filter((r) => r.msg === 'JetStream stream created').map((r) => r.stream)).toEqual(
      expect.arrayContaining(['PLATFORM_AGGREGATES', 'RUNNER_FACTS']),
    );

    const connection = await client(server.url);
    const jsm = await jetstreamManager(connection);
    expect((await jsm.streams.names().next()).sort()).toEqual(['PLATFORM_AGGREGATES', 'RUNNER_FACTS']);
    const js = jetstream(connection);
    expect((await js.publish('us.aggregate.acme.Scan.Scan.Completed', '{}')).stream).toBe('PLATFORM_AGGREGATES');
    expect((await js.publish('runner.facts.acme.saga.completed', '{}')).stream).toBe('RUNNER_FACTS');
    // JetStream drops a repeated message id: what the egress relies on for its retries.
    const first = await js.publish('runner.effects.acme', '{}', { msgID: 'cmd-1' });
    const repeat = await js.publish('runner.effects.acme', '{}', { msgID: 'cmd-1' });
    expect([first.duplicate, repeat.duplicate, repeat.seq]).toEqual([false, true, first.seq]);

    // A consumer filtered on the sagas' triggers takes the events they react to and no others.
    await js.publish('eu.aggregate.acme.Advisory.Advisory.Published', '{}');
    await js.publish('eu.aggregate.acme.Advisory.Advisory.Withdrawn', '{}');
    const consumer = await jsm.consumers.add('PLATFORM_AGGREGATES', {
      durable_name: 'triggers',
      filter_subjects: sagaTriggerSubjects(config.nats.aggregateStream.subjects),
    });
    expect(consumer.num_pending).toBe(2);
  });

  it('are refused at start-up when missing and NATS_CREATE_STREAMS=false, naming each, and nothing is created', async () => {
    const server = await embedded('refuse');
    const config = loadConfig({ NATS_URL: server.url, NATS_CREATE_STREAMS: 'false', NATS_WORKFLOW_STREAM: 'FACTS' });
    const error = await prepareSagaStreams(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SagaStreamsError);
    expect((error as SagaStreamsError).problems).toEqual([
      'stream AGGREGATE_EVENTS (NATS_AGGREGATE_STREAM) does not exist and NATS_CREATE_STREAMS is off: create it with subjects aggregate.>, or set NATS_CREATE_STREAMS=true',
      'stream FACTS (NATS_WORKFLOW_STREAM) does not exist and NATS_CREATE_STREAMS is off: create it with subjects workflow.>, or set NATS_CREATE_STREAMS=true',
    ]);
    const jsm = await jetstreamManager(await client(server.url));
    expect(await jsm.streams.names().next()).toEqual([]);

    // Provisioned by operators, they are used as they are.
    await jsm.streams.add({ name: 'AGGREGATE_EVENTS', subjects: ['aggregate.>'], num_replicas: 1 });
    await jsm.streams.add({ name: 'FACTS', subjects: ['workflow.>'] });
    expect((await prepareSagaStreams(config)).map((s) => [s.name, s.created])).toEqual([
      ['AGGREGATE_EVENTS', false],
      ['FACTS', false],
    ]);
  });

  it('refuse an existing stream that does not capture the configured subjects', async () => {
    const server = await embedded('mismatch');
    const jsm = await jetstreamManager(await client(server.url));
    await jsm.streams.add({ name: 'AGGREGATE_EVENTS', subjects: ['aggregate.acme.>'] });
    const config = loadConfig({ NATS_URL: server.url });
    await expect(prepareSagaStreams(config)).rejects.toThrow(
      'stream AGGREGATE_EVENTS (NATS_AGGREGATE_STREAM) does not capture aggregate.> (NATS_AGGREGATE_SUBJECTS); its subjects are aggregate.acme.>',
    );
    // The other stream was still made, so a fix of the one named is all it takes.
    expect((await jsm.streams.info('WORKFLOW_EVENTS')).config.subjects).toEqual(['workflow.>']);
  });

  it('name the stream a subject clash with another stream keeps from being created', async () => {
    const server = await embedded('clash');
    const jsm = await jetstreamManager(await client(server.url));
    await jsm.streams.add({ name: 'LEGACY', subjects: ['workflow.>'] });
    await expect(prepareSagaStreams(loadConfig({ NATS_URL: server.url }))).rejects.toThrow(
      /stream WORKFLOW_EVENTS \(NATS_WORKFLOW_STREAM\) could not be created: .*overlap/,
    );
  });
});

describe('an existing NATS deployment (NATS_URL)', () => {
  let db: TestDatabase;
  let temporal: TestWorkflowEnvironment;
  beforeAll(async () => {
    [db, temporal] = await Promise.all([createTestDatabase(), createDevServerEnv()]);
  });
  afterAll(async () => {
    await Promise.all([db?.drop(), temporal?.teardown()]);
  });

  it('is used by npm start’s infrastructure, and no nats-server is started', async () => {
    const external = await embedded('external');
    const dataDir = join(dir, 'external-stack');
    const embeddedPort = await freePort();
    const infra = await startInfrastructure(
      loadConfig({
        DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        DATABASE_MIGRATION_URL: db.ownerUrl,
        TEMPORAL_ADDRESS: temporal.address,
        POLICY_ENGINE_URL: 'http://127.0.0.1:1',
        GATEWAY_URL: 'http://127.0.0.1:1',
        NATS_URL: external.url,
        NATS_EMBEDDED_PORT: String(embeddedPort),
      }),
      memoryLogger().logger,
    );
    cleanups.push(() => infra.stop());
    expect(infra.nats).toBeUndefined();
    expect(infra.natsServers).toEqual([external.url]);
    expect(infra.streams.map((s) => [s.name, s.created])).toEqual([
      ['AGGREGATE_EVENTS', true],
      ['WORKFLOW_EVENTS', true],
    ]);
    expect(await isListening(embeddedPort)).toBe(false);
    await expect(stat(join(dataDir, 'nats'))).rejects.toMatchObject({ code: 'ENOENT' });
    const jsm = await jetstreamManager(await client(external.url));
    expect((await jsm.streams.names().next()).sort()).toEqual(['AGGREGATE_EVENTS', 'WORKFLOW_EVENTS']);

    await infra.stop();
    // Stopping the stack leaves the deployment it did not start running.
    expect(await isListening(external.port)).toBe(true);
  });

  it('that does not answer stops the start, naming NATS_URL', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const startedAt = Date.now();
    await expect(prepareSagaStreams(loadConfig({ NATS_URL: url }))).rejects.toThrow(
      `Cannot connect to NATS_URL ${url}:`,
    );
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('is reached with the NKey seed of NATS_CREDENTIALS_FILE, and a bad file is named', async () => {
    // A server that admits one NKey user only; the credentials file carries that user's seed.
    const user = nkeys.createUser();
    const port = await freePort();
    const conf = join(dir, 'auth.conf');
    await writeFile(
      conf,
      `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'auth-store')}" }\n` +
        `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`,
    );
    const { path } = await resolveNatsServer({ build: false });
    const server: ServerProcess = startServerProcess({
      name: 'nats-server',
      command: path,
      args: ['--config', conf],
      stopSignal: 'SIGTERM',
    });
    cleanups.push(() => server.stop());
    await server.waitForLine(/Server is ready/, 30_000);
    const creds = join(dir, 'runner.creds');
    await writeFile(
      creds,
      '-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n------END NATS USER JWT------\n\n' +
        `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n------END USER NKEY SEED------\n`,
    );
    const url = `nats://127.0.0.1:${port}`;

    const streams = await prepareSagaStreams(loadConfig({ NATS_URL: url, NATS_CREDENTIALS_FILE: creds }));
    expect(streams.map((s) => s.name)).toEqual(['AGGREGATE_EVENTS', 'WORKFLOW_EVENTS']);

    await expect(connectNats(loadConfig({ NATS_URL: url }), { name: 'test' })).rejects.toThrow(
      `Cannot connect to NATS_URL ${url}: Authorization Violation`,
    );
    const missing = join(dir, 'missing.creds');
    await expect(prepareSagaStreams(loadConfig({ NATS_URL: url, NATS_CREDENTIALS_FILE: missing }))).rejects.toThrow(
      `NATS_CREDENTIALS_FILE ${missing} cannot be read: ENOENT`,
    );
    const broken = join(dir, 'broken.creds');
    await writeFile(broken, 'not a credentials file\n');
    await expect(prepareSagaStreams(loadConfig({ NATS_URL: url, NATS_CREDENTIALS_FILE: broken }))).rejects.toThrow(
      `NATS_CREDENTIALS_FILE ${broken} is not a NATS credentials file`,
    );
  });
});
