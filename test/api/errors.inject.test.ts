/**
 * The one error mapping as a client sees it: a real Fastify instance with the API's error and not-found handlers and
 * the error document as the response schema of its routes, driven with `app.inject` (no server needed).
 */
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  badRequest,
  commonErrorResponses,
  conflict,
  ErrorResponse,
  errorRef,
  forbidden,
  notFound,
  registerErrorHandlers,
  unauthorized,
  validationFailed,
} from '../../api/errors.js';
import { strictInputOptions } from '../../api/app.js';
import { memoryLogger, type MemoryLogger } from '../support/logger.js';

/** What the secret-bearing failure says; no part of it may reach a client. */
const INTERNALS = 'pool exhausted at /srv/stellaops/db.ts:42 (password=hunter2)';

let log: MemoryLogger;
let app: FastifyInstance;
/** What the `/throw` route throws next. */
let next: () => unknown;

beforeAll(async () => {
  log = memoryLogger();
  app = Fastify({
    loggerInstance: log.logger as FastifyBaseLogger,
    requestIdHeader: 'x-request-id',
    // The API's validator and framework-error settings: every field error at once, bodies not coerced.
    ...strictInputOptions(),
    bodyLimit: 1024,
  });
  app.addSchema(ErrorResponse);
  registerErrorHandlers(app);
  await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 'errors under test', version: '0' } } });
  const responses = { 200: Type.Object({ ok: Type.Boolean() }), 404: errorRef, 409: errorRef, ...commonErrorResponses };
  app.post(
    '/things/:thingId',
    {
      schema: {
        params: Type.Object({ thingId: Type.String({ pattern: '^t-[0-9]+$' }) }),
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })) }),
        body: Type.Object(
          {
            name: Type.String({ minLength: 1 }),
            channels: Type.Array(Type.Object({ recipients: Type.Array(Type.String({ format: 'email' })) })),
            labels: Type.Optional(Type.Object({ 'team/owner': Type.String(), 'cost~centre': Type.String() })),
          },
          { additionalProperties: false },
        ),
        response: responses,
      },
    },
    async () => ({ ok: true }),
  );
  app.get('/throw', { schema: { response: responses } }, async () => {
    throw next();
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
});
beforeEach(() => {
  log.lines.length = 0;
  log.records.length = 0;
});

const thrown = async (error: unknown, requestId = 'req-under-test') => {
  next = () => error;
  return app.inject({ method: 'GET', url: '/throw', headers: { 'x-request-id': requestId } });
};
const postThing = (
  body: unknown,
  options: { url?: string; headers?: Record<string, string>; payload?: string; requestId?: string } = {},
) =>
  app.inject({
    method: 'POST',
    url: options.url ?? '/things/t-1',
    headers: {
      'content-type': 'application/json',
      'x-request-id': options.requestId ?? 'req-under-test',
      ...options.headers,
    },
    payload: options.payload ?? JSON.stringify(body),
  });
const validThing = { name: 'n', channels: [{ recipients: ['a@example.com'] }] };

