/**
 * HTTP front of the reference services of sagas: the Gateway (`POST /api/v1/commands`, see `gateway.ts`) and the
 * providers of the sample sagas' effects (`/providers/…`, see `providers.ts`), plus `GET /health`. `npm start` runs
 * it when `GATEWAY_URL` is unset; run it standalone with `tsx reference-services/server.ts` (the product's
 * configuration: `REFERENCE_SERVICES_*`, `API_PORT`, `DATA_DIR`, `AUTH_*`, `LOG_LEVEL`).
 */
import { pathToFileURL } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ErrorResponse, registerErrorHandlers } from '../api/errors.js';
import { ConfigError, loadConfig, type AppConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { createLogger, type Logger } from '../core/logger.js';
import { Scope } from '../core/scopes.js';
import { loadPolicyEngineData } from '../policy-engine/evaluate.js';
import type { FindingsData } from '../policy-engine/model.js';
import { installShutdown } from '../stack/shutdown.js';
import { aggregatePublishPrefix, connectNats } from '../workers/saga-streams.js';
import {
  createDiscardingSink,
  createIngressEmitter,
  createJetStreamEmitter,
  type EventSink,
  type EventTokenProvider,
  type OutboxEmitter,
} from './emitter.js';
import { registerGateway } from './gateway.js';
import { createImpactIndex } from './impact-index.js';
import { registerProviders } from './providers.js';

/**
 * Where the Gateway's events go: a sink of the caller's, the aggregate stream over a NATS connection (`subjectPrefix`:
 * the literal prefix of its subjects), or the ingress of the API at `apiUrl`.
 */
export type EventTarget =
  EventSink | { nats: NatsConnection; subjectPrefix: string } | { apiUrl: string; tokenFor: EventTokenProvider };

/** Options of {@link createReferenceServices}. */
export interface ReferenceServicesOptions {
  /** Request and event logging; without one the server logs nothing. */
  logger?: Logger;
  /** Where emitted events go; without a target they are logged and dropped. */
  events?: EventTarget;
  /** Retry delays of the emitter (tests): first and longest, in milliseconds. */
  emitterRetry?: { initialMs: number; maxMs: number };
  /** Delay before a requested rescan completes (default 200 ms). */
  scanDelayMs?: number;
  /** Images whose rescans never complete (deadline tests). */
  neverCompleteImages?: Iterable<string>;
  /** Serve `PUT/DELETE/GET /control/faults` (tests; demos with `REFERENCE_SERVICES_FAULTS=true`). */
  faults?: boolean;
  /** SBOMs and findings the impact index is built from (default: the bundled samples). */
  findings?: FindingsData;
  /** Storage quota of each tenant on the reference mirror (default 10 GiB). */
  quotaBytes?: number;
}

/** What the reference services counted: how tests prove that no command or effect call was duplicated. */
export interface ReferenceCounters {
  /** Gateway commands received per commandId (every arrival, repeats included). */
  commandsReceived(): Record<string, number>;
  /** Gateway commands applied per commandId (at most 1 each). */
  commandsApplied(): Record<string, number>;
  /** Provider calls per Idempotency-Key (every arrival). */
  providerCalls(): Record<string, number>;
  /** Provider actions per Idempotency-Key (at most 1 each: a repeat is answered, not acted on). */
  providerApplied(): Record<string, number>;
}

/** The server, its counters and the emitter it owns (when it was given an ingress or JetStream target). */
interface Built {
  app: FastifyInstance;
  counters: ReferenceCounters;
  emitter: OutboxEmitter | undefined;
}

function isSink(target: EventTarget): target is EventSink {
  return typeof (target as EventSink).emit === 'function';
}

/** The emitter of an ingress or JetStream target; undefined for a sink of the caller's (or none). */
function emitterOf(target: EventTarget | undefined, options: ReferenceServicesOptions, logger: Logger) {
  if (!target || isSink(target)) return undefined;
  const retry = {
    logger,
    ...(options.emitterRetry && {
      retryInitialMs: options.emitterRetry.initialMs,
      retryMaxMs: options.emitterRetry.maxMs,
    }),
  };
  return 'nats' in target
    ? createJetStreamEmitter({ ...retry, js: jetstream(target.nats), subjectPrefix: target.subjectPrefix })
    : createIngressEmitter({ ...retry, ...target });
}

function build(options: ReferenceServicesOptions): Built {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger as FastifyBaseLogger } : { logger: false }),
    // The Gateway and the providers log what they did (command applied, event emitted); a line per request on top
    // would bury that in the product's log.
    logController: new LogController({ disableRequestLogging: true }),
    // No coercion: a sequence sent as "3" is a caller bug worth a 400, as in the product API.
    ajv: { customOptions: { allErrors: true, coerceTypes: false } },
    bodyLimit: 1024 * 1024,
  });
  app.addSchema(ErrorResponse);
  registerErrorHandlers(app);

  const target = options.events;
  const emitter = emitterOf(target, options, logger);
  const events: EventSink =
    emitter ?? (target && isSink(target) ? target : createDiscardingSink(logger, 'no event target configured'));

  const index = createImpactIndex(options.findings ?? loadPolicyEngineData().findings);
  const gateway = registerGateway(app, {
    events,
    index,
    logger,
    ...(options.scanDelayMs !== undefined && { scanDelayMs: options.scanDelayMs }),
    ...(options.neverCompleteImages && { neverCompleteImages: options.neverCompleteImages }),
  });
  const providers = registerProviders(app, {
    index,
    faults: options.faults ?? false,
    ...(options.quotaBytes !== undefined && { quotaBytes: options.quotaBytes }),
  });

  app.get(
    '/health',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: { status: { type: 'string' }, images: { type: 'integer' } },
          },
        },
      },
    },
    async () => ({ status: 'ok', images: index.images().length }),
  );

  // Hanging calls answer before the server waits for its requests; timers and an owned emitter stop after it.
  app.addHook('preClose', async () => providers.releaseHanging());
  app.addHook('onClose', async () => {
    gateway.stop();
    await emitter?.close();
  });

  return {
    app,
    emitter,
    counters: {
      commandsReceived: gateway.received,
      commandsApplied: gateway.applied,
      providerCalls: providers.calls,
      providerApplied: providers.applied,
    },
  };
}

