/**
 * Bearer-token authentication: JWTs verified with a JWKS, a configured public key, or the local key, carrying
 * a `tenant` claim and scopes (`scope` string or `scp` array). A `X-StellaOps-Tenant` header, when sent, must
 * equal the token's tenant. Capability plugins register {@link bearerAuth} once for all their routes.
 */
import { createPublicKey } from 'node:crypto';
import {
  createRemoteJWKSet,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type KeyObject,
  type CryptoKey,
} from 'jose';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../errors.js';

/** Header that names the tenant of a request. */
export const TENANT_HEADER = 'x-stellaops-tenant';

/** The authenticated caller. */
export interface Principal {
  subject: string;
  tenantId: string;
  scopes: ReadonlySet<string>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Scopes this route requires instead of its capability's; `false`: the route authenticates by itself. */
    scopes?: readonly string[] | false;
  }
}

/** Verifies a bearer token and returns its principal. */
export type TokenVerifier = (token: string) => Promise<Principal>;

/** Where verification keys come from. */
export type VerificationKey = { jwksUrl: string } | { publicKeyPem: string } | { key: CryptoKey | KeyObject };

const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Default of the longest lifetime a token may have (`AUTH_JWT_MAX_LIFETIME_SECONDS`): 24 hours. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

/** Options of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  /**
   * The longest lifetime a token may have, `exp - iat` (`exp - now` without `iat`), in seconds; 0: no limit (a token
   * still needs an `exp`). Default {@link DEFAULT_MAX_TOKEN_LIFETIME_SECONDS}.
   */
  maxLifetimeSeconds?: number;
}

/**
 * Why `payload` (already verified, so `exp` is a number) lives longer than `maxLifetimeSeconds` allows, or undefined.
 * `nowSeconds` stands in for a missing `iat`.
 */
function lifetimeProblem(payload: JWTPayload, maxLifetimeSeconds: number, nowSeconds: number): string | undefined {
  if (maxLifetimeSeconds === 0) return undefined;
  const lifetime = payload.exp! - (payload.iat ?? nowSeconds);
  return lifetime > maxLifetimeSeconds
    ? `Token lifetime of ${lifetime} s exceeds the maximum of ${maxLifetimeSeconds} s`
    : undefined;
}

/**
 * Creates a verifier for tokens of `issuer`/`audience` signed with `source`. A token must carry `exp`, and live no
 * longer than `maxLifetimeSeconds`.
 */
export function createTokenVerifier(source: VerificationKey, options: TokenVerifierOptions): TokenVerifier {
  const maxLifetimeSeconds = options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  const verifyOptions = { issuer: options.issuer, audience: options.audience, requiredClaims: ['exp'] };
  let key: JWTVerifyGetKey | CryptoKey | KeyObject;
  if ('jwksUrl' in source) key = createRemoteJWKSet(new URL(source.jwksUrl));
  else if ('publicKeyPem' in source) key = createPublicKey(source.publicKeyPem);
  else key = source.key;

  // Services such as the Task Runner reuse one token for many requests: remember verified tokens until they
  // expire (bounded), so signature verification is paid once per token, not per request.
  const verified = new Map<string, { principal: Principal; expiresAtMs: number }>();
  const MAX_CACHED = 1000;

  const verifyOnce = async (token: string): Promise<{ principal: Principal; expiresAtMs: number }> => {
    let payload: JWTPayload;
    try {
      ({ payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, verifyOptions)
          : await jwtVerify(token, key, verifyOptions));
    } catch (error) {
      throw unauthorized(`Invalid bearer token: ${(error as Error).message}`);
    }
    const tooLong = lifetimeProblem(payload, maxLifetimeSeconds, Math.floor(Date.now() / 1000));
    if (tooLong) throw unauthorized(`Invalid bearer token: ${tooLong}`);
    const tenant = payload.tenant;
    if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant))
      throw unauthorized('Token has no valid tenant claim');
    const scopes = new Set<string>();
    if (typeof payload.scope === 'string')
      payload.scope
        .split(' ')
        .filter(Boolean)
        .forEach((s) => scopes.add(s));
    if (Array.isArray(payload.scp))
      payload.scp.filter((s): s is string => typeof s === 'string').forEach((s) => scopes.add(s));
    const principal = { subject: payload.sub ?? 'unknown', tenantId: tenant, scopes };
    return { principal, expiresAtMs: payload.exp! * 1000 };
  };

  return async (token) => {
    const cached = verified.get(token);
    if (cached && cached.expiresAtMs > Date.now()) return cached.principal;
    const result = await verifyOnce(token);
    if (verified.size >= MAX_CACHED) verified.delete(verified.keys().next().value!);
    verified.set(token, result);
    return result.principal;
  };
}

/**
 * Authenticates `request` with its bearer token and requires at least one of `anyOfScopes` (none: any token).
 * 401 without a valid token; 403 for a missing scope or a tenant header that differs from the token's tenant.
 * Sets and returns `request.principal`.
 */
export async function authenticate(
  verify: TokenVerifier,
  request: FastifyRequest,
  anyOfScopes: readonly string[],
): Promise<Principal> {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) throw unauthorized('Missing bearer token (Authorization: Bearer <token>)');
  const principal = await verify(match[1]!);
  const tenantHeader = request.headers[TENANT_HEADER];
  if (tenantHeader !== undefined && tenantHeader !== principal.tenantId) {
    throw forbidden(`Tenant header '${String(tenantHeader)}' does not match the token's tenant`);
  }
  if (anyOfScopes.length > 0 && !anyOfScopes.some((scope) => principal.scopes.has(scope))) {
    throw forbidden(`Missing scope: one of ${anyOfScopes.join(', ')} is required`);
  }
  request.principal = principal;
  return principal;
}

/** Options of {@link bearerAuth}. */
export interface BearerAuthOptions {
  verify: TokenVerifier;
  /** Scopes of the capability's routes, any one of which suffices; a route may name others in `config.scopes`. */
  scopes: readonly string[];
  /**
   * When the check runs. `onRequest` (default) is before body parsing and validation, so callers without the scope
   * learn nothing about the input; `preHandler` is after validation, so invalid input answers 400 first.
   */
  hook?: 'onRequest' | 'preHandler';
}

/**
 * Bearer authentication for every route of the capability plugin that registers it (one hook, not one per route).
 * A route may require other scopes with `config: { scopes: [...] }`, or opt out with `config: { scopes: false }`
 * when it authenticates by itself (e.g. with a signed link instead of a token).
 */
export const bearerAuth: FastifyPluginAsync<BearerAuthOptions> = Object.assign(
  async (app: FastifyInstance, options: BearerAuthOptions) => {
    app.addHook(options.hook ?? 'onRequest', async (request: FastifyRequest) => {
      const scopes = request.routeOptions.config.scopes ?? options.scopes;
      if (scopes === false) return;
      await authenticate(options.verify, request, scopes);
    });
  },
  // Not encapsulated: the hook belongs to the registering capability's scope (what fastify-plugin does).
  { [Symbol.for('skip-override')]: true },
);

/** The principal of an authenticated request (routes behind {@link bearerAuth} always have one). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized('Not authenticated');
  return request.principal;
}
