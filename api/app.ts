/** `buildApp(deps)`: the Fastify application without `listen`, so tests drive it with `app.inject`. */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { VERSION } from '../core/version.js';
import { approvalLinkSecretOf, packEventSecretsOf } from '../core/local-secrets.js';
import type { AppDeps, BuildAppDeps } from './deps.js';
import { ErrorResponse, frameworkErrorHandler, registerErrorHandlers } from './errors.js';
import { createMetricsRegistry, registerHttpMetrics } from './metrics.js';
import { registerRequestTracing } from './plugins/tracing.js';
import { strictValidatorFactory } from './plugins/strict-input.js';
import { policySimulationRoutes } from './routes/policy-simulations.js';
import { approvalPageRoutes } from './routes/approval-page.js';
import { codecRoutes } from './routes/codec.js';
import { notifyConfigRoutes } from './routes/notify-config.js';
import { packApprovalRoutes } from './routes/pack-approvals.js';
import { runnerRoutes } from './routes/runner.js';
import { sagaQuarantineRoutes } from './routes/saga-quarantine.js';
import { sagaRoutes } from './routes/sagas.js';
import { scheduleRoutes } from './routes/schedules.js';
import { selfCheckRoutes } from './routes/self-checks.js';
import { PolicyRunStatus, SimulationMetrics } from './schemas/policy-simulations.js';
import { ScheduleDoc } from './schemas/schedules.js';
import { PolicyRunHub } from './sse/policy-run-hub.js';
import { systemRoutes } from './routes/system.js';
import { createPackApprovalService } from './services/pack-approvals.js';

/** Path of an approval link (`/approvals/{token}`) up to its query string: the token is a credential. */
const APPROVAL_LINK_PATH = /^(\/approvals\/)[^?#]*/;
/** A query parameter named `token` or `…token` / `…_token` (`access_token`, `resumeToken`) and its value. */
const TOKEN_PARAMETER = /([?&][^=&#]*token=)[^&#]*/gi;

/** A request URL as the log shows it: approval-link tokens and `token` query parameters replaced by `[redacted]`. */
export function redactUrlForLog(url: string): string {
  return url.replace(APPROVAL_LINK_PATH, '$1[redacted]').replace(TOKEN_PARAMETER, '$1[redacted]');
}

/** The request fields Fastify logs (its default `req` serializer), with the URL redacted. */
function requestForLog(req: FastifyRequest) {
  return {
    method: req.method,
    url: redactUrlForLog(req.url),
    version: req.headers['accept-version'],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/**
 * The server options of strict input, shared by the API and its tests: bodies validated without coercion and
 * refused when Postgres would refuse them (see `plugins/strict-input.ts`), and the router's own refusals (414, bad
 * URL) answered by the one error mapping.
 */
export function strictInputOptions() {
  return {
    schemaController: { compilersFactory: { buildValidator: strictValidatorFactory() } },
    frameworkErrors: frameworkErrorHandler,
  };
}

/** Builds the API. The caller owns (and closes) the pool and the Temporal facade. */
export async function buildApp(deps: BuildAppDeps): Promise<FastifyInstance> {
  const full: AppDeps = {
    ...deps,
    metrics: deps.metrics ?? createMetricsRegistry(),
    taskQueuePrefix: deps.taskQueuePrefix ?? '',
    policyRunHub: new PolicyRunHub(deps.pool, deps.logger),
    packApprovalSecrets: deps.packApprovalSecrets ?? {
      eventSecrets: await packEventSecretsOf(deps.config),
      linkSecret: await approvalLinkSecretOf(deps.config),
    },
  };
  const app = Fastify({
    // A serializer of the instance takes precedence over Fastify's own `req` serializer.
    loggerInstance: deps.logger.child({}, { serializers: { req: requestForLog } }) as FastifyBaseLogger,
    genReqId: (req) => {
      const header = req.headers['x-request-id'];
      return typeof header === 'string' && /^[\w.-]{1,128}$/.test(header) ? header : randomUUID();
    },
    ...strictInputOptions(),
    bodyLimit: 1024 * 1024,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorResponse);
  app.addSchema(PolicyRunStatus);
  app.addSchema(SimulationMetrics);
  app.addSchema(ScheduleDoc);
  app.addHook('onClose', async () => full.policyRunHub.close());
  registerErrorHandlers(app);
  registerHttpMetrics(app, full.metrics);
  registerRequestTracing(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'StellaOps Workflows API', version: VERSION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get(
    '/openapi.json',
    {
      schema: {
        tags: ['operations'],
        summary: 'OpenAPI document',
        response: { 200: Type.Object({}, { additionalProperties: true }) },
      },
    },
    async () => app.swagger(),
  );

  await app.register(systemRoutes, { deps: full });
  await app.register(selfCheckRoutes, { deps: full });
  await app.register(policySimulationRoutes, { deps: full });
  await app.register(scheduleRoutes, { deps: full });
  // One service for both doors of pack approvals (JSON routes and the approval page), so they decide alike.
  const packApprovals = createPackApprovalService(full);
  await app.register(packApprovalRoutes, { deps: full, packApprovals });
  await app.register(notifyConfigRoutes, { deps: full });
  await app.register(approvalPageRoutes, { deps: full, packApprovals });
  await app.register(sagaRoutes, { deps: full });
  await app.register(sagaQuarantineRoutes, { deps: full });
  await app.register(runnerRoutes, { deps: full });
  await app.register(codecRoutes, { deps: full });
  return app;
}
