/**
 * Strict input as a client meets it, on the real API (`buildApp`) with every route and schema, driven with
 * `app.inject`: bodies are not coerced, and what Postgres would refuse (NUL characters, dates it cannot store, integers
 * beyond its `integer`) answers 400 with field errors. No server is needed: Postgres and Temporal are unreachable
 * stand-ins, so a request that passes validation answers 503, one that does not answers 400.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { buildApp } from '../../api/app.js';
import { discardRequestBody, type ErrorResponse } from '../../api/errors.js';
import { isPostgresDateTime, nulErrors } from '../../api/plugins/strict-input.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { createLogger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { signedHeaders } from '../../scripts/pack-event.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER, type TestSigner } from '../support/auth.js';

const SIMULATIONS = '/api/v1/scheduler/policies/simulations';
const SCHEDULES = '/api/v1/scheduler/schedules';
const SCOPES = ['policy:simulate', 'policy:schedule', 'system:self-check', 'Notifier.Admin', 'Packs.Approve'];
const NUL = '\u0000';

let app: FastifyInstance;
let temporal: TemporalFacade;
let signer: TestSigner;
let token: string;
const eventSecret = generateWebhookSecret();

/** A Postgres that is down: every query fails as a refused connection does (the API answers 503). */
const downPool = {
  query: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
  connect: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
  on: () => downPool,
} as unknown as Pool;

beforeAll(async () => {
  signer = await createTestSigner();
  token = await signer.token({ tenant: 'acme', scopes: SCOPES });
  // A Temporal that is down: every call fails at once, as an unreachable frontend does after its deadline.
  const unavailable = () => Promise.reject(Object.assign(new Error('Temporal is down'), { name: 'TransportError' }));
  temporal = {
    ...createTemporalFacade({ address: '127.0.0.1:1', namespace: 'default' }),
    withDeadline: unavailable,
    ping: unavailable,
  };
  app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger: createLogger({ level: 'silent', name: 'strict-input-test' }),
    pool: downPool,
    temporal,
    verifyToken: signer.verifier,
    packApprovalSecrets: { eventSecrets: [eventSecret], linkSecret: generateSecret() },
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await temporal.close();
});

const send = (method: 'POST' | 'PUT' | 'GET', url: string, body?: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method,
    url,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });

/** The field errors of a 400 (fails on any other answer). */
async function fieldErrors(response: Promise<{ statusCode: number; json<T>(): T }>): Promise<string[]> {
  const res = await response;
  expect(res.statusCode).toBe(400);
  const body = res.json<ErrorResponse>();
  expect(body.error).toBe('ValidationFailed');
  return (body.errors ?? []).map((e) => `${e.path}: ${e.message}`);
}

