/**
 * A real nats-server for tests: the embedded server of `npm start` (JetStream, loopback) on a free port with its store
 * in a fresh directory, the streams of sagas ensured as the product ensures them, and the configuration pointing at it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadConfig, type AppConfig } from '../../core/config.js';
import { startEmbeddedNats, type EmbeddedNatsHandle } from '../../stack/nats.js';
import { connectNats, ensureSagaStreams } from '../../workers/saga-streams.js';
import { freePort } from './ports.js';

/** A running test nats-server with the saga streams. */
export interface TestNats {
  server: EmbeddedNatsHandle;
  /** The configuration of a process on this server (`NATS_URL` and `env`). */
  config: AppConfig;
  /** A connection of the test's own (publishing, inspecting). */
  connection: NatsConnection;
  jsm: JetStreamManager;
  /** Opens another connection (a second replica); closed by {@link cleanup}. */
  connect(name: string): Promise<NatsConnection>;
  /** Closes every connection, stops the server and removes its store. */
  cleanup(): Promise<void>;
}

/** Starts a nats-server and ensures the streams; `env` adds configuration variables (NATS_BRIDGE_*, …). */
export async function startTestNats(env: Record<string, string> = {}): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), 'stellaops-test-nats-'));
  const server = await startEmbeddedNats({ storeDir: join(dir, 'nats'), port: await freePort() });
  const connections: NatsConnection[] = [];
  try {
    const config = loadConfig({ NATS_URL: server.url, ...env });
    const open = async (name: string) => {
      const connection = await connectNats(config, { name });
      connections.push(connection);
      return connection;
    };
    const connection = await open('stellaops-test');
    const jsm = await jetstreamManager(connection);
    await ensureSagaStreams(jsm, { ...config.nats, createStreams: true });
    return {
      server,
      config,
      connection,
      jsm,
      connect: open,
      async cleanup() {
        await Promise.allSettled(connections.map((c) => c.close()));
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.allSettled(connections.map((c) => c.close()));
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
