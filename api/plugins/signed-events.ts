/**
 * Inbound signed events (Standard Webhooks): an IP allowlist, capture of the exact bytes received, and an HMAC
 * signature over them checked against every configured secret (several during a rotation) within ±5 minutes.
 * {@link verifySignedEvent} is the check on its own, for ingress that is not Fastify (e.g. a message-bus bridge);
 * {@link signedEvents} applies it to the routes of a capability that set `config: { signedEvents: true }`.
 *
 * Single use of a signature id is not checked here: the caller claims `webhook-id` in the same database query that
 * deduplicates the event.
 */
import { BlockList, isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { badRequest, forbidden, unauthorized } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received (set for JSON bodies in a scope with {@link signedEvents}). */
    rawBody?: string;
  }
  interface FastifyContextConfig {
    /** Require an allowed address and a valid signature (see {@link signedEvents}). */
    signedEvents?: boolean;
  }
}

/** Headers of a signed event, as any transport carries them (lower-case names). */
export type SignedEventHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Outcome of {@link verifySignedEvent}: the signature id to claim once, or why the event is refused. */
export type SignedEventCheck = { ok: true; signatureId: string } | { ok: false; reason: string };

const header = (headers: SignedEventHeaders, name: string): string => {
  const value = headers[name];
  return value === undefined ? '' : String(value);
};

/**
 * Verifies the Standard Webhooks signature of `rawBody` (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
 * against each of `secrets` (`whsec_…`); valid with any one of them. Pure apart from the clock.
 */
export function verifySignedEvent(
  rawBody: string,
  headers: SignedEventHeaders,
  secrets: readonly string[],
): SignedEventCheck {
  const signed = {
    'webhook-id': header(headers, 'webhook-id'),
    'webhook-timestamp': header(headers, 'webhook-timestamp'),
    'webhook-signature': header(headers, 'webhook-signature'),
  };
  if (!signed['webhook-id'] || !signed['webhook-timestamp'] || !signed['webhook-signature']) {
    return { ok: false, reason: 'Missing signature headers (webhook-id, webhook-timestamp, webhook-signature)' };
  }
  let reason = 'Invalid signature';
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(rawBody, signed);
      return { ok: true, signatureId: signed['webhook-id'] };
    } catch (error) {
      // The library words a stale or future timestamp so; tell the sender it is the clock, not the secret.
      if (/timestamp/i.test((error as Error).message)) reason = 'Signature timestamp outside the ±5 minute window';
    }
  }
  return { ok: false, reason };
}

/** Builds the allowlist check; an empty list allows every address. */
function ipAllowlist(cidrs: readonly string[]): (ip: string) => boolean {
  if (cidrs.length === 0) return () => true;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    const type = isIPv6(address!) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(prefix), type);
  }
  return (ip) => {
    const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
  };
}

/** Options of {@link signedEvents}. */
export interface SignedEventsOptions {
  /** Signing secrets (`whsec_…`); an event signed with any one is accepted. */
  secrets: readonly string[];
  /** CIDRs or addresses allowed to post events; empty allows all. */
  ipAllowlist: readonly string[];
}

/**
 * Signed-event verification for the registering capability's scope. Its JSON parser keeps the raw body (the
 * signature covers the exact bytes) for every route of the scope; routes with `config.signedEvents` are refused
 * with 403 from an address outside the allowlist (an `onRequest` hook, so before authentication hooks registered
 * after this plugin) and with 401 without a valid signature (`preValidation`, after parsing).
 */
export const signedEvents: FastifyPluginAsync<SignedEventsOptions> = Object.assign(
  async (app: FastifyInstance, options: SignedEventsOptions) => {
    // Fail at start-up on a malformed secret, not on the first event.
    for (const secret of options.secrets) new Webhook(secret);
    const allowed = ipAllowlist(options.ipAllowlist);
    const applies = (request: FastifyRequest) => request.routeOptions.config.signedEvents === true;

    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      request.rawBody = body as string;
      try {
        done(null, body === '' ? undefined : JSON.parse(body as string));
      } catch {
        done(badRequest('The body is not valid JSON', 'InvalidJson'), undefined);
      }
    });
    app.addHook('onRequest', async (request) => {
      if (applies(request) && !allowed(request.ip)) {
        throw forbidden(`Address ${request.ip} is not allowed to post events`);
      }
    });
    app.addHook('preValidation', async (request) => {
      if (!applies(request)) return;
      const check = verifySignedEvent(request.rawBody ?? '', request.headers, options.secrets);
      if (!check.ok) throw unauthorized(check.reason);
    });
  },
  // Not encapsulated: parser and hooks belong to the registering capability's scope (what fastify-plugin does).
  { [Symbol.for('skip-override')]: true },
);