/**
 * Builds the reference services without listening (tests drive them over HTTP through
 * {@link startReferenceServices}). Errors answer the product's error document `{ error, message, requestId }`.
 */
export function createReferenceServices(options: ReferenceServicesOptions = {}): FastifyInstance {
  return build(options).app;
}

/** Listening reference services. */
export interface RunningReferenceServices {
  /** Base URL, e.g. `http://127.0.0.1:3200`: the Gateway URL and the providers' base. */
  url: string;
  app: FastifyInstance;
  counters: ReferenceCounters;
  /** The emitter, when the services publish events to JetStream or post them to an API. */
  emitter: OutboxEmitter | undefined;
  close(): Promise<void>;
}

/** Builds the reference services and listens on `host:port` (port 0 picks a free port; see `url`). */
export async function startReferenceServices(
  options: { host?: string; port?: number } & ReferenceServicesOptions = {},
): Promise<RunningReferenceServices> {
  const { app, counters, emitter } = build(options);
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  return {
    // A wildcard bind is not an address a client can call; loopback reaches it.
    url: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]'),
    app,
    counters,
    emitter,
    close: () => app.close(),
  };
}

/** Longest lifetime of the tokens the reference services mint for the ingress (re-minted before they expire). */
const EVENT_TOKEN_LIFETIME_SECONDS = 600;

/**
 * Bearer tokens for the ingress, minted per tenant from the local key with scope `Runner.Events:Write` and cached
 * until a minute before they expire.
 */
export function localEventTokens(config: AppConfig): EventTokenProvider {
  const cache = new Map<string, { token: string; renewAt: number }>();
  const max = config.auth.maxTokenLifetimeSeconds;
  const lifetimeSeconds = max === 0 ? EVENT_TOKEN_LIFETIME_SECONDS : Math.min(EVENT_TOKEN_LIFETIME_SECONDS, max);
  return async (tenantId) => {
    const cached = cache.get(tenantId);
    if (cached && cached.renewAt > Date.now()) return cached.token;
    const token = await mintToken(await loadOrCreateLocalKey(config.dataDir), {
      tenant: tenantId,
      scopes: [Scope.RunnerEventsWrite],
      subject: 'reference-gateway',
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      expiresIn: `${lifetimeSeconds}s`,
    });
    cache.set(tenantId, { token, renewAt: Date.now() + Math.max(lifetimeSeconds - 60, lifetimeSeconds / 2) * 1000 });
    return token;
  };
}

