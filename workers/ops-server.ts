/**
 * The worker's operations port (`WORKER_OPS_HOST`:`WORKER_OPS_PORT`), a small Fastify app of its own:
 * `/health` (the process, its workers and the Temporal connection), `/ready` (not draining; Temporal and Postgres
 * reachable; NATS when the bridge or the egress runs), `/metrics` (the Temporal SDK's Prometheus exporter, read at
 * scrape time, followed by the Runner's registry with the quarantine backlog read from Postgres), `/info` (build,
 * mode, queues, streams and consumer, sagas and effects), and the admin routes — bearer token with `system:admin` —
 * `POST /admin/drain` (stop pulling and polling, finish in-flight work, then `drained`; `/ready` answers 503 from the
 * first moment) and `POST /admin/reload` (the effects manifest and the tenant placement read and validated again:
 * all or nothing, refused with every problem when one is invalid). Errors go through the API's one error mapping.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { ConfigError } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { Scope } from '../core/scopes.js';
import type { Pool } from '../db/pool.js';
import { countOpenQuarantine } from '../db/queries/saga-quarantine.js';
import { authenticate, type TokenVerifier } from '../api/plugins/auth.js';
import { ErrorResponse, HttpError, registerErrorHandlers, RETRY_AFTER_SECONDS } from '../api/errors.js';
import { probe } from '../api/routes/system.js';
import { DependencyCheck } from '../api/schemas/system.js';
import type { EffectsManifest, EffectsManifestSource } from '../activities/sagas/effects-manifest.js';

// Stryker disable all: the operations app serves HTTP over real dependencies; test/integration/worker-operations.test.ts
// exercises it, the mutation run covers the pure reload diff (nameChanges) below.

/** Where a worker process is in its life: serving, draining (nothing new is taken), drained (in-flight work done). */
export const DRAIN_STATES = ['serving', 'draining', 'drained'] as const;
export type DrainState = (typeof DRAIN_STATES)[number];

/** How long `/metrics` waits for the SDK's exporter, and the probes for their dependency. */
const SDK_SCRAPE_TIMEOUT_MS = 5_000;
const PROBE_TIMEOUT_MS = 5_000;

const Checks = Type.Record(Type.String(), DependencyCheck);

/** `/health` and `/ready`. */
export const OpsStatusResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('ready'), Type.Literal('unavailable')]),
  state: Type.Union(DRAIN_STATES.map((s) => Type.Literal(s))),
  checks: Checks,
});
export type OpsStatusResponse = Static<typeof OpsStatusResponse>;

/** `/info`. */
export const OpsInfoResponse = Type.Object({
  name: Type.String(),
  version: Type.String(),
  node: Type.String(),
  mode: Type.String(),
  state: Type.Union(DRAIN_STATES.map((s) => Type.Literal(s))),
  temporal: Type.Object({ namespace: Type.String() }),
  taskQueues: Type.Array(Type.String()),
  bridge: Type.Union([
    Type.Object({
      stream: Type.String(),
      consumer: Type.String(),
      filterSubjects: Type.Array(Type.String()),
      tenants: Type.Array(Type.String(), { description: 'Tenants of this shard; empty: every tenant' }),
      connected: Type.Boolean(),
    }),
    Type.Null(),
  ]),
  egress: Type.Union([Type.Object({ stream: Type.String() }), Type.Null()]),
  sagas: Type.Array(
    Type.Object({ name: Type.String(), workflowType: Type.String(), effects: Type.Array(Type.String()) }),
  ),
  effects: Type.Union([Type.Object({ source: Type.String(), providers: Type.Array(Type.String()) }), Type.Null()]),
});
export type OpsInfoResponse = Static<typeof OpsInfoResponse>;

/** `POST /admin/drain`. */
export const DrainResponse = Type.Object({ state: Type.Union(DRAIN_STATES.map((s) => Type.Literal(s))) });

