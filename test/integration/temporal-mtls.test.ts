/**
 * Temporal over mutual TLS, configured as Temporal's own tools configure it (`TEMPORAL_TLS_*`): a TLS-terminating
 * proxy that requires a client certificate of the test's CA stands in front of the dev server (which has no TLS of
 * its own). A worker process and the API's client connect through it and run a self-check; a client that trusts
 * another CA, and one without a client certificate, are refused with errors that say so.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { startSelfCheck } from '../../api/temporal/self-check.js';
import { loadConfig, temporalConnectionOf } from '../../core/config.js';
import { connectTemporalClient } from '../../core/temporal-connection.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createDevServerEnv } from '../support/temporal.js';
import { pipeToUpstream } from '../support/tcp-proxy.js';
import { createTestPki, type TestPki } from '../support/tls.js';
import {
  killAllWorkerProcesses,
  startWorkerProcess,
  workerProcessDataConverter,
  workerProcessEnv,
} from '../support/worker-process.js';

const TEST_TIMEOUT_MS = 180_000;

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let dir: string;
let pki: TestPki;
let proxy: TlsServer;
let proxyAddress: string;
const sockets = new Set<Socket>();
const facades: TemporalFacade[] = [];

/** Accepts TLS with a client certificate of `pki`'s CA (gRPC over HTTP/2) and pipes it to the dev server. */
async function startMtlsProxy(target: string): Promise<TlsServer> {
  const [host, port] = target.split(':') as [string, string];
  const [key, cert, ca] = await Promise.all([readFile(pki.serverKey), readFile(pki.serverCert), readFile(pki.caCert)]);
  const server = createTlsServer(
    { key, cert, ca, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
    (client) => pipeToUpstream(client, { host, port: Number(port) }, sockets),
  );
  // Refused handshakes surface here; the client's side of them is what the tests assert on.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** The environment a process of the product connects with: the proxy, the test CA, and `overrides`. */
function tlsEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: proxyAddress,
    // The certificate names localhost; the proxy is dialled by IP, so the name is given.
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
    TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    ...overrides,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'temporal-mtls-'));
  [env, db, pki] = await Promise.all([createDevServerEnv(), createTestDatabase(), createTestPki(join(dir, 'pki'))]);
  proxy = await startMtlsProxy(env.address);
  const { port } = proxy.address() as { port: number };
  proxyAddress = `127.0.0.1:${port}`;
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  await killAllWorkerProcesses();
  await Promise.all(facades.map((facade) => facade.close()));
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
  await Promise.all([env?.teardown(), db?.drop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
}, TEST_TIMEOUT_MS);

describe('Temporal over mutual TLS', () => {
  it(
    'a worker process and the API client connect with the client certificate and run a self-check',
    async () => {
      const dataDir = join(dir, 'worker');
      await startWorkerProcess({
        ...workerProcessEnv({ dataDir, env, db }),
        ...tlsEnv(),
        WORKER_MODE: 'saga',
      });
      const config = loadConfig({ ...tlsEnv(), TEMPORAL_NAMESPACE: env.namespace ?? 'default' });
      expect(config.temporal.tls?.clientCertificate).toBeDefined();
      const facade = createTemporalFacade({
        ...temporalConnectionOf(config),
        namespace: config.temporal.namespace,
        dataConverter: await workerProcessDataConverter(dataDir),
      });
      facades.push(facade);
      const { handle } = await startSelfCheck(facade, {
        tenantId: 'local',
        checkId: randomUUID(),
        taskQueue: 'saga',
        activityCount: 2,
      });
      await expect(handle.result()).resolves.toMatchObject({ tenantId: 'local', activitiesCompleted: 2 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a client that trusts another CA is refused, naming the certificate',
    async () => {
      const options = temporalConnectionOf(loadConfig(tlsEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaCert })));
      // The API starts anyway (its connection is lazy); its readiness probe says why Temporal is down.
      const facade = createTemporalFacade({ ...options, namespace: 'default' });
      facades.push(facade);
      await expect(facade.ping()).rejects.toThrow(
        `Temporal at ${proxyAddress}: TLS connection refused: the server's certificate is not trusted`,
      );
      await expect(NativeConnection.connect(options)).rejects.toThrow(/InvalidCertificate\(UnknownIssuer\)/);
      // A worker started so stops at once, saying why, rather than polling nothing.
      await expect(
        startWorkerProcess({
          ...workerProcessEnv({ dataDir: join(dir, 'worker-other-ca'), env, db }),
          ...tlsEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaCert }),
          WORKER_MODE: 'saga',
        }),
      ).rejects.toThrow(/worker exited[\s\S]*InvalidCertificate\(UnknownIssuer\)/);
      await expect(connectTemporalClient(options)).rejects.toThrow(
        /TLS connection refused: the server's certificate is not trusted .*TEMPORAL_TLS_SERVER_CA_CERT_PATH/,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a client without a client certificate is refused by the server',
    async () => {
      const options = temporalConnectionOf(
        loadConfig(tlsEnv({ TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' })),
      );
      expect(options.tls?.clientCertPair).toBeUndefined();
      const facade = createTemporalFacade({ ...options, namespace: 'default' });
      facades.push(facade);
      await expect(facade.ping()).rejects.toThrow(/TLS connection refused: the server requires a client certificate/);
      await expect(NativeConnection.connect(options)).rejects.toThrow(/CertificateRequired/);
      await expect(connectTemporalClient(options)).rejects.toThrow(
        /TLS connection refused: the server requires a client certificate \(TEMPORAL_TLS_CLIENT_CERT_PATH/,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
