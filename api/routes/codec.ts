/**
 * The codec endpoint of Temporal's codec server protocol: `POST /codec/decode` and `POST /codec/encode` take and
 * answer `Payloads` in proto3 JSON, so the Web UI (`codec.endpoint`) and the `temporal` CLI (`--codec-endpoint`) show
 * the plain payloads that Temporal, the database and a history export only hold encrypted.
 *
 * Decoding hands out plain data, so it takes an operator: a bearer token with `system:payloads:decode` (401 without
 * one, 403 without the scope). A production Web UI has its own login and passes the user's access token
 * (`codec.passAccessToken`, which the UI only does over https). The Web UI embedded in `npm start`'s dev server has no
 * login and cannot: with `trustLocalUi` (set by `npm start` only, refused in production) a request from a loopback
 * address that carries one of `corsOrigins` as its `Origin` is taken as the local operator's.
 *
 * CORS answers the `corsOrigins` only, on these routes only: a browser page of any other origin gets no CORS headers,
 * so it can neither send nor read. Nothing logged here carries payload data or key material.
 */
import { BlockList, isIPv6 } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { PAYLOAD_CODEC_KEY_ID_PATTERN } from '../../core/config.js';
import { KEY_ID_METADATA } from '../../core/payload-codec.js';
import { Scope } from '../../core/scopes.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef, forbidden, HttpError, validationFailed, type FieldError } from '../errors.js';
import { authenticate } from '../plugins/auth.js';
import { CODEC_BODY_LIMIT_BYTES, CodecHeaders, CodecPayloads, type CodecPayload } from '../schemas/codec.js';

/** The codec routes, under the prefix the Web UI and the CLI are given (`http(s)://<api>/codec`). */
export const CODEC_PATHS = { decode: '/codec/decode', encode: '/codec/encode' } as const;

/** Error code of a payload the codec cannot decode (unknown key id, tampered ciphertext). */
export const PAYLOAD_NOT_DECODABLE = 'PayloadNotDecodable';

/** Request headers a browser may send cross-origin: what the Web UI's codec client sends. */
const ALLOWED_HEADERS = 'Content-Type, Authorization, X-Namespace';
/** How long a browser may reuse a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** Loopback addresses as a socket reports them (IPv4-mapped IPv6 included, which `BlockList` matches as IPv4). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether `address` (a socket's remote address) is a loopback address. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  try {
    return LOOPBACK.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

/**
 * Whether `value` is base64 as proto3 JSON reads `bytes`: the standard or the URL-safe alphabet (not mixed), with or
 * without padding. `Buffer.from` skips what is not base64, so without this check a typo would decode as other bytes.
 */
export function isBase64(value: string): boolean {
  if (!/^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/.test(value)) return false;
  const padded = value.endsWith('=');
  return padded ? value.length % 4 === 0 : value.length % 4 !== 1;
}

/** The field errors of every metadata value and data field of `body` that is not base64. */
function base64Errors(body: CodecPayloads): FieldError[] {
  const errors: FieldError[] = [];
  const escape = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1');
  body.payloads.forEach((payload, i) => {
    for (const [name, value] of Object.entries(payload.metadata ?? {})) {
      if (!isBase64(value))
        errors.push({ in: 'body', pointer: `/payloads/${i}/metadata/${escape(name)}`, message: 'must be base64' });
    }
    if (payload.data !== undefined && !isBase64(payload.data)) {
      errors.push({ in: 'body', pointer: `/payloads/${i}/data`, message: 'must be base64' });
    }
  });
  return errors;
}