const NameChanges = Type.Object({
  added: Type.Array(Type.String()),
  removed: Type.Array(Type.String()),
  changed: Type.Array(Type.String()),
});
/** What a reload changed, by part (a part this process does not have is left out). */
export const ReloadResponse = Type.Object({
  status: Type.Literal('reloaded'),
  effects: Type.Optional(Type.Intersect([Type.Object({ source: Type.String() }), NameChanges])),
  tenants: Type.Optional(
    Type.Object({
      tenants: Type.Array(Type.String()),
      added: Type.Array(Type.String()),
      removed: Type.Array(Type.String()),
    }),
  ),
});
export type ReloadResponse = Static<typeof ReloadResponse>;

/** Error code of a reload refused for an invalid manifest or placement (nothing was replaced). */
export const RELOAD_REFUSED = 'ReloadRefused';

/** A reloadable part: `load` reads and validates it again (throwing a `ConfigError` listing what is wrong). */
export interface ReloadableEffects {
  load(): EffectsManifest;
  source: EffectsManifestSource;
}

/** The bridge shard's tenants: `load` reads the placement file again, `apply` moves the consumer's filter. */
export interface ReloadableTenants {
  load(): string[];
  current(): readonly string[];
  apply(tenants: string[]): Promise<void> | void;
}

/** Options of {@link buildOpsApp}. */
export interface OpsAppOptions {
  logger: Logger;
  verifyToken: TokenVerifier;
  /** The Runner's registry (`createRunnerMetrics`); the quarantine backlog gauge is added to it here. */
  registry: Registry;
  /** The SDK's Prometheus exporter (`installRuntime`). */
  sdkMetricsUrl: string;
  pool: Pool;
  /** Answers when the Temporal connection works (a system-info call). */
  pingTemporal(): Promise<unknown>;
  /** Answers when NATS is connected; undefined when neither the bridge nor the egress runs. */
  pingNats?: (() => Promise<unknown>) | undefined;
  /** Each Worker's task queue and state (`RUNNING`, `FAILED`, …). */
  workers(): readonly { taskQueue: string; state: string }[];
  info(): Omit<OpsInfoResponse, 'state'>;
  /** Stops taking work (bridge pulls, Temporal polls) and resolves when in-flight work has finished. */
  drain(): Promise<void>;
  effects?: ReloadableEffects | undefined;
  tenants?: ReloadableTenants | undefined;
}