describe('validation failures', () => {
  it('answer 400 ValidationFailed with one field error per failing field, named by request part and path', async () => {
    const res = await postThing({
      name: '',
      channels: [{ recipients: ['a@example.com', 'not-an-email'] }],
      labels: { 'team/owner': {} },
      x: 1,
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = res.json<ErrorResponse>();
    expect(body).toMatchObject({
      error: 'ValidationFailed',
      message: 'The request is invalid',
      requestId: 'req-under-test',
    });
    const bodyErrors = body.errors;
    expect(bodyErrors?.map((e) => e.path).sort()).toEqual([
      'body.channels.0.recipients.1',
      'body.labels.cost~centre',
      'body.labels.team/owner',
      'body.name',
      'body.x',
    ]);
    expect(bodyErrors).toContainEqual({ path: 'body.name', message: 'must NOT have fewer than 1 characters' });
    expect(bodyErrors).toContainEqual({
      path: 'body.labels.cost~centre',
      message: "must have required property 'cost~centre'",
    });
    expect(bodyErrors).toContainEqual({ path: 'body.x', message: 'must NOT have additional properties' });

    const query = await postThing(validThing, { url: '/things/t-1?limit=0' });
    expect(query.statusCode).toBe(400);
    expect(query.json<ErrorResponse>().errors).toEqual([{ path: 'querystring.limit', message: 'must be >= 1' }]);
  });

  it('name the request part itself when the whole part is wrong', async () => {
    const res = await postThing(['not', 'an', 'object']);
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorResponse>().errors).toEqual([{ path: 'body', message: 'must be object' }]);
    const params = await postThing(validThing, { url: '/things/nope' });
    expect(params.statusCode).toBe(400);
    expect(params.json<ErrorResponse>().errors).toEqual([
      { path: 'params.thingId', message: 'must match pattern "^t-[0-9]+$"' },
    ]);
  });

  it('answer semantic checks beyond the schema in the same shape, JSON pointers turned into dotted paths', async () => {
    const res = await thrown(
      validationFailed([
        { in: 'body', pointer: '/channels/0/recipients/1', message: 'is not a known recipient' },
        { in: 'body', pointer: '/', message: 'is contradictory' },
        { in: 'querystring', pointer: '', message: 'is empty' },
        { in: 'headers', pointer: '/x-team~1owner/a~0b~01', message: 'is unknown' },
      ]),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'ValidationFailed',
      message: 'The request is invalid',
      requestId: 'req-under-test',
      errors: [
        { path: 'body.channels.0.recipients.1', message: 'is not a known recipient' },
        { path: 'body', message: 'is contradictory' },
        { path: 'querystring', message: 'is empty' },
        { path: 'headers.x-team/owner.a~b~1', message: 'is unknown' },
      ],
    });
  });

  it('treat an error carrying validator output like a schema failure of the body', async () => {
    const res = await thrown(
      Object.assign(new Error('custom validator'), {
        validation: [
          { instancePath: '/a', params: {} },
          { params: { missingProperty: 'b' }, message: 'is required' },
          { instancePath: '/c', message: 'is too long' },
          { message: 'is contradictory' },
        ],
      }),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'ValidationFailed',
      message: 'The request is invalid',
      requestId: 'req-under-test',
      errors: [
        { path: 'body.a', message: 'is invalid' },
        { path: 'body.b', message: 'is required' },
        { path: 'body.c', message: 'is too long' },
        { path: 'body', message: 'is contradictory' },
      ],
    });
  });
});

describe('errors with a definite answer', () => {
  it.each([
    ['badRequest', badRequest('Window must end after it starts'), 400, 'ValidationFailed'],
    ['badRequest with a code', badRequest('Unknown template', 'UnknownTemplate'), 400, 'UnknownTemplate'],
    ['notFound', notFound('Run r-1 not found'), 404, 'NotFound'],
    ['conflict', conflict('Approval already decided'), 409, 'Conflict'],
    ['forbidden', forbidden('Missing scope'), 403, 'Forbidden'],
  ])('%s answers its status, code and message, and no field errors', async (_name, error, status, code) => {
    const res = await thrown(error);
    expect(res.statusCode).toBe(status);
    expect(res.json()).toEqual({ error: code, message: error.message, requestId: 'req-under-test' });
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('401 carries the bearer challenge', async () => {
    const res = await thrown(unauthorized('Missing bearer token'));
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="stellaops"');
    expect(res.json()).toEqual({ error: 'Unauthorized', message: 'Missing bearer token', requestId: 'req-under-test' });
  });

  it('an unknown route answers 404 NotFound naming the method and path', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/nowhere?x=1', headers: { 'x-request-id': 'req-404' } });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: 'NotFound',
      message: 'Route DELETE /nowhere?x=1 not found',
      requestId: 'req-404',
    });
  });
});

