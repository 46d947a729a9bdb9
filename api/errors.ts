/**
 * The API's one error handler and its error document. Validation → 400 with field errors; unknown → 404;
 * conflicting state → 409; Temporal or Postgres unavailable → 503 with Retry-After; anything else → 500 with
 * no internals.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Error document of every non-2xx answer. */
export const ErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'Stable machine-readable error code' }),
    message: Type.String(),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), { description: 'Field-level errors' }),
    ),
  },
  { $id: 'ErrorResponse' },
);
export type ErrorResponse = Static<typeof ErrorResponse>;

const ref = Type.Ref('ErrorResponse');
/** Error responses shared by every authenticated route (add to `response`). */
export const commonErrorResponses = { 400: ref, 401: ref, 403: ref, 500: ref, 503: ref } as const;
/** Reference to the error document, for route-specific codes (404, 409, …). */
export const errorRef = ref;

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** An error that maps to a definite HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (message: string) => new HttpError(404, 'NotFound', message);
export const conflict = (message: string) => new HttpError(409, 'Conflict', message);
export const unauthorized = (message: string) =>
  new HttpError(401, 'Unauthorized', message, { 'www-authenticate': 'Bearer realm="stellaops"' });
export const forbidden = (message: string) => new HttpError(403, 'Forbidden', message);

/** Which dependency is unavailable, if the error says one is. */
export function unavailableDependency(error: unknown): 'temporal' | 'postgres' | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { name?: string; code?: unknown; message?: string; cause?: unknown };
    // gRPC UNAVAILABLE (14) and DEADLINE_EXCEEDED (4) from the Temporal client.
    if ((e.code === 14 || e.code === 4) && (e.name === 'ServiceError' || 'details' in e || 'metadata' in e))
      return 'temporal';
    if (e.name === 'ServiceError' && /UNAVAILABLE|DEADLINE_EXCEEDED|connect/i.test(e.message ?? '')) return 'temporal';
    if (e.name === 'TransportError') return 'temporal';
    if (typeof e.code === 'string') {
      // Postgres: admin shutdown / cannot connect now (57P0x), connection exceptions (08xxx), socket errors.
      if (/^(57P0[1-3]|08\d{3})$/.test(e.code)) return 'postgres';
      if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(e.code) && !('details' in e)) {
        return 'postgres';
      }
    }
    if (
      /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
        e.message ?? '',
      )
    ) {
      return 'postgres';
    }
    current = e.cause;
  }
  return undefined;
}

interface AjvError {
  instancePath?: string;
  params?: { missingProperty?: string; additionalProperty?: string };
  message?: string;
}

function fieldErrors(error: FastifyError): { path: string; message: string }[] {
  const context = (error as { validationContext?: string }).validationContext ?? 'body';
  return ((error.validation ?? []) as AjvError[]).map((v) => {
    let path = (v.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    const extra = v.params?.missingProperty ?? v.params?.additionalProperty;
    if (extra) path = path ? `${path}.${extra}` : extra;
    return { path: path ? `${context}.${path}` : context, message: v.message ?? 'is invalid' };
  });
}

/** Installs the error and not-found handlers on `app`. */
export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const requestId = request.id;
    if (error.validation) {
      const errors = fieldErrors(error);
      return reply.code(400).send({ error: 'ValidationFailed', message: 'The request is invalid', requestId, errors });
    }
    if (error instanceof HttpError) {
      return reply
        .code(error.statusCode)
        .headers(error.headers)
        .send({ error: error.code, message: error.message, requestId });
    }
    const dependency = unavailableDependency(error);
    if (dependency) {
      request.log.warn({ err: error, dependency }, 'dependency unavailable');
      const name = dependency === 'temporal' ? 'Temporal' : 'Postgres';
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ error: 'ServiceUnavailable', message: `${name} is unavailable; retry later`, requestId });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (malformed JSON, body too large, unsupported media type…).
      return reply.code(status).send({ error: error.code ?? 'BadRequest', message: error.message, requestId });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: 'InternalError', message: 'Internal error; see the server log', requestId });
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'NotFound', message: `Route ${request.method} ${request.url} not found`, requestId: request.id }),
  );
}