/** The operations app with the drain it controls. */
export interface OpsApp {
  app: FastifyInstance;
  readonly state: DrainState;
  /** Starts the drain (or joins the one under way); resolves once drained. Idempotent. */
  drain(): Promise<void>;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} did not answer in ${ms} ms`)), ms).unref(),
    ),
  ]);

// Stryker restore all
/** The names added, removed and changed from `before` to `after` (a value changed when its JSON differs). */
export function nameChanges<T>(
  before: ReadonlyMap<string, T>,
  after: ReadonlyMap<string, T>,
): { added: string[]; removed: string[]; changed: string[] } {
  return {
    added: [...after.keys()].filter((name) => !before.has(name)).sort(),
    removed: [...before.keys()].filter((name) => !after.has(name)).sort(),
    changed: [...after.keys()]
      .filter((name) => before.has(name) && JSON.stringify(before.get(name)) !== JSON.stringify(after.get(name)))
      .sort(),
  };
}

// Stryker disable all: the rest is the app itself (see above).
/** The problems of a refused part, or rethrows what is not a configuration error. */
function problemsOf(part: string, error: unknown): { path: string; message: string }[] {
  if (!(error instanceof ConfigError)) throw error;
  return error.problems.map((message) => ({ path: part, message }));
}

/** Builds the operations app (without listening: tests may `inject`). */
export async function buildOpsApp(options: OpsAppOptions): Promise<OpsApp> {
  const { pool, logger } = options;
  let state: DrainState = 'serving';
  let draining: Promise<void> | undefined;
  const drain = () => {
    draining ??= (async () => {
      state = 'draining';
      logger.info('draining: no new work is taken, in-flight work finishes');
      try {
        await options.drain();
      } catch (err) {
        logger.error({ err }, 'draining failed');
      }
      state = 'drained';
      logger.info('drained');
    })();
    return draining;
  };

  // Read at scrape time: the backlog is shared by every replica, so it is the database's count, not this process's.
  new Gauge({
    name: 'stellaops_runner_quarantine_open',
    help: 'Messages in quarantine not yet redelivered or discarded, by tenant',
    labelNames: ['tenant'] as const,
    registers: [options.registry],
    async collect() {
      this.reset();
      try {
        for (const [tenant, count] of await countOpenQuarantine(pool)) this.set({ tenant }, count);
      } catch (err) {
        logger.warn({ err }, 'quarantine backlog not read for /metrics');
      }
    },
  });

  const app = Fastify({
    loggerInstance: logger.child({ component: 'ops' }) as FastifyBaseLogger,
    // Probes and scrapes every few seconds would drown the log; errors are still logged by the error mapping.
    disableRequestLogging: true,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.addSchema(ErrorResponse);
  registerErrorHandlers(app);
  const errorRef = Type.Ref('ErrorResponse');
  const statusResponses = { 200: OpsStatusResponse, 503: OpsStatusResponse };

  app.get('/health', { schema: { response: statusResponses } }, async (_request, reply) => {
    const checks: Record<string, Static<typeof DependencyCheck>> = {
      temporal: await probe(() => withTimeout(options.pingTemporal(), PROBE_TIMEOUT_MS, 'Temporal')),
    };
    for (const worker of options.workers()) {
      // A drained worker has stopped on purpose; a failed one means the process no longer does its job.
      const up = worker.state !== 'FAILED';
      checks[`worker:${worker.taskQueue}`] = {
        status: up ? 'up' : 'down',
        latencyMs: 0,
        ...(!up && { error: worker.state }),
      };
    }
    const ok = Object.values(checks).every((check) => check.status === 'up');
    const body: OpsStatusResponse = { status: ok ? 'ok' : 'unavailable', state, checks };
    return ok ? body : reply.code(503).send(body);
  });

  app.get('/ready', { schema: { response: statusResponses } }, async (_request, reply) => {
    // Draining answers first: a load balancer or an orchestrator must stop sending at once, whatever else is up.
    if (state !== 'serving') {
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ status: 'unavailable', state, checks: {} });
    }
    const [temporal, postgres, nats] = await Promise.all([
      probe(() => withTimeout(options.pingTemporal(), PROBE_TIMEOUT_MS, 'Temporal')),
      probe(() => withTimeout(pool.query('SELECT 1'), PROBE_TIMEOUT_MS, 'Postgres')),
      options.pingNats && probe(() => withTimeout(options.pingNats!(), PROBE_TIMEOUT_MS, 'NATS')),
    ]);
    const checks = { temporal, postgres, ...(nats && { nats }) };
    const ready = Object.values(checks).every((check) => check.status === 'up');
    const body: OpsStatusResponse = { status: ready ? 'ready' : 'unavailable', state, checks };
    return ready ? body : reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send(body);
  });

  app.get(
    '/metrics',
    { schema: { response: { 200: Type.String({ description: 'Prometheus text exposition format' }) } } },
    async (_request, reply) => {
      let sdk: string;
      try {
        const response = await fetch(options.sdkMetricsUrl, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) });
        if (!response.ok) throw new Error(`the SDK's exporter answered ${response.status}`);
        sdk = await response.text();
      } catch (err) {
        logger.warn({ err }, 'Temporal SDK metrics not read for /metrics');
        sdk = '# Temporal SDK metrics unavailable\n';
      }
      reply.type(options.registry.contentType);
      return `${sdk.endsWith('\n') || sdk === '' ? sdk : `${sdk}\n`}${await options.registry.metrics()}`;
    },
  );

  app.get('/info', { schema: { response: { 200: OpsInfoResponse } } }, async () => ({ ...options.info(), state }));

  await app.register(async (admin) => {
    admin.addHook('onRequest', async (request) => {
      await authenticate(options.verifyToken, request, [Scope.SystemAdmin]);
    });

    admin.post(
      '/admin/drain',
      { schema: { response: { 200: DrainResponse, 202: DrainResponse, 401: errorRef, 403: errorRef } } },
      async (request, reply) => {
        if (state === 'drained') return { state };
        request.log.info({ by: request.principal?.subject }, 'drain requested');
        void drain();
        return reply.code(202).send({ state });
      },
    );

    admin.post(
      '/admin/reload',
      {
        schema: {
          response: { 200: ReloadResponse, 401: errorRef, 403: errorRef, 409: errorRef, 422: errorRef },
        },
      },
      async (request) => {
        if (state !== 'serving') throw new HttpError(409, 'Conflict', `The worker is ${state}; nothing to reload`);
        // Both parts are read and validated before either is replaced: a reload applies whole or not at all.
        const problems: { path: string; message: string }[] = [];
        let manifest: EffectsManifest | undefined;
        let tenants: string[] | undefined;
        if (options.effects) {
          try {
            manifest = options.effects.load();
          } catch (error) {
            problems.push(...problemsOf('effects', error));
          }
        }
        if (options.tenants) {
          try {
            tenants = options.tenants.load();
          } catch (error) {
            problems.push(...problemsOf('tenants', error));
          }
        }
        if (problems.length > 0) {
          request.log.warn({ problems }, 'reload refused: the running configuration stays');
          throw new HttpError(
            422,
            RELOAD_REFUSED,
            'The reloaded configuration is invalid; nothing was replaced',
            {},
            problems,
          );
        }
        const body: ReloadResponse = { status: 'reloaded' };
        const previous = options.effects?.source.current();
        if (options.effects && manifest && previous) {
          try {
            // The source checks what only it can (the Gateway's breaker) and refuses without replacing.
            options.effects.source.replace(manifest);
          } catch (error) {
            throw new HttpError(
              422,
              RELOAD_REFUSED,
              'The reloaded configuration is invalid; nothing was replaced',
              {},
              [...problemsOf('effects', error)],
            );
          }
          body.effects = { source: manifest.source, ...nameChanges(previous.providers, manifest.providers) };
        }
        if (options.tenants && tenants) {
          const before = new Set(options.tenants.current());
          try {
            await options.tenants.apply(tenants);
          } catch (error) {
            // All or nothing: the manifest goes back when the consumer could not be moved.
            if (previous && manifest) options.effects?.source.replace(previous);
            throw error;
          }
          body.tenants = {
            tenants,
            added: tenants.filter((t) => !before.has(t)),
            removed: [...before].filter((t) => !tenants.includes(t)),
          };
        }
        request.log.info({ by: request.principal?.subject, ...body }, 'reloaded');
        return body;
      },
    );
  });

  return {
    app,
    get state() {
      return state;
    },
    drain,
  };
}

/** A listening operations server. */
export interface OpsServer extends OpsApp {
  /** `http://host:port` (the port chosen when `port` is 0). */
  url: string;
  close(): Promise<void>;
}

/** Builds the operations app and listens on `host`:`port` (0: a free port). */
export async function startOpsServer(options: OpsAppOptions & { host: string; port: number }): Promise<OpsServer> {
  const ops = await buildOpsApp(options);
  const address = await ops.app.listen({ host: options.host, port: options.port });
  return Object.assign(ops, {
    url: address.replace('0.0.0.0', '127.0.0.1'),
    close: () => ops.app.close(),
  });
}
