/**
 * HTTP front of the reference Policy Engine, the service the policy-simulation activity calls:
 * `POST /api/v1/simulations/evaluate`, `GET /api/v1/policies`, `GET /api/v1/sboms`, `GET /health`.
 * Run it standalone with `tsx policy-engine/server.ts` (POLICY_ENGINE_HOST, POLICY_ENGINE_PORT,
 * POLICY_ENGINE_DATA_DIR, LOG_LEVEL).
 */
import { pathToFileURL } from 'node:url';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadPolicyEngineServerConfig, type PolicyEngineServerConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { installShutdown } from '../stack/shutdown.js';
import {
  listPolicies,
  listSboms,
  loadPolicyEngineData,
  PolicyEngineError,
  simulate,
  type PolicyEngineData,
} from './evaluate.js';

/**
 * Body of `POST /api/v1/simulations/evaluate`. Unknown fields are accepted and ignored so that a newer caller can
 * talk to an older engine. `advisoryCursor`, `vexCursor` and `environment` are accepted for contract compatibility:
 * the bundled data is a single snapshot, so they select nothing here.
 */
export const EvaluateSimulationBody = Type.Object({
  tenantId: Type.String({ minLength: 1, maxLength: 128 }),
  runId: Type.String({ minLength: 1, maxLength: 128 }),
  policyId: Type.String({ minLength: 1, maxLength: 128 }),
  policyVersion: Type.Integer({ minimum: 1 }),
  sbomSet: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: 1000 }),
  advisoryCursor: Type.Optional(Type.String({ maxLength: 256 })),
  vexCursor: Type.Optional(Type.String({ maxLength: 256 })),
  environment: Type.Optional(Type.Record(Type.String(), Type.String())),
  captureExplain: Type.Optional(Type.Boolean()),
});
export type EvaluateSimulationBody = Static<typeof EvaluateSimulationBody>;

const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
});

/** Options of `createPolicyEngineServer`. */
export interface PolicyEngineServerOptions {
  /** Catalogue and findings to evaluate against (default: the bundled samples). */
  data?: PolicyEngineData;
  /** Request logging goes here; without one the server logs nothing. */
  logger?: Logger;
}

interface AjvError {
  instancePath?: string;
  params?: { missingProperty?: string };
  message?: string;
}

// Same shape as the product API's validation errors, so one client-side reader handles both.
function fieldErrors(error: FastifyError): { path: string; message: string }[] {
  return ((error.validation ?? []) as AjvError[]).map((v) => {
    const segments = (v.instancePath ?? '').split('/').filter(Boolean);
    if (v.params?.missingProperty) segments.push(v.params.missingProperty);
    return { path: ['body', ...segments].join('.'), message: v.message ?? 'is invalid' };
  });
}

const CLIENT_ERROR_CODES: Record<number, string> = {
  400: 'BadRequest',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

/**
 * Builds the Policy Engine's Fastify instance without listening (tests drive it with `inject` or through
 * `startPolicyEngine`). Errors answer `{ error, message }`: 400 `ValidationFailed` for an invalid body, 404
 * `UnknownPolicy` / `UnknownPolicyVersion` / `UnknownSbom`, 500 `InternalError` with no internals.
 */
export function createPolicyEngineServer(options: PolicyEngineServerOptions = {}): FastifyInstance {
  const data = options.data ?? loadPolicyEngineData();
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger as FastifyBaseLogger } : { logger: false }),
    // No coercion: a policyVersion of "2" or a boolean sent as a string is a caller bug worth a 400.
    ajv: { customOptions: { allErrors: true, coerceTypes: false } },
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof PolicyEngineError)
      return reply.code(error.statusCode).send({ error: error.code, message: error.message });
    if (error.validation)
      return reply.code(400).send({ error: 'ValidationFailed', message: error.message, errors: fieldErrors(error) });
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500)
      // Fastify's own client errors: malformed JSON, body too large, unsupported media type.
      return reply.code(status).send({ error: CLIENT_ERROR_CODES[status] ?? 'ClientError', message: error.message });
    request.log.error({ err: error }, 'policy engine request failed');
    return reply.code(500).send({ error: 'InternalError', message: 'Internal error; see the policy engine log' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `Route ${request.method} ${request.url} not found` }),
  );

  // Evaluation is pure, so a retried request gets the same answer anyway; echoing the key lets the caller
  // correlate the answer with the attempt that sent it (also on error answers).
  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.headers['idempotency-key'];
    if (typeof key === 'string' && key !== '') void reply.header('idempotency-key', key);
    return payload;
  });

  app.get('/health', async () => ({ status: 'ok', policies: data.policies.size, sboms: data.sboms.size }));

  app.get('/api/v1/policies', async () => ({ policies: listPolicies(data) }));

  app.get('/api/v1/sboms', async () => ({ sboms: listSboms(data) }));

  app.post(
    '/api/v1/simulations/evaluate',
    { schema: { body: EvaluateSimulationBody, headers: IdempotencyKeyHeader } },
    async (request) => {
      const { tenantId, runId, policyId, policyVersion, sbomSet, captureExplain } = request.body;
      const outcome = simulate({ policyId, policyVersion, sbomSet, captureExplain }, data);
      request.log.info(
        {
          tenantId,
          runId,
          policyId,
          policyVersion,
          activePolicyVersion: outcome.result.activePolicyVersion,
          findings: outcome.stats.findings,
          changed: outcome.result.changed,
          durationMs: outcome.stats.durationMs,
        },
        'simulation evaluated',
      );
      return outcome;
    },
  );

  return app;
}

/** A listening Policy Engine. */
export interface RunningPolicyEngine {
  /** Base URL, e.g. `http://127.0.0.1:3100`. */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds the Policy Engine and listens on `host:port` (port 0 picks a free port; see `url`). */
export async function startPolicyEngine(
  options: { host?: string; port?: number } & PolicyEngineServerOptions = {},
): Promise<RunningPolicyEngine> {
  const app = createPolicyEngineServer(options);
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  return {
    // A wildcard bind is not an address a client can call; loopback reaches it.
    url: address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '[::1]'),
    app,
    close: () => app.close(),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let settings: PolicyEngineServerConfig;
  try {
    settings = loadPolicyEngineServerConfig();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  const logger = createLogger({ level: settings.logLevel, name: 'stellaops-policy-engine', sync: true });
  const engine = await startPolicyEngine({
    host: settings.host,
    port: settings.port,
    logger,
    ...(settings.dataDir ? { data: loadPolicyEngineData(settings.dataDir) } : {}),
  });
  logger.info({ url: engine.url }, 'policy engine listening');
  installShutdown({
    logger,
    deadlineMs: 10_000,
    steps: [{ name: 'policy engine', done: 'policy engine closed', run: () => engine.close() }],
  });
}