/** A payload of the wire (proto3 JSON) as the codec takes it. */
function fromJson(payload: CodecPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

/** A payload of the codec as proto3 JSON writes it: empty metadata and data left out. */
function toJson(payload: Payload): CodecPayload {
  const metadata = Object.entries(payload.metadata ?? {});
  const data = payload.data ?? new Uint8Array();
  return {
    ...(metadata.length > 0 && {
      metadata: Object.fromEntries(metadata.map(([name, value]) => [name, Buffer.from(value).toString('base64')])),
    }),
    ...(data.length > 0 && { data: Buffer.from(data).toString('base64') }),
  };
}

/** The key id an encrypted payload names, when it is one a key could have (it is quoted in answers and logs). */
function keyIdOf(payload: Payload): string | undefined {
  const raw = payload.metadata?.[KEY_ID_METADATA];
  const id = raw ? Buffer.from(raw).toString('utf8') : undefined;
  return id !== undefined && PAYLOAD_CODEC_KEY_ID_PATTERN.test(id) ? id : undefined;
}

/** The codec routes and their CORS preflights; one capability plugin with one authentication hook. */
export const codecRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { corsOrigins, trustLocalUi } = deps.config.payloadCodec;
  const allowedOrigin = (request: FastifyRequest): string | undefined => {
    const origin = request.headers.origin;
    return origin !== undefined && corsOrigins.includes(origin) ? origin : undefined;
  };
  // First, so that every answer a listed origin gets (401, 403 and 400 included) is one its page may read.
  app.addHook('onRequest', async (request, reply) => {
    const origin = allowedOrigin(request);
    reply.header('vary', 'Origin');
    if (origin) reply.headers({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true' });
  });

  // Before the body is read: a caller that may not decode learns nothing about its input.
  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS') return;
    // The socket's own address, never a forwarded one. A browser page cannot forge its Origin; a process on this
    // machine can, which is why only local runs may trust the embedded UI.
    if (trustLocalUi === true && isLoopbackAddress(request.socket.remoteAddress) && allowedOrigin(request)) return;
    await authenticate(deps.verifyToken, request, [Scope.PayloadsDecode]);
  });

  const codecOf = (): PayloadCodec => {
    if (!deps.payloadCodec) throw new HttpError(501, 'NotConfigured', 'This API has no payload codec configured');
    return deps.payloadCodec;
  };
  const validBody = (body: CodecPayloads): Payload[] => {
    const errors = base64Errors(body);
    if (errors.length > 0) throw validationFailed(errors);
    return body.payloads.map(fromJson);
  };

  const schema = (summary: string, description: string, extraResponses = {}) => ({
    tags: ['codec'],
    summary,
    description,
    security: [{ bearer: [] }],
    headers: CodecHeaders,
    body: CodecPayloads,
    response: { 200: CodecPayloads, ...extraResponses, ...commonErrorResponses, 501: errorRef },
  });

  app.post(
    CODEC_PATHS.decode,
    {
      bodyLimit: CODEC_BODY_LIMIT_BYTES,
      schema: schema(
        'Decode payloads (Temporal codec server protocol)',
        'Decrypts the payloads the product encrypted, with the key each names; other payloads are returned as ' +
          'they are. 422 when a payload names an unknown key or fails authentication, naming its index and key id. ' +
          'Scope `system:payloads:decode`.',
        { 422: errorRef },
      ),
    },
    async (request) => {
      const codec = codecOf();
      const payloads = validBody(request.body);
      const decoded: Payload[] = [];
      // One at a time, so that a failure names its payload; never the codec's own message, which is not ours to show.
      for (const [index, payload] of payloads.entries()) {
        try {
          decoded.push(...(await codec.decode([payload])));
        } catch {
          const keyId = keyIdOf(payload);
          const key = keyId === undefined ? 'a key id this API cannot read' : `key id "${keyId}"`;
          request.log.warn({ payloadIndex: index, keyId }, 'payload not decodable');
          throw new HttpError(
            422,
            PAYLOAD_NOT_DECODABLE,
            `Payload ${index} (${key}) cannot be decoded: the key is unknown here or the payload was altered`,
          );
        }
      }
      return { payloads: decoded.map(toJson) };
    },
  );

  app.post(
    CODEC_PATHS.encode,
    {
      bodyLimit: CODEC_BODY_LIMIT_BYTES,
      schema: schema(
        'Encode payloads (Temporal codec server protocol)',
        'Encrypts the payloads with the current key, as the workers and the API do. Scope `system:payloads:decode`.',
      ),
    },
    async (request) => ({ payloads: (await codecOf().encode(validBody(request.body))).map(toJson) }),
  );

  // Preflights carry no credentials (browsers never send them there): the origin alone decides.
  for (const url of Object.values(CODEC_PATHS)) {
    app.options(url, { schema: { hide: true } }, async (request, reply) => {
      if (!allowedOrigin(request)) throw forbidden('This origin may not call the codec endpoint (CODEC_CORS_ORIGINS)');
      return reply
        .code(204)
        .headers({
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
        })
        .send();
    });
  }
};
