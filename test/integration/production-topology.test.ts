/**
 * The production topology, run the way docker-compose.yml runs it, on this machine instead of containers: Postgres
 * set up by the compose file's own init SQL and roles job, the production Temporal server 1.29.1 on it with SQL
 * visibility and the compose stack's dynamic configuration, the namespace and search attributes registered by the
 * compose job's script with its arguments, nats-server with the compose service's command, the migrations and the
 * streams one-shot, two worker processes (`worker-saga`, `worker-effect`) and two API replicas — every app process
 * spawned with its compose command and its compose service's environment, only hosts and ports changed (the
 * operator's variables — token issuer, Policy Engine, Gateway, effects manifest, secrets — come from the peers this
 * test runs). Then a policy simulation through one API replica, a pack approval through the other, and two sagas:
 * one started over the HTTP ingress, one by a JetStream publish on the aggregate stream, both completing through
 * the bridge, the effect worker and the reference Gateway. It proves the compose stack's configuration works, not
 * just that it parses (that is test/unit/docker-compose.test.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { Client, Connection } from '@temporalio/client';
import { connect } from '@nats-io/transport-node';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkersView } from '../../api/schemas/runner.js';
import { EMBEDDED_PG } from '../../core/config.js';
import { Scope } from '../../core/scopes.js';
import { startPolicyEngine } from '../../policy-engine/server.js';
import { startReferenceServices, type RunningReferenceServices } from '../../reference-services/server.js';
import { resolveNatsServer, resolveTemporalCli } from '../../stack/binaries.js';
import { startEmbeddedPostgres } from '../../stack/postgres.js';
import { startServerProcess } from '../../stack/server-process.js';
import { startTemporalServer, type TemporalServerHandle } from '../../stack/temporal-server.js';
import { aggregateEventSubject } from '../../workers/saga-streams.js';
import { commandIdOf } from '../../workflows/sagas/definitions.js';
import {
  argv,
  bindMounts,
  COMPOSE_ROOT,
  environmentOf,
  parseComposeFile,
  readComposeFile,
  serviceOf,
  type ComposeFile,
} from '../support/compose.js';
import { eventually, startReceiver, type ReceivedRequest, type Sink } from '../support/http-sinks.js';
import { postSignedEvent, sampleEvent } from '../support/pack-approvals.js';
import { freePort } from '../support/ports.js';
import { advisoryPublished, exportRequested } from '../support/sagas.js';
import { simulationBody } from '../support/simulations.js';
import { spawnGroup } from '../support/stack.js';

const TENANT = 'acme';
const ISSUER = 'https://idp.stellaops.test';
/** Generous: two workers bundle the workflows at once on two cores. */
const READY_TIMEOUT_MS = 180_000;
const FLOW_TIMEOUT_MS = 90_000;

/** An app process spawned as its compose service runs it. */
interface AppProcess {
  name: string;
  pid: number;
  exited: Promise<number | null>;
  output(): string;
  kill(signal: NodeJS.Signals): void;
}

interface Topology {
  compose: ComposeFile;
  temporal: TemporalServerHandle;
  natsUrl: string;
  reference: RunningReferenceServices;
  taskRunner: Sink & { received: ReceivedRequest[] };
  eventSecret: string;
  signingKey: CryptoKey;
  workers: { saga: AppProcess; effect: AppProcess; sagaOps: string; effectOps: string };
  apis: [string, string];
  processes: AppProcess[];
}

let t: Topology;
const started: AppProcess[] = [];
/** How to stop what has been started so far, in the order it started: a start that fails half-way leaves nothing. */
const teardown: (() => Promise<unknown>)[] = [];

/** Environment of a spawned process beyond the service's own: what a container's base image gives it. */
function baseEnv(): Record<string, string> {
  const { PATH = '', HOME = '', TMPDIR } = process.env;
  return { PATH, HOME, ...(TMPDIR ? { TMPDIR } : {}) };
}

/**
 * The service's compose environment with the addresses of the compose network (`postgres:5432`, …) replaced by
 * where this test runs the same servers, and `overrides` (the ports and bind addresses of one replica) on top.
 */