const simulation = (overrides: Record<string, unknown> = {}) => ({
  policyId: 'pol-1',
  policyVersion: 3,
  inputs: { sbomSet: ['sbom-a'] },
  ...overrides,
});
const packEvent = (overrides: Record<string, unknown> = {}) => ({
  ...(JSON.parse(
    readFileSync(new URL('../../samples/pack-approvals/pack-approval-requested.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown>),
  ...overrides,
});
const postEvent = (event: unknown) => {
  const payload = JSON.stringify(event);
  return app.inject({
    method: 'POST',
    url: '/notifications/pack-approvals',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      ...signedHeaders(eventSecret, payload),
    },
    payload,
  });
};
const rule = (overrides: Record<string, unknown> = {}) => ({
  name: 'prod approvers',
  predicate: 'event.kind == "pack.approval"',
  channels: [{ channel: 'email', recipients: ['ops@example.com'] }],
  ...overrides,
});

describe('request bodies are not type-coerced', () => {
  it.each([
    ['a number as a string', { policyVersion: '3' }, ['body.policyVersion: must be integer']],
    ['a string for an array', { inputs: { sbomSet: 'sbom-x' } }, ['body.inputs.sbomSet: must be array']],
    ['a number as a metadata value', { metadata: { n: 1 } }, ['body.metadata.n: must be string']],
    [
      'a boolean as a string',
      { inputs: { sbomSet: ['sbom-a'], captureExplain: 'true' } },
      ['body.inputs.captureExplain: must be boolean'],
    ],
  ])('a simulation with %s answers 400 naming the field', async (_label, overrides, errors) => {
    expect(await fieldErrors(send('POST', SIMULATIONS, simulation(overrides)))).toEqual(errors);
  });

  it('a well-typed simulation passes validation (and meets the unavailable database)', async () => {
    expect((await send('POST', SIMULATIONS, simulation({ metadata: { n: '1' } }))).statusCode).toBe(503);
  });

  it('a self-check with a null activity count answers 400 instead of counting 0', async () => {
    expect(await fieldErrors(send('POST', '/api/v1/self-checks', { activityCount: null }))).toEqual([
      'body.activityCount: must be integer',
    ]);
  });

  it('a pack approval event with a string for its required grants answers 400', async () => {
    expect(await fieldErrors(postEvent(packEvent({ requiredGrants: 'deploy:prod' })))).toContain(
      'body.requiredGrants: must be array',
    );
    // The same event, well-typed, passes validation.
    expect((await postEvent(packEvent())).statusCode).toBe(503);
  });

  it('a schedule’s simulation is not coerced either', async () => {
    const body = { spec: { intervalSeconds: '3600' }, simulation: simulation({ policyVersion: '3' }) };
    expect(await fieldErrors(send('POST', SCHEDULES, body))).toEqual([
      'body.spec.intervalSeconds: must be integer',
      'body.simulation.policyVersion: must be integer',
    ]);
  });

  it('query strings and path parameters keep their coercion', async () => {
    expect((await send('GET', `${SIMULATIONS}?limit=5&status=queued`)).statusCode).toBe(503);
    expect(await fieldErrors(send('GET', `${SIMULATIONS}?limit=five`))).toEqual(['querystring.limit: must be integer']);
    expect((await send('GET', '/ready?deep=false')).statusCode).toBe(503);
  });
});

describe('integers beyond a Postgres integer', () => {
  it('a policy version above 2^31 − 1 answers 400; 2^31 − 1 itself is accepted', async () => {
    expect(await fieldErrors(send('POST', SIMULATIONS, simulation({ policyVersion: 2147483648 })))).toEqual([
      'body.policyVersion: must be <= 2147483647',
    ]);
    expect((await send('POST', SIMULATIONS, simulation({ policyVersion: 2147483647 }))).statusCode).toBe(503);
    expect(
      await fieldErrors(send('POST', SCHEDULES, { spec: {}, simulation: simulation({ policyVersion: 1e10 }) })),
    ).toEqual(['body.simulation.policyVersion: must be <= 2147483647']);
  });
});

describe('dates Postgres cannot store', () => {
  it.each(['2026-01-01T00:00:00+16:00', '0000-01-01T00:00:00Z', '2026-01-01T00:00:00-16:00'])(
    'since=%s answers 400 naming the parameter',
    async (since) => {
      expect(await fieldErrors(send('GET', `${SIMULATIONS}?since=${encodeURIComponent(since)}`))).toEqual([
        'querystring.since: must match format "date-time"',
      ]);
    },
  );

  it('the limits Postgres accepts pass validation', async () => {
    for (const since of ['2026-01-01T00:00:00+15:59', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59-15:59']) {
      expect((await send('GET', `${SIMULATIONS}?until=${encodeURIComponent(since)}`)).statusCode, since).toBe(503);
    }
  });

  it('a body date-time outside the range answers 400 too (pack approval events)', async () => {
    expect(await fieldErrors(postEvent(packEvent({ expiresAt: '2026-11-23T09:00:00+23:00' })))).toContain(
      'body.expiresAt: must match format "date-time"',
    );
  });

  it.each([
    ['a cursor whose position is not a date', 'WyIxIiwieCJd'],
    ['a cursor with a date Postgres cannot store', Buffer.from('["0000-01-01T00:00:00Z","r"]').toString('base64url')],
    [
      'a cursor with a NUL in its run id',
      Buffer.from(JSON.stringify(['2026-01-01T00:00:00Z', `r${NUL}`])).toString('base64url'),
    ],
    ['a cursor that is not JSON', Buffer.from('nope').toString('base64url')],
  ])('%s answers 400', async (_label, cursor) => {
    const res = await send('GET', `${SIMULATIONS}?cursor=${cursor}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: 'ValidationFailed',
      message: 'cursor is not a cursor returned by this API',
    });
  });

  it('a cursor this API encodes is read (and meets the unavailable database)', async () => {
    const cursor = Buffer.from('["2026-01-01T00:00:00.000Z","run-1"]').toString('base64url');
    expect((await send('GET', `${SIMULATIONS}?cursor=${cursor}`)).statusCode).toBe(503);
  });
});

describe('the NUL character', () => {
  it('answers 400 in a simulation’s metadata values and keys, and in nested inputs', async () => {
    expect(
      await fieldErrors(
        send(
          'POST',
          SIMULATIONS,
          simulation({
            metadata: { ok: 'x', note: `a${NUL}b`, [`k${NUL}`]: 'v' },
            inputs: { sbomSet: ['sbom-a'], environment: { region: NUL } },
          }),
        ),
      ),
    ).toEqual(
      expect.arrayContaining([
        'body.metadata.note: must not contain the NUL character (U+0000)',
        'body.metadata: must not have a property name that contains the NUL character (U+0000)',
        'body.inputs.environment.region: must not contain the NUL character (U+0000)',
      ]),
    );
  });

  it('answers 400 in a rule name, a template subject and a schedule’s metadata', async () => {
    expect(await fieldErrors(send('PUT', '/notifications/rules/r-1', rule({ name: `prod${NUL}` })))).toEqual([
      'body.name: must not contain the NUL character (U+0000)',
    ]);
    expect(
      await fieldErrors(
        send('PUT', '/notifications/templates/pack-approval.requested/email/en-US', { subject: `Hi${NUL}`, text: 'x' }),
      ),
    ).toEqual(['body.subject: must not contain the NUL character (U+0000)']);
    expect(
      await fieldErrors(
        send('POST', SCHEDULES, { spec: { intervalSeconds: 3600 }, simulation: simulation({ metadata: { a: NUL } }) }),
      ),
    ).toEqual(['body.simulation.metadata.a: must not contain the NUL character (U+0000)']);
    expect(await fieldErrors(send('POST', `${SCHEDULES}/s-1/pause`, { note: `freeze${NUL}` }))).toEqual([
      'body.note: must not contain the NUL character (U+0000)',
    ]);
  });

  it('answers 400 in a pack approval event, a query string and a path parameter', async () => {
    expect(
      await fieldErrors(
        postEvent(packEvent({ message: { templateId: 'pack-approval.requested', parameters: { p: NUL } } })),
      ),
    ).toEqual(['body.message.parameters.p: must not contain the NUL character (U+0000)']);
    expect(await fieldErrors(send('GET', `${SIMULATIONS}?cursor=%00`))).toEqual([
      'querystring.cursor: must not contain the NUL character (U+0000)',
    ]);
    expect(await fieldErrors(send('GET', `${SIMULATIONS}/run%00`))).toEqual(
      expect.arrayContaining(['params.runId: must not contain the NUL character (U+0000)']),
    );
  });

  it('is reported beside the schema’s own errors, all at once', async () => {
    expect(await fieldErrors(send('POST', SIMULATIONS, simulation({ policyVersion: 0, policyId: `p${NUL}` })))).toEqual(
      expect.arrayContaining([
        'body.policyVersion: must be >= 1',
        'body.policyId: must not contain the NUL character (U+0000)',
      ]),
    );
  });

  it('a schedule pause without a body still passes validation', async () => {
    const res = await app.inject({
      method: 'POST',
      url: `${SCHEDULES}/s-1/pause`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).not.toBe(400);
  });
});

describe('framework errors answer the error document', () => {
  it('a path parameter over 100 characters answers 414 with error, message and request id', async () => {
    const res = await send('GET', `${SIMULATIONS}/${'r'.repeat(300)}`, undefined, { 'x-request-id': 'req-414' });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toMatchObject({ error: 'FST_ERR_MAX_PARAM_LENGTH', requestId: 'req-414' });
    expect(typeof res.json<ErrorResponse>().message).toBe('string');
  });

  it('an undecodable path answers 400 with the error document', async () => {
    const res = await send('GET', `${SIMULATIONS}/%E0%A4%A`, undefined, { 'x-request-id': 'req-bad-url' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'FST_ERR_BAD_URL', requestId: 'req-bad-url' });
  });

  it('404, 413, 415 and malformed JSON answer the error document with the request id', async () => {
    const headers = { 'x-request-id': 'req-fw' };
    const notFound = await send('GET', '/nowhere', undefined, headers);
    const tooLarge = await send(
      'POST',
      SIMULATIONS,
      simulation({ metadata: { a: 'x'.repeat(2 * 1024 * 1024) } }),
      headers,
    );
    const media = await app.inject({
      method: 'POST',
      url: SIMULATIONS,
      headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      payload: 'a,b',
    });
    const malformed = await app.inject({
      method: 'POST',
      url: SIMULATIONS,
      headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: '{"policyId":',
    });
    for (const [res, status] of [
      [notFound, 404],
      [tooLarge, 413],
      [media, 415],
      [malformed, 400],
    ] as const) {
      expect(res.statusCode).toBe(status);
      expect(Object.keys(res.json<ErrorResponse>()).sort()).toEqual(['error', 'message', 'requestId']);
      expect(res.json<ErrorResponse>().requestId).toBe('req-fw');
    }
  });
});

/** Sends `head` and `body` on a raw connection, writing all of it before reading, and returns what came back. */
function uploadThenRead(url: string, head: string, body: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.pause();
    socket.on('error', reject);
    socket.write(head);
    socket.write(body, () => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.resume();
    });
  });
}

describe('a body over the limit on a listening server', () => {
  let url: string;
  beforeAll(async () => {
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  it.each([
    ['with a content length', false],
    ['chunked', true],
  ])('a 5 MiB upload %s, written in full before reading, gets the 413 document', async (_label, chunked) => {
    const json = Buffer.from(JSON.stringify(simulation({ metadata: { a: 'x'.repeat(5 * 1024 * 1024) } })));
    const framing = chunked ? 'transfer-encoding: chunked' : `content-length: ${json.length}`;
    const body = chunked
      ? Buffer.concat([Buffer.from(`${json.length.toString(16)}\r\n`), json, Buffer.from('\r\n0\r\n\r\n')])
      : json;
    const head =
      `POST ${SIMULATIONS} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\n` +
      `content-type: application/json\r\nx-request-id: req-413\r\n${framing}\r\n\r\n`;
    const answer = await uploadThenRead(url, head, body);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
      error: 'FST_ERR_CTP_BODY_TOO_LARGE',
      requestId: 'req-413',
    });
  });
});

describe('isPostgresDateTime', () => {
  it.each([
    '2026-01-01T00:00:00Z',
    '2026-01-01t00:00:00z',
    '2026-01-01 00:00:00.123456789Z',
    '2026-01-01T00:00:00+15:59',
    '2026-01-01T00:00:00-15:59',
    '2026-01-01T00:00:00+1559',
    '0001-01-01T00:00:00+15:59',
    '9999-12-31T23:59:59-15:59',
    '2024-02-29T12:00:00Z',
    '2000-02-29T12:00:00Z',
    '2026-12-31T23:59:59Z',
    '2026-01-31T00:00:00Z',
    '2026-04-30T00:00:00Z',
  ])('accepts %s', (value) => {
    expect(isPostgresDateTime(value)).toBe(true);
  });

  it.each([
    ['an offset beyond 15:59', '2026-01-01T00:00:00+16:00'],
    ['a negative offset beyond 15:59', '2026-01-01T00:00:00-16:00'],
    ['offset minutes beyond 59', '2026-01-01T00:00:00+15:60'],
    ['year 0', '0000-01-01T00:00:00Z'],
    ['month 0', '2026-00-01T00:00:00Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['day 0', '2026-01-00T00:00:00Z'],
    ['31 April', '2026-04-31T00:00:00Z'],
    ['31 June', '2026-06-31T00:00:00Z'],
    ['31 September', '2026-09-31T00:00:00Z'],
    ['31 November', '2026-11-31T00:00:00Z'],
    ['32 January', '2026-01-32T00:00:00Z'],
    ['29 February of a common year', '2023-02-29T00:00:00Z'],
    ['29 February of a century', '1900-02-29T00:00:00Z'],
    ['30 February of a leap year', '2024-02-30T00:00:00Z'],
    ['hour 24', '2026-01-01T24:00:00Z'],
    ['minute 60', '2026-01-01T23:60:00Z'],
    ['a leap second', '2026-12-31T23:59:60Z'],
    ['no offset', '2026-01-01T00:00:00'],
    ['an hour-only offset JavaScript cannot read', '2026-01-01T00:00:00+15'],
    ['a date only', '2026-01-01'],
    ['text around it', ' 2026-01-01T00:00:00Z'],
    ['text after it', '2026-01-01T00:00:00Zx'],
    ['a five-digit year', '12026-01-01T00:00:00Z'],
  ])('refuses %s', (_label, value) => {
    expect(isPostgresDateTime(value)).toBe(false);
  });
});

describe('nulErrors', () => {
  it('names every string and property name with a NUL, in document order, with escaped pointers', () => {
    expect(
      nulErrors({ a: ['ok', `x${NUL}`], 'b/c~d': { [`k${NUL}`]: 1, e: NUL }, f: 2, g: null, h: true }).map((e) => [
        e.instancePath,
        e.message,
      ]),
    ).toEqual([
      ['/a/1', 'must not contain the NUL character (U+0000)'],
      ['/b~1c~0d', 'must not have a property name that contains the NUL character (U+0000)'],
      ['/b~1c~0d/e', 'must not contain the NUL character (U+0000)'],
    ]);
    expect(nulErrors(NUL)).toEqual([
      {
        instancePath: '',
        keyword: 'noNul',
        schemaPath: '#/noNul',
        params: {},
        message: 'must not contain the NUL character (U+0000)',
      },
    ]);
    expect(nulErrors({ a: 'fine', b: [1, { c: 'also fine' }] })).toEqual([]);
  });

  it('walks any nesting depth without exhausting the stack', () => {
    let deep: unknown = NUL;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(nulErrors(deep)).toHaveLength(1);
  });
});

describe('discardRequestBody', () => {
  /** A request body still arriving, and what is left listening on it. */
  const arriving = () => {
    const stream = new PassThrough();
    const listeners = () => ['data', 'end', 'close', 'error'].map((event) => stream.listenerCount(event));
    return { stream, raw: stream as unknown as IncomingMessage, listeners };
  };
  const settled = (promise: Promise<void>) =>
    Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 50))]);

  it('reads the rest of the body and resolves at its end, leaving no listener behind', async () => {
    const { stream, raw, listeners } = arriving();
    const done = discardRequestBody(raw, 1000, 5000);
    stream.write(Buffer.alloc(600));
    expect(await settled(done)).toBe(false);
    stream.end(Buffer.alloc(400));
    expect(await settled(done)).toBe(true);
    expect(listeners()).toEqual([0, 0, 0, 0]);
  });

  it('stops once more than the limit has arrived', async () => {
    const { stream, raw, listeners } = arriving();
    const done = discardRequestBody(raw, 1000, 5000);
    stream.write(Buffer.alloc(1000));
    expect(await settled(done)).toBe(false);
    stream.write(Buffer.alloc(1));
    expect(await settled(done)).toBe(true);
    expect(listeners()).toEqual([0, 0, 0, 0]);
  });

  it('stops after the timeout, when the connection closes, or on an error', async () => {
    const slow = arriving();
    expect(await settled(discardRequestBody(slow.raw, 1000, 10))).toBe(true);
    expect(slow.listeners()).toEqual([0, 0, 0, 0]);
    const closed = arriving();
    const closing = discardRequestBody(closed.raw, 1000, 5000);
    closed.stream.emit('close');
    expect(await settled(closing)).toBe(true);
    const failed = arriving();
    const failing = discardRequestBody(failed.raw, 1000, 5000);
    failed.stream.emit('error', new Error('reset'));
    expect(await settled(failing)).toBe(true);
    expect(failed.listeners()).toEqual([0, 0, 0, 0]);
  });

  it('resolves at once for a body already read', async () => {
    const { stream, raw } = arriving();
    stream.end();
    stream.resume();
    await new Promise((resolve) => stream.once('end', resolve));
    expect(await settled(discardRequestBody(raw, 1000, 5000))).toBe(true);
    expect(await settled(discardRequestBody({ complete: true } as IncomingMessage, 1000, 5000))).toBe(true);
  });
});
