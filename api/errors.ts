/**
 * The API's one error mapping and its error document. Validation → 400 with field errors; unknown → 404;
 * conflicting state → 409; Temporal or Postgres unavailable → 503 with Retry-After; anything else → 500 with
 * no internals. {@link toErrorDocument} decides; the JSON handler here and the approval page's HTML handler
 * only render what it returns.
 */
import type { IncomingMessage } from 'node:http';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** A field-level error of the error document: `path` is `<request part>.<dotted field path>`. */
export const FieldErrorDoc = Type.Object({ path: Type.String(), message: Type.String() });
export type FieldErrorDoc = Static<typeof FieldErrorDoc>;

/** Error document of every non-2xx answer. */
export const ErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'Stable machine-readable error code' }),
    message: Type.String(),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(FieldErrorDoc, { description: 'Field-level errors' })),
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

/** Error code of a 400 whose request did not pass validation (schema or semantic). */
export const VALIDATION_FAILED = 'ValidationFailed';

/** An error that maps to a definite HTTP answer. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Field-level errors, for a validation failure. */
    readonly fieldErrors?: readonly FieldErrorDoc[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** 400: the request cannot be served as sent (`code` defaults to `ValidationFailed`). */
export const badRequest = (message: string, code: string = VALIDATION_FAILED) => new HttpError(400, code, message);
/** 404: the resource is unknown (or belongs to another tenant). */
export const notFound = (message: string) => new HttpError(404, 'NotFound', message);
/** 409: the resource's state does not allow the request. */
export const conflict = (message: string) => new HttpError(409, 'Conflict', message);
/** 401 with the bearer challenge. */
export const unauthorized = (message: string) =>
  new HttpError(401, 'Unauthorized', message, { 'www-authenticate': 'Bearer realm="stellaops"' });
/** 403: authenticated, but not allowed. */
export const forbidden = (message: string) => new HttpError(403, 'Forbidden', message);

/** The part of a request a field error points into. */
export type RequestPart = 'body' | 'params' | 'querystring' | 'headers';

/** A field error as validators report it: a JSON pointer (`/channels/0/recipients/1`) into one request part. */
export interface FieldError {
  in: RequestPart;
  pointer: string;
  message: string;
}

/**
 * The document path of a field error: `body` + `/channels/0/recipients/1` → `body.channels.0.recipients.1`,
 * `body` + `/` → `body`. The one formatter of field paths, for schema validation and semantic checks alike.
 */
function documentPath(part: string, pointer: string): string {
  const segments = pointer
    .split('/')
    .slice(1)
    .filter((segment) => segment !== '')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
  return [part, ...segments].join('.');
}

/** 400 `ValidationFailed` with field errors: what schema validation answers, for checks beyond the schema. */
export function validationFailed(fieldErrors: readonly FieldError[]): HttpError {
  return new HttpError(
    400,
    VALIDATION_FAILED,
    'The request is invalid',
    {},
    fieldErrors.map((e) => ({ path: documentPath(e.in, e.pointer), message: e.message })),
  );
}

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

function schemaFieldErrors(error: FastifyError): FieldErrorDoc[] {
  const part = (error as { validationContext?: string }).validationContext ?? 'body';
  return ((error.validation ?? []) as AjvError[]).map((v) => {
    const extra = v.params?.missingProperty ?? v.params?.additionalProperty;
    const pointer = extra ? `${v.instancePath ?? ''}/${extra}` : (v.instancePath ?? '');
    return { path: documentPath(part, pointer), message: v.message ?? 'is invalid' };
  });
}

/** What an error answers: status, headers and the error document. */
export interface ErrorDocument {
  status: number;
  headers: Record<string, string>;
  body: ErrorResponse;
}

/**
 * Maps any error thrown while serving `request` to its answer, and logs what operators need (dependency outages
 * as warnings, unexpected errors with their stack). Bodies of 5xx answers carry no internals.
 */
export function toErrorDocument(error: unknown, request: FastifyRequest): ErrorDocument {
  const requestId = request.id;
  const e = error as Partial<FastifyError>;
  if (e.validation) {
    const errors = schemaFieldErrors(error as FastifyError);
    return {
      status: 400,
      headers: {},
      body: { error: VALIDATION_FAILED, message: 'The request is invalid', requestId, errors },
    };
  }
  if (error instanceof HttpError) {
    return {
      status: error.statusCode,
      headers: error.headers,
      body: {
        error: error.code,
        message: error.message,
        requestId,
        ...(error.fieldErrors ? { errors: [...error.fieldErrors] } : {}),
      },
    };
  }
  const dependency = unavailableDependency(error);
  if (dependency) {
    request.log.warn({ err: error, dependency }, 'dependency unavailable');
    const name = dependency === 'temporal' ? 'Temporal' : 'Postgres';
    return {
      status: 503,
      headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      body: { error: 'ServiceUnavailable', message: `${name} is unavailable; retry later`, requestId },
    };
  }
  const status = e.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // Fastify's own client errors (malformed JSON, body too large, unsupported media type…).
    return {
      status,
      headers: {},
      body: { error: e.code ?? 'BadRequest', message: e.message ?? 'Bad request', requestId },
    };
  }
  request.log.error({ err: error }, 'unhandled error');
  return {
    status: 500,
    headers: {},
    body: { error: 'InternalError', message: 'Internal error; see the server log', requestId },
  };
}

/** The most of an unread request body that is read (and discarded) before an answer that closes the connection. */
export const DISCARD_LIMIT_BYTES = 16 * 1024 * 1024;
/** How long reading an unread request body may delay such an answer. */
export const DISCARD_TIMEOUT_MS = 10_000;

/**
 * Reads and discards what is left of `raw`'s body, up to `limitBytes` or `timeoutMs`. Fastify closes the connection
 * after refusing a body it did not read (too large, unsupported type); closing with unread bytes makes the client's
 * TCP stack reset the connection, so a client that sends its whole body before reading the answer would never see it.
 */
export function discardRequestBody(
  raw: IncomingMessage,
  limitBytes = DISCARD_LIMIT_BYTES,
  timeoutMs = DISCARD_TIMEOUT_MS,
): Promise<void> {
  if (raw.complete || raw.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    let received = 0;
    const stop = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', stop);
      raw.off('close', stop);
      raw.off('error', stop);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) stop();
    };
    const timer = setTimeout(stop, timeoutMs);
    raw.on('data', onData);
    raw.on('end', stop);
    raw.on('close', stop);
    raw.on('error', stop);
    raw.resume();
  });
}

async function sendJson(reply: FastifyReply, doc: ErrorDocument): Promise<FastifyReply> {
  if (reply.getHeader('connection') === 'close') await discardRequestBody(reply.request.raw);
  return reply.code(doc.status).headers(doc.headers).send(doc.body);
}

/**
 * Fastify's `frameworkErrors` option: the router's own refusals (a path parameter over `maxParamLength` → 414, an
 * undecodable URL → 400) answered by the one error mapping, with the request id, instead of Fastify's bare body.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendJson(reply, toErrorDocument(error, request));
}

/** Installs the JSON error and not-found handlers on `app`. */
export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
    sendJson(reply, toErrorDocument(error, request)),
  );
  app.setNotFoundHandler((request, reply) =>
    sendJson(reply, toErrorDocument(notFound(`Route ${request.method} ${request.url} not found`), request)),
  );
}