function serviceEnv(
  compose: ComposeFile,
  name: string,
  addresses: Record<string, string>,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const env = environmentOf(serviceOf(compose, name));
  const localized = Object.fromEntries(
    Object.entries(env).map(([key, value]) => [
      key,
      Object.entries(addresses).reduce((text, [from, to]) => text.replaceAll(from, to), value),
    ]),
  );
  for (const key of Object.keys(overrides)) {
    expect(localized, `${name} sets ${key} in docker-compose.yml`).toHaveProperty(key);
  }
  return { ...baseEnv(), ...localized, ...overrides };
}

/** Spawns the compose service's command (`node --import tsx …`) with `env`, in a process group of its own. */
function spawnService(compose: ComposeFile, name: string, env: Record<string, string>, label = name): AppProcess {
  const [node, ...args] = argv(serviceOf(compose, name).command);
  expect(node, `${name} runs node`).toBe('node');
  const { child, output, exited } = spawnGroup(args, env);
  // What the process started (the transform service) must not outlive it.
  void exited.then(() => app.kill('SIGKILL'));
  const app: AppProcess = {
    name: label,
    pid: child.pid!,
    exited,
    output,
    kill(signal) {
      try {
        // SIGTERM to the process, as the image's init forwards `docker compose stop`; SIGKILL to its whole group.
        process.kill(signal === 'SIGKILL' ? -child.pid! : child.pid!, signal);
      } catch {
        // already gone
      }
    },
  };
  started.push(app);
  return app;
}

/** Runs a one-shot service to its end; it must exit 0, as `service_completed_successfully` wants. */
async function runOneShot(compose: ComposeFile, name: string, env: Record<string, string>): Promise<void> {
  const job = spawnService(compose, name, env);
  const code = await Promise.race([
    job.exited,
    new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS)),
  ]);
  if (code !== 0)
    throw new Error(`${name} ${code === 'timeout' ? 'did not finish' : `exited ${code}`}:\n${job.output()}`);
}

/** Waits until `url` answers 200, failing early (with its output) when the process exits first. */
async function waitReady(app: AppProcess, url: string): Promise<void> {
  let exit: number | null | undefined;
  void app.exited.then((code) => (exit = code));
  await eventually(async () => {
    if (exit !== undefined) throw new Error(`${app.name} exited ${exit} before it was ready:\n${app.output()}`);
    const res = await fetch(url).catch(() => undefined);
    return res?.status === 200 ? true : undefined;
  }, READY_TIMEOUT_MS).catch((error: unknown) => {
    throw new Error(`${app.name} not ready at ${url} (${String(error)}):\n${app.output().slice(-8000)}`);
  });
}

/**
 * Runs the SQL of a `psql … <<'SQL'` heredoc the way psql would for the statements the compose stack uses:
 * `-v name="$VAR"` variables quoted where `:'name'` appears, `;`-terminated statements, and `\gexec` (each value the
 * query returns runs as a statement).
 */
async function runPsqlHeredoc(
  client: pg.Client,
  script: string,
  variables: Record<string, string | undefined>,
): Promise<number> {
  const invocation = /psql[^\n]*?((?:\\?\n[^\n]*?)*?)<<'SQL'\n([\s\S]*?)\nSQL/.exec(script);
  expect(invocation, 'a psql heredoc').not.toBeNull();
  const values = new Map<string, string>();
  for (const [, name, variable] of invocation![0].matchAll(/-v (\w+)="\$(\w+)"/g)) {
    const value = variables[variable!];
    expect(value, `${variable} is set for psql -v ${name}`).toBeDefined();
    values.set(name!, value!);
  }
  const sql = invocation![2]!.replace(/:'(\w+)'/g, (_, name: string) => client.escapeLiteral(values.get(name)!));
  let statement = '';
  let count = 0;
  for (const line of sql.split('\n')) {
    if (/^\s*--/.test(line) || line.trim() === '') continue;
    statement += `${line}\n`;
    if (line.trimEnd().endsWith('\\gexec')) {
      const { rows } = await client.query<Record<string, string>>(statement.trimEnd().slice(0, -'\\gexec'.length));
      for (const row of rows) for (const value of Object.values(row)) await client.query(value);
      statement = '';
      count++;
    } else if (line.trimEnd().endsWith(';')) {
      await client.query(statement);
      statement = '';
      count++;
    }
  }
  expect(statement.trim(), 'an unterminated statement').toBe('');
  return count;
}