describe('Fastify client errors', () => {
  it('keep their 4xx status, code and message', async () => {
    const malformed = await postThing(undefined, { payload: '{"name":' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ error: 'FST_ERR_CTP_INVALID_JSON_BODY', requestId: 'req-under-test' });
    expect(malformed.json<ErrorResponse>().message).toMatch(/JSON/);

    const tooLarge = await postThing({ ...validThing, name: 'x'.repeat(2048) });
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.json()).toMatchObject({
      error: 'FST_ERR_CTP_BODY_TOO_LARGE',
      message: 'Request body is too large',
    });

    const media = await postThing(undefined, { headers: { 'content-type': 'text/csv' }, payload: 'a,b' });
    expect(media.statusCode).toBe(415);
    expect(media.json()).toMatchObject({ error: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' });
  });

  it('answer any status from 400 to 499, with BadRequest and a generic message when the error names neither', async () => {
    const lowest = await thrown(Object.assign(new Error('Not acceptable here'), { statusCode: 400 }));
    expect(lowest.statusCode).toBe(400);
    expect(lowest.json()).toEqual({ error: 'BadRequest', message: 'Not acceptable here', requestId: 'req-under-test' });
    const highest = await thrown(Object.assign(new Error('Client closed request'), { statusCode: 499, code: 'E499' }));
    expect(highest.statusCode).toBe(499);
    expect(highest.json()).toEqual({ error: 'E499', message: 'Client closed request', requestId: 'req-under-test' });
    const bare = await thrown({ statusCode: 422 });
    expect(bare.statusCode).toBe(422);
    expect(bare.json()).toEqual({ error: 'BadRequest', message: 'Bad request', requestId: 'req-under-test' });
  });
});

describe('dependency outages', () => {
  it.each([
    ['Temporal', Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14, details: '' })],
    ['Postgres', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
  ])('%s unavailable answers 503 with Retry-After and names the dependency, nothing more', async (name, error) => {
    const res = await thrown(error);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toEqual({
      error: 'ServiceUnavailable',
      message: `${name} is unavailable; retry later`,
      requestId: 'req-under-test',
    });
    expect(res.body).not.toContain(error.message);
    const warning = log.records.find((r) => r.msg === 'dependency unavailable');
    expect(warning).toMatchObject({ level: 40, dependency: name.toLowerCase(), reqId: 'req-under-test' });
    expect((warning?.err as { message?: string }).message).toBe(error.message);
  });
});

describe('unexpected errors', () => {
  it.each([
    ['an Error', new Error(INTERNALS)],
    ['an error with a 5xx status', Object.assign(new Error(INTERNALS), { statusCode: 502, code: 'EUPSTREAM' })],
    ['an error with status 500', Object.assign(new Error(INTERNALS), { statusCode: 500, code: 'E500' })],
    ['an error with a non-error status', Object.assign(new Error(INTERNALS), { statusCode: 399, code: 'E399' })],
  ])('%s answers 500 InternalError with the request id and no internals', async (_label, error) => {
    const res = await thrown(error, 'req-500');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: 'InternalError',
      message: 'Internal error; see the server log',
      requestId: 'req-500',
    });
    expect(res.headers['retry-after']).toBeUndefined();
    for (const secret of ['hunter2', '/srv/stellaops', 'pool exhausted', 'EUPSTREAM', 'E500', 'E399']) {
      expect(res.body).not.toContain(secret);
    }
  });

  it('are logged as errors with their stack, for the operator the client is sent to', async () => {
    const error = new Error(INTERNALS);
    await thrown(error, 'req-logged');
    const record = log.records.find((r) => r.msg === 'unhandled error');
    expect(record).toMatchObject({ level: 50, reqId: 'req-logged' });
    expect(record?.err).toMatchObject({ message: INTERNALS, stack: error.stack });
    expect(log.records.some((r) => r.msg === 'dependency unavailable')).toBe(false);
  });
});

/** The parts of an OpenAPI document these tests read. */
interface JsonSchema {
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  type?: string;
  items?: JsonSchema;
}
interface OpenApiDocument {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }> }>
  >;
  components: { schemas: Record<string, JsonSchema> };
}

describe('the error document in the OpenAPI description', () => {
  it('describes every error answer a route declares, for clients generated from it', () => {
    const doc = app.swagger() as unknown as OpenApiDocument;
    const resolve = (schema: JsonSchema): JsonSchema =>
      schema.$ref ? resolve(doc.components.schemas[schema.$ref.split('/').pop()!] ?? {}) : schema;
    const responses = doc.paths['/things/{thingId}']?.post?.responses ?? {};
    expect(Object.keys(responses).sort()).toEqual(['200', '400', '401', '403', '404', '409', '500', '503']);
    for (const status of ['400', '401', '403', '404', '409', '500', '503']) {
      const schema = resolve(responses[status]?.content?.['application/json']?.schema ?? {});
      expect(Object.keys(schema.properties ?? {}).sort(), status).toEqual(['error', 'errors', 'message', 'requestId']);
      expect(schema.required?.sort(), status).toEqual(['error', 'message']);
      expect(resolve(schema.properties?.errors?.items ?? {}).required?.sort(), status).toEqual(['message', 'path']);
    }
  });
});