/** How the configured reference services reach the sagas, or why they cannot. */
export type EventDelivery = { target: EventTarget; description: string } | { target: undefined; reason: string };

/**
 * The event target of the reference services under `config`. With a NATS connection (`options.nats`, the process'
 * own): the aggregate stream, under the first `{prefix}.>` of `NATS_AGGREGATE_SUBJECTS`, where the bridge consumes.
 * Without one, over HTTP: the API on loopback, with tokens from the local key, or `REFERENCE_SERVICES_TOKEN` when the
 * API verifies tokens of an external issuer; nothing (and why) when neither.
 */
export function eventDeliveryOf(config: AppConfig, options: { nats?: NatsConnection } = {}): EventDelivery {
  if (options.nats) {
    const subjectPrefix = aggregatePublishPrefix(config.nats.aggregateStream.subjects);
    if (subjectPrefix !== undefined) {
      return {
        target: { nats: options.nats, subjectPrefix },
        description: `events to JetStream stream ${config.nats.aggregateStream.name} (${subjectPrefix}.…)`,
      };
    }
  }
  if (config.api.port === 0) {
    return {
      target: undefined,
      reason:
        'API_PORT=0: the API picks its port when it listens, after the reference services started, so the reference Gateway emits no events; set API_PORT',
    };
  }
  const apiUrl = `http://127.0.0.1:${config.api.port}`;
  const token = config.sagas.referenceServicesToken;
  if (token !== undefined) {
    return {
      target: { apiUrl, tokenFor: async () => token },
      description: `events to ${apiUrl} with REFERENCE_SERVICES_TOKEN`,
    };
  }
  if (config.auth.useLocalKey) {
    return { target: { apiUrl, tokenFor: localEventTokens(config) }, description: `events to ${apiUrl}` };
  }
  return {
    target: undefined,
    reason:
      'the API verifies tokens of an external issuer (AUTH_JWKS_URL / AUTH_JWT_PUBLIC_KEY) and REFERENCE_SERVICES_TOKEN is unset: the reference Gateway emits no events, so sagas waiting for Scan events do not complete; set REFERENCE_SERVICES_TOKEN to a token with scope Runner.Events:Write',
  };
}

/**
 * The options `npm start` and the standalone server run the reference services with; `options.nats` (a connection the
 * caller owns and closes after the services) makes JetStream their event target, as {@link eventDeliveryOf} says.
 */
export function referenceServicesOptionsOf(
  config: AppConfig,
  logger: Logger,
  options: { nats?: NatsConnection } = {},
): ReferenceServicesOptions & { host: string; port: number } {
  const delivery = eventDeliveryOf(config, options);
  if (delivery.target === undefined) logger.warn(`reference services: ${delivery.reason}`);
  return {
    host: '127.0.0.1',
    port: config.sagas.referenceServicesPort,
    logger: logger.child({ component: 'reference-services' }),
    events: delivery.target ?? createDiscardingSink(logger, 'REFERENCE_SERVICES_TOKEN is unset'),
    scanDelayMs: config.sagas.referenceServicesScanDelayMs,
    faults: config.sagas.referenceServicesFaults,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : String(error));
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel, name: 'stellaops-reference-services', sync: true });
  // Standalone, the services publish to an existing NATS deployment when NATS_URL names one (no embedded server here).
  let nats: NatsConnection | undefined;
  if (config.nats.url) {
    try {
      nats = await connectNats(config, { name: 'stellaops-reference-services' });
    } catch (error) {
      console.error((error as Error).message);
      process.exit(2);
    }
  }
  const services = await startReferenceServices(referenceServicesOptionsOf(config, logger, nats ? { nats } : {}));
  logger.info({ url: services.url }, 'reference services listening');
  installShutdown({
    logger,
    deadlineMs: 10_000,
    steps: [
      { name: 'reference services', done: 'reference services closed', run: () => services.close() },
      ...(nats ? [{ name: 'NATS connection', done: 'NATS connection closed', run: () => nats.close() }] : []),
    ],
  });
}