/** A token the test's issuer signed, as the JWKS the API verifies with publishes it. */
function token(scopes: string[], subject = 'alice'): Promise<string> {
  return (
    new SignJWT({ tenant: TENANT, scope: scopes.join(' ') })
      .setProtectedHeader({ alg: 'ES256', kid: 'topology' })
      .setIssuer(ISSUER)
      // The audience the compose stack's API accepts.
      .setAudience(environmentOf(serviceOf(t.compose, 'api')).AUTH_JWT_AUDIENCE!)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime('15m')
      .sign(t.signingKey)
  );
}

async function getJson<T>(url: string, bearer: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${bearer}` } });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stellaops-topology-'));
  teardown.push(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755); // the postgres system user must reach the data directory

  // The operator's side: the token issuer (JWKS), the Policy Engine, the Gateway and providers, the Task Runner.
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'topology', alg: 'ES256', use: 'sig' };
  const jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  teardown.push(() => new Promise((resolve) => jwks.close(resolve)));
  const engine = await startPolicyEngine();
  teardown.push(() => engine.close());
  const taskRunner = await startReceiver(() => 200);
  teardown.push(() => taskRunner.close());

  // nats-server as the compose service runs it, on free ports; its health check is the compose one.
  // Its service has no variables: the file as written will do before the host's variables are known.
  const natsService = serviceOf(parseComposeFile().raw, 'nats');
  const natsPort = await freePort();
  const monitoringPort = await freePort();
  const natsArgs = argv(natsService.command).map((arg, i, all) => {
    if (all[i - 1] === '--store_dir') return join(dir, 'nats');
    if (all[i - 1] === '--http_port') return String(monitoringPort);
    return arg;
  });
  const nats = startServerProcess({
    name: 'nats-server',
    command: (await resolveNatsServer({ build: false })).path,
    // Loopback only: the monitoring port binds where the client port does.
    args: [...natsArgs, '--addr', '127.0.0.1', '--port', String(natsPort)],
    stopSignal: 'SIGTERM',
  });
  teardown.push(() => nats.stop());
  await nats.waitForLine(/\[INF\] Server is ready/, 30_000);
  const healthz = argv(natsService.healthcheck?.test).find((arg) => arg.startsWith('http://'))!;
  await eventually(async () => {
    const res = await fetch(healthz.replace(/:\d+\//, `:${monitoringPort}/`)).catch(() => undefined);
    return res?.ok ? true : undefined;
  }, 30_000);
  const natsUrl = `nats://127.0.0.1:${natsPort}`;

  // The reference Gateway emits the events its commands cause on the aggregate stream, where the bridge consumes.
  const referenceNats = await connect({ servers: natsUrl, name: 'topology-reference-gateway' });
  teardown.push(() => referenceNats.close());
  const reference = await startReferenceServices({
    events: { nats: referenceNats, subjectPrefix: 'aggregate' },
    scanDelayMs: 100,
  });
  teardown.push(() => reference.close());
  const manifest = join(dir, 'effects-manifest.yaml');
  await writeFile(
    manifest,
    (await readFile(join(COMPOSE_ROOT, 'samples/sagas/effects-manifest.yaml'), 'utf8')).replaceAll(
      '${REFERENCE_SERVICES_URL}',
      reference.url,
    ),
  );

  const apiPorts = [await freePort(), await freePort()] as const;
  const eventSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const hostEnv: Record<string, string> = {
    AUTH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
    AUTH_JWT_ISSUER: ISSUER,
    POLICY_ENGINE_URL: engine.url,
    PACK_EVENTS_SIGNING_SECRETS: eventSecret,
    APPROVAL_LINK_SECRET: randomBytes(32).toString('hex'),
    PAYLOAD_CODEC_KEYS: `topology-1:${randomBytes(32).toString('base64')}`,
    PUBLIC_BASE_URL: `http://127.0.0.1:${apiPorts[0]}`,
    GATEWAY_URL: reference.url,
    EFFECTS_MANIFEST_FILE: manifest,
    // The embedded server's bootstrap superuser stands for the postgres image's.
    POSTGRES_PASSWORD: EMBEDDED_PG.password,
    LOG_LEVEL: 'info',
  };
  const { compose } = readComposeFile(hostEnv);

  // Postgres, set up by the compose stack's own SQL: the init script (first start), then the roles job.
  const postgres = await startEmbeddedPostgres({
    databaseDir: join(dir, 'postgres'),
    port: await freePort(),
    database: 'postgres',
    persistent: false,
  });
  teardown.push(() => postgres.stop());
  const pgEnv = environmentOf(serviceOf(compose, 'postgres'));
  const initMount = bindMounts(serviceOf(compose, 'postgres')).find((m) => m.target === '/docker-entrypoint-initdb.d');
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await runPsqlHeredoc(admin, await readFile(join(COMPOSE_ROOT, initMount!.source, '10-databases.sh'), 'utf8'), {
      ...pgEnv,
    });
  } finally {
    await admin.end();
  }
  const rolesJob = serviceOf(compose, 'postgres-roles');
  const rolesEnv = environmentOf(rolesJob);
  const roles = new pg.Client({
    host: '127.0.0.1',
    port: postgres.port,
    user: rolesEnv.PGUSER,
    password: rolesEnv.PGPASSWORD,
    database: rolesEnv.PGDATABASE,
  });
  await roles.connect();
  try {
    await runPsqlHeredoc(roles, argv(rolesJob.command).join('\n'), rolesEnv);
  } finally {
    await roles.end();
  }

  // Temporal on that Postgres, with the compose service's databases, role and dynamic configuration.
  const temporalService = serviceOf(compose, 'temporal');
  const temporalEnv = environmentOf(temporalService);
  expect(temporalEnv.DB).toBe('postgres12');
  const dynamicConfig = bindMounts(temporalService).find((m) =>
    m.target.endsWith(`/${temporalEnv.DYNAMIC_CONFIG_FILE_PATH}`),
  );
  expect(dynamicConfig, 'the dynamic configuration file is mounted').toBeDefined();
  const temporal = await startTemporalServer({
    postgres: {
      host: '127.0.0.1',
      port: postgres.port,
      user: temporalEnv.POSTGRES_USER!,
      password: temporalEnv.POSTGRES_PWD!,
      database: temporalEnv.DBNAME!,
      visibilityDatabase: temporalEnv.VISIBILITY_DBNAME!,
    },
    dir: join(dir, 'temporal'),
    dynamicConfigFile: join(COMPOSE_ROOT, dynamicConfig!.source),
  });
  teardown.push(() => temporal.stop());

  const addresses = {
    'postgres:5432': `127.0.0.1:${postgres.port}`,
    'temporal:7233': temporal.address,
    'nats://nats:4222': natsUrl,
  };

  // The namespace and search attributes: the compose job's script and arguments, the provisioned CLI on PATH.
  const job = serviceOf(compose, 'temporal-search-attributes');
  const [shell, mountedScript] = argv(job.entrypoint);
  const script = bindMounts(job).find((m) => m.target === mountedScript);
  const cli = (await resolveTemporalCli({ build: false, allowDownload: false })).path!;
  const registrationEnv = serviceEnv(compose, 'temporal-search-attributes', addresses);
  const registrar = spawn(shell!, [join(COMPOSE_ROOT, script!.source), ...argv(job.command)], {
    env: { ...registrationEnv, PATH: `${dirname(cli)}${delimiter}${registrationEnv.PATH}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let registrarOutput = '';
  registrar.stdout.on('data', (chunk: Buffer) => (registrarOutput += chunk.toString()));
  registrar.stderr.on('data', (chunk: Buffer) => (registrarOutput += chunk.toString()));
  const registered = await new Promise<number | null>((resolve) => registrar.on('exit', resolve));
  if (registered !== 0) throw new Error(`the search attribute job exited ${registered}:\n${registrarOutput}`);

  // The one-shots, then the workers and the API replicas, each with its service's environment.
  await runOneShot(compose, 'migrate', serviceEnv(compose, 'migrate', addresses));
  await runOneShot(compose, 'nats-streams', serviceEnv(compose, 'nats-streams', addresses));
  const opsPorts = { saga: await freePort(), effect: await freePort() };
  const workerEnv = (name: 'worker-saga' | 'worker-effect', port: number) => {
    const service = serviceOf(compose, name);
    const target = environmentOf(service).EFFECTS_MANIFEST!;
    return serviceEnv(compose, name, addresses, {
      WORKER_OPS_HOST: '127.0.0.1',
      WORKER_OPS_PORT: String(port),
      // The container path of the manifest, as the host path its bind mount maps.
      EFFECTS_MANIFEST: bindMounts(service).find((m) => m.target === target)?.source ?? target,
    });
  };
  const saga = spawnService(compose, 'worker-saga', workerEnv('worker-saga', opsPorts.saga));
  const effect = spawnService(compose, 'worker-effect', workerEnv('worker-effect', opsPorts.effect));
  const apiProcesses = apiPorts.map((port, i) =>
    spawnService(
      compose,
      'api',
      serviceEnv(compose, 'api', addresses, { API_HOST: '127.0.0.1', API_PORT: String(port) }),
      `api-${i + 1}`,
    ),
  );
  const sagaOps = `http://127.0.0.1:${opsPorts.saga}`;
  const effectOps = `http://127.0.0.1:${opsPorts.effect}`;
  const apis = apiPorts.map((port) => `http://127.0.0.1:${port}`) as [string, string];
  await Promise.all([
    waitReady(saga, `${sagaOps}/ready`),
    waitReady(effect, `${effectOps}/ready`),
    ...apiProcesses.map((api, i) => waitReady(api, `${apis[i]}/ready`)),
  ]);

  t = {
    compose,
    temporal,
    natsUrl,
    reference,
    taskRunner,
    eventSecret,
    signingKey: keys.privateKey,
    workers: { saga, effect, sagaOps, effectOps },
    apis,
    processes: [saga, effect, ...apiProcesses],
  };
}, 420_000);

afterAll(async () => {
  await Promise.all(
    started.map(async (app) => {
      app.kill('SIGTERM');
      const code = await Promise.race([app.exited, new Promise((r) => setTimeout(() => r('timeout'), 45_000))]);
      if (code === 'timeout') app.kill('SIGKILL');
    }),
  );
  // The app processes first, then the servers in the reverse order of their start.
  for (const stop of teardown.reverse()) await stop();
}, 120_000);

describe('the production topology (docker-compose.yml on the production Temporal server)', () => {
  it('runs one worker per mode: the saga worker with the bridge, the effect worker with the effects queue only', async () => {
    const info = async (ops: string) =>
      (await (await fetch(`${ops}/info`)).json()) as {
        mode: string;
        taskQueues: string[];
        bridge: { stream: string; connected: boolean } | null;
      };
    const [sagaInfo, effectInfo] = await Promise.all([info(t.workers.sagaOps), info(t.workers.effectOps)]);
    expect(sagaInfo).toMatchObject({ mode: 'saga', bridge: { stream: 'AGGREGATE_EVENTS', connected: true } });
    expect(sagaInfo.taskQueues).toEqual(expect.arrayContaining(['policy-simulation', 'pack-approval', 'saga']));
    expect(sagaInfo.taskQueues).not.toContain('effects');
    expect(effectInfo).toMatchObject({ mode: 'effect', taskQueues: ['effects'], bridge: null });

    // Temporal sees each queue polled by the process of its mode, and by no other.
    const admin = await token([Scope.SystemAdmin], 'operator');
    const view = await eventually(async () => {
      const { status, body } = await getJson<WorkersView>(`${t.apis[0]}/api/v1/runner/workers`, admin);
      return status === 200 && body.queuesWithoutLivePoller.length === 0 ? body : undefined;
    }, FLOW_TIMEOUT_MS);
    for (const queue of view.queues) {
      const owner = queue.name === 'effects' ? t.workers.effect : t.workers.saga;
      const identities = queue.kinds.flatMap((kind) => kind.pollers.filter((p) => p.live).map((p) => p.identity));
      expect(identities.length, queue.name).toBeGreaterThan(0);
      for (const identity of identities) expect(identity, queue.name).toMatch(new RegExp(`^${owner.pid}@`));
    }
  });

  it('runs a policy simulation to completion through the first API replica', async () => {
    const bearer = await token([Scope.PolicySimulate]);
    const res = await fetch(`${t.apis[0]}/api/v1/scheduler/policies/simulations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify(simulationBody()),
    });
    expect(res.status).toBe(201);
    const { runId } = (await res.json()) as { runId: string };
    // Read back through the other replica: both serve one Temporal namespace and one database.
    const done = await eventually(async () => {
      const { status, body } = await getJson<{ status: string }>(
        `${t.apis[1]}/api/v1/scheduler/policies/simulations/${runId}`,
        bearer,
      );
      return status === 200 && ['succeeded', 'failed', 'cancelled'].includes(body.status) ? body : undefined;
    }, FLOW_TIMEOUT_MS);
    expect(done).toMatchObject({ status: 'succeeded', tenantId: TENANT });
  });

  it('takes a signed pack-approval event, an approval on the ack endpoint and resumes the Task Runner, through the second replica', async () => {
    const api = t.apis[1];
    const event = sampleEvent({
      tenantId: TENANT,
      resumeCallback: { url: `${t.taskRunner.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const writer = await token([Scope.NotifierEventsWrite], 'task-runner');
    expect((await postSignedEvent(api, event, { token: writer, secret: t.eventSecret })).status).toBe(202);

    const approver = await token([Scope.PacksApprove, ...event.requiredGrants]);
    const approval = `${api}/notifications/pack-approvals/${event.runId}/${event.approvalId}`;
    await eventually(async () => ((await getJson(approval, approver)).status === 200 ? true : undefined), 60_000);
    const ack = await fetch(`${approval}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', comment: 'ship it' }),
    });
    expect(ack.status).toBe(200);
    expect(await ack.json()).toMatchObject({ decision: 'approve', decidedBy: 'alice' });

    const resumed = await eventually(
      () => t.taskRunner.received.find((r) => r.body.includes(event.runId)),
      FLOW_TIMEOUT_MS,
    );
    expect(resumed.headers.authorization).toBe('Bearer tr-resume-secret-0123456789');
    expect(JSON.parse(resumed.body)).toMatchObject({ runId: event.runId, decision: 'approve', decidedBy: 'alice' });
  });

  it('completes a saga started over the HTTP ingress and one started by a JetStream publish, through the bridge', async () => {
    const reader = await token([Scope.RunnerSagasRead]);
    type Detail = {
      instance: { status: string };
      timeline: { eventType: string; outcome: string; via: string }[];
    };
    /**
     * The instance once it has finished and its timeline holds `scans` Scan.Completed entries: the event log is
     * written beside the signal, so the instance can finish a moment before the last event's entry is there.
     */
    const finished = (api: string, saga: string, correlationId: string, scans = 0) =>
      eventually(async () => {
        const { status, body } = await getJson<Detail>(`${api}/api/v1/sagas/${saga}/${correlationId}`, reader);
        const logged = body.timeline?.filter((e) => e.eventType === 'Scan.Completed').length ?? 0;
        return status === 200 && body.instance.status !== 'running' && logged >= scans ? body : undefined;
      }, FLOW_TIMEOUT_MS);

    // Over HTTP: the advisory's rescans go to the Gateway, whose Scan.Completed events come back over JetStream.
    const correlationId = `topology-${randomUUID().slice(0, 8)}`;
    const advisory = advisoryPublished('CVE-2023-44487', {}, { tenantId: TENANT, correlationId });
    const posted = await fetch(`${t.apis[0]}/api/v1/events`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token([Scope.RunnerEventsWrite])}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(advisory),
    });
    expect(posted.status).toBe(202);

    // Over JetStream: an aggregate publishes on the aggregate stream; the saga worker's bridge routes it.
    const bundleId = `bundle-${randomUUID().slice(0, 8)}`;
    const exported = exportRequested(bundleId, { tenantId: TENANT });
    const publisher = await connect({ servers: t.natsUrl, name: 'topology-aggregate' });
    try {
      const ack = await jetstream(publisher).publish(
        aggregateEventSubject('aggregate', exported),
        JSON.stringify(exported),
        { msgID: exported.eventId },
      );
      expect(ack.stream).toBe('AGGREGATE_EVENTS');
    } finally {
      await publisher.close();
    }

    const [rescan, mirror] = await Promise.all([
      finished(t.apis[1], 'advisory-impact-rescan', correlationId, 3),
      finished(t.apis[1], 'mirror-bundle-export', bundleId),
    ]);
    expect(rescan).toMatchObject({
      instance: { status: 'completed', state: { summary: { impacted: 3, completed: 3 } } },
    });
    // The Gateway's events reached the instance through the bridge.
    const scans = rescan.timeline.filter((e) => e.eventType === 'Scan.Completed');
    expect(scans).toHaveLength(3);
    for (const scan of scans) expect(scan).toMatchObject({ outcome: 'applied', via: 'jetstream' });
    // Published on the stream only: the bridge is the one way it reached a saga.
    expect(mirror).toMatchObject({ instance: { status: 'completed', correlationId: bundleId } });

    // SQL visibility answers by the search attributes the compose job registered.
    const connection = await Connection.connect({ address: t.temporal.address });
    try {
      const client = new Client({
        connection,
        namespace: environmentOf(serviceOf(t.compose, 'api')).TEMPORAL_NAMESPACE,
      });
      const query = `SagaName = "mirror-bundle-export" AND CorrelationId = "${bundleId}" AND TenantId = "${TENANT}"`;
      const listed = await eventually(async () => {
        const ids: string[] = [];
        for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
        return ids.length > 0 ? ids : undefined;
      }, FLOW_TIMEOUT_MS);
      expect(listed).toEqual([`saga/${TENANT}/mirror-bundle-export/${bundleId}`]);
    } finally {
      await connection.close();
    }

    // The effect worker sent each Gateway command once.
    const received = t.reference.counters.commandsReceived();
    for (const image of ['payments-api:3.8.2', 'auth-service:2.1.0', 'edge-gateway:1.9.0']) {
      const commandId = commandIdOf(
        { tenantId: TENANT, sagaName: 'advisory-impact-rescan', correlationId },
        `rescan:${image}`,
      );
      expect(received[commandId], image).toBe(1);
    }
  });

  it('stops every app process on SIGTERM, as docker compose stop does, within its stop grace period', async () => {
    const grace = (name: string) => {
      const period = serviceOf(t.compose, name).stop_grace_period ?? '10s';
      return Number(/^(\d+)s$/.exec(period)?.[1] ?? 10) * 1000;
    };
    const services = ['worker-saga', 'worker-effect', 'api', 'api'];
    const exits = await Promise.all(
      t.processes.map(async (app, i) => {
        app.kill('SIGTERM');
        const code = await Promise.race([
          app.exited,
          new Promise<string>((r) => setTimeout(() => r('no exit in time'), grace(services[i]!))),
        ]);
        return { app, code };
      }),
    );
    for (const { app, code } of exits) expect(code, `${app.name}:\n${app.output().slice(-6000)}`).toBe(0);
  });
});
