/**
 * The effect providers of the two sample sagas, as the effect activities call them over HTTP (paths, bodies and
 * answers in this folder's README, which the bundled effects manifest follows):
 *
 * - the impact index (`impact-index.resolve`), served from the bundled sample SBOMs;
 * - the offline mirror (`mirror.*`): storage quota, bundle export, signing and publication, with the compensations
 *   (release, delete, revoke) that succeed when there is nothing to undo.
 *
 * Every call needs an `Idempotency-Key`: a repeat answers the first answer again and changes nothing, and every
 * arrival is counted per key (`GET /providers/calls`), and every time a provider acted on one
 * (`GET /providers/applied`: 1 per key, or a call was duplicated). With `faults`, `PUT /control/faults` makes an effect refuse
 * (422), be unavailable (503, Retry-After: 1) or hang, for tests and demos.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorRef, HttpError } from '../api/errors.js';
import { RESOLVE_IMPACT_EFFECT } from '../workflows/advisory-impact-rescan/definitions.js';
import { MirrorEffect } from '../workflows/mirror-bundle-export/definitions.js';
import type { ImpactIndex } from './impact-index.js';

/** Every effect the reference services provide, with its path (all `POST`). */
export const PROVIDER_PATHS = {
  [RESOLVE_IMPACT_EFFECT]: '/providers/impact-index/resolve',
  [MirrorEffect.ReserveQuota]: '/providers/mirror/quota/reserve',
  [MirrorEffect.ReleaseQuota]: '/providers/mirror/quota/release',
  [MirrorEffect.ExportBundle]: '/providers/mirror/exports',
  [MirrorEffect.DeleteExport]: '/providers/mirror/exports/delete',
  [MirrorEffect.SignBundle]: '/providers/mirror/signatures',
  [MirrorEffect.RevokeSignature]: '/providers/mirror/signatures/revoke',
  [MirrorEffect.PublishBundle]: '/providers/mirror/publications',
} as const;
/** Name of an effect the reference services provide. */
export type ProvidedEffect = keyof typeof PROVIDER_PATHS;
const PROVIDED_EFFECTS = Object.keys(PROVIDER_PATHS) as ProvidedEffect[];

/** Storage quota of each tenant on the reference mirror. */
export const DEFAULT_QUOTA_BYTES = 10 * 1024 ** 3;
/** Size reserved for a bundle when the request names none. */
export const DEFAULT_BUNDLE_BYTES = 512 * 1024 ** 2;
/** Mirror a bundle is published to when the request names none. */
export const DEFAULT_MIRROR = 'offline-mirror';
/** Key id the reference mirror signs with. */
export const SIGNING_KEY_ID = 'stellaops-mirror-signing-reference';

/** How an injected fault answers: 422, 503 with `Retry-After: 1`, or not at all. */
export const FAULT_MODES = ['reject', 'unavailable', 'hang'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** An injected fault: calls of `effect` (with `key`, when given) fail as `mode`, `times` times (default: always). */
export const Fault = Type.Object(
  {
    effect: Type.Union(
      PROVIDED_EFFECTS.map((e) => Type.Literal(e)),
      { description: 'Effect name' },
    ),
    key: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'Only calls with this Idempotency-Key' }),
    ),
    mode: Type.Union(FAULT_MODES.map((m) => Type.Literal(m))),
    times: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Calls it affects; default all' }),
    ),
  },
  { additionalProperties: false },
);
export type Fault = Static<typeof Fault>;

const Faults = Type.Object({
  faults: Type.Array(
    Type.Object({
      ...Fault.properties,
      remaining: Type.Union([Type.Integer(), Type.Null()], { description: 'Calls it still affects; null: all' }),
    }),
  ),
});

const ProviderHeaders = Type.Object({
  'idempotency-key': Type.String({ minLength: 1, maxLength: 512 }),
  'x-tenant-id': Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
});

const BundleId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$', description: 'Bundle id' });
const AdvisoryId = Type.String({ minLength: 1, maxLength: 128 });

const ResolveBody = Type.Object({
  advisoryId: AdvisoryId,
  packages: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { maxItems: 1000 })),
});
const ResolveAnswer = Type.Object({
  advisoryId: Type.String(),
  images: Type.Array(Type.Object({ imageId: Type.String(), digest: Type.String(), sbomId: Type.String() })),
});

const ReserveBody = Type.Object({
  bundleId: BundleId,
  sizeBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
});
const ReserveAnswer = Type.Object({
  bundleId: Type.String(),
  reservationId: Type.String(),
  sizeBytes: Type.Integer(),
  remainingBytes: Type.Integer(),
});
const BundleBody = Type.Object({ bundleId: BundleId });
const ReleaseAnswer = Type.Object({
  bundleId: Type.String(),
  reservationId: Type.Union([Type.String(), Type.Null()]),
  released: Type.Boolean(),
});
const ExportBody = Type.Object({ bundleId: BundleId, reservationId: Type.Optional(Type.String({ minLength: 1 })) });
const ExportAnswer = Type.Object({
  bundleId: Type.String(),
  exportId: Type.String(),
  digest: Type.String(),
  sizeBytes: Type.Integer(),
  location: Type.String(),
});
const DeleteAnswer = Type.Object({
  bundleId: Type.String(),
  exportId: Type.Union([Type.String(), Type.Null()]),
  deleted: Type.Boolean(),
});
const SignBody = Type.Object({ bundleId: BundleId, digest: Type.Optional(Type.String({ minLength: 1 })) });
const SignAnswer = Type.Object({
  bundleId: Type.String(),
  signatureId: Type.String(),
  digest: Type.String(),
  keyId: Type.String(),
  algorithm: Type.String(),
});
const RevokeAnswer = Type.Object({
  bundleId: Type.String(),
  signatureId: Type.Union([Type.String(), Type.Null()]),
  revoked: Type.Boolean(),
});
const PublishBody = Type.Object({
  bundleId: BundleId,
  mirror: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' })),
});
const PublishAnswer = Type.Object({
  bundleId: Type.String(),
  publicationId: Type.String(),
  mirror: Type.String(),
  url: Type.String(),
  digest: Type.String(),
  signatureId: Type.String(),
});

const Calls = Type.Record(Type.String(), Type.Integer(), { description: 'Calls per Idempotency-Key' });

/** Options of the providers. */
export interface ProvidersOptions {
  index: ImpactIndex;
  /** Serve `/control/faults` (tests and demos). */
  faults?: boolean;
  /** Storage quota of each tenant; default {@link DEFAULT_QUOTA_BYTES}. */
  quotaBytes?: number;
}

/** Counters of the providers and the hung calls to release on close. */
export interface ProvidersHandle {
  /** Every arrival per `Idempotency-Key` (repeats and faulted calls included). */
  calls: () => Record<string, number>;
  /** Every time a provider acted on a key (its first answer, a refusal included): 1 per key, never more. */
  applied: () => Record<string, number>;
  /** Answers every hanging call (503), so that the server can close. */
  releaseHanging(): void;
}

interface MirrorState {
  reservations: Map<string, { reservationId: string; sizeBytes: number }>;
  exports: Map<string, { exportId: string; digest: string; sizeBytes: number; location: string }>;
  signatures: Map<string, { signatureId: string; digest: string }>;
  publications: Map<string, Static<typeof PublishAnswer>>;
}

/** A provider's final refusal: answered 422, and remembered for repeats like any answer. */
const refuse = (code: string, message: string) => new HttpError(422, code, message);

const shortId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Registers the provider routes (and, with `faults`, the fault controls) on `app`. */
export function registerProviders(app: FastifyInstance, options: ProvidersOptions): ProvidersHandle {
  const { index } = options;
  const quotaBytes = options.quotaBytes ?? DEFAULT_QUOTA_BYTES;
  const calls = new Map<string, number>();
  const applied = new Map<string, number>();
  const answers = new Map<string, { fingerprint: string; status: number; body: unknown }>();
  const mirrors = new Map<string, MirrorState>();
  const faults: (Fault & { remaining: number | null })[] = [];
  const hanging = new Set<() => void>();

  const mirrorOf = (tenantId: string): MirrorState => {
    let state = mirrors.get(tenantId);
    if (!state) {
      state = { reservations: new Map(), exports: new Map(), signatures: new Map(), publications: new Map() };
      mirrors.set(tenantId, state);
    }
    return state;
  };

  /** The fault that applies to this call, if any (and counts it down). */
  const faultFor = (effect: ProvidedEffect, key: string): FaultMode | undefined => {
    const fault = faults.find((f) => f.effect === effect && (f.key === undefined || f.key === key));
    if (!fault) return undefined;
    if (fault.remaining !== null && --fault.remaining === 0) faults.splice(faults.indexOf(fault), 1);
    return fault.mode;
  };

  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  /**
   * One provider route: count the call, apply an injected fault, answer a repeated key with its first answer, else
   * run `handle` for the tenant and remember its answer (a 422 refusal included).
   */
  function provider<B extends TSchema, A extends TSchema>(
    effect: ProvidedEffect,
    schemas: { body: B; answer: A },
    handle: (tenantId: string, body: Static<B>) => Static<A>,
  ): void {
    typed.post(
      PROVIDER_PATHS[effect],
      {
        schema: {
          body: schemas.body,
          headers: ProviderHeaders,
          response: { 200: schemas.answer, 400: errorRef, 422: errorRef, 503: errorRef },
        },
        // Before validation, so that every arrival is counted, even one the provider refuses.
        preValidation: async (request: FastifyRequest) => {
          const key = request.headers['idempotency-key'];
          if (typeof key === 'string' && key !== '') calls.set(key, (calls.get(key) ?? 0) + 1);
        },
      },
      async (request, reply: FastifyReply) => {
        const key = request.headers['idempotency-key'] as string;
        const tenantId = (request.headers['x-tenant-id'] as string | undefined) ?? 'default';
        const mode = faultFor(effect, key);
        if (mode === 'reject') throw refuse('InjectedRejection', `${effect} refused the call (injected fault)`);
        if (mode === 'unavailable') {
          throw new HttpError(503, 'InjectedUnavailable', `${effect} is unavailable (injected fault)`, {
            'retry-after': '1',
          });
        }
        if (mode === 'hang') {
          await new Promise<void>((resolve) => hanging.add(resolve));
          throw new HttpError(503, 'ShuttingDown', `${effect} was hanging (injected fault) and the server stopped`);
        }

        const stored = `${tenantId}\u0000${key}`;
        const fingerprint = JSON.stringify([effect, request.body]);
        const previous = answers.get(stored);
        if (previous) {
          if (previous.fingerprint !== fingerprint) {
            throw refuse('IdempotencyKeyReused', `Idempotency-Key ${key} was already used for a different call`);
          }
          void reply.header('idempotent-replayed', 'true');
          return reply.code(previous.status).send(previous.body);
        }
        applied.set(key, (applied.get(key) ?? 0) + 1);
        try {
          const body = handle(tenantId, request.body as Static<B>);
          answers.set(stored, { fingerprint, status: 200, body });
          request.log.info({ tenantId, effect, idempotencyKey: key }, `${effect} done`);
          return reply.code(200).send(body);
        } catch (error) {
          if (error instanceof HttpError && error.statusCode === 422) {
            const body = { error: error.code, message: error.message };
            answers.set(stored, { fingerprint, status: 422, body });
            request.log.info({ tenantId, effect, idempotencyKey: key, error: error.code }, `${effect} refused`);
            return reply.code(422).send(body);
          }
          throw error;
        }
      },
    );
  }

  provider(RESOLVE_IMPACT_EFFECT, { body: ResolveBody, answer: ResolveAnswer }, (_tenant, body) => ({
    advisoryId: body.advisoryId,
    images: index.resolve(body.advisoryId, body.packages),
  }));

  provider(MirrorEffect.ReserveQuota, { body: ReserveBody, answer: ReserveAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const reservedBytes = () => [...mirror.reservations.values()].reduce((n, r) => n + r.sizeBytes, 0);
    let reservation = mirror.reservations.get(body.bundleId);
    if (!reservation) {
      const sizeBytes = body.sizeBytes ?? DEFAULT_BUNDLE_BYTES;
      if (reservedBytes() + sizeBytes > quotaBytes) {
        throw refuse(
          'QuotaExceeded',
          `Reserving ${sizeBytes} bytes for ${body.bundleId} exceeds the quota (${quotaBytes - reservedBytes()} of ${quotaBytes} bytes left)`,
        );
      }
      reservation = { reservationId: shortId('rsv'), sizeBytes };
      mirror.reservations.set(body.bundleId, reservation);
    }
    return { bundleId: body.bundleId, ...reservation, remainingBytes: quotaBytes - reservedBytes() };
  });

  provider(MirrorEffect.ReleaseQuota, { body: BundleBody, answer: ReleaseAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const reservation = mirror.reservations.get(body.bundleId);
    mirror.reservations.delete(body.bundleId);
    return { bundleId: body.bundleId, reservationId: reservation?.reservationId ?? null, released: !!reservation };
  });

  provider(MirrorEffect.ExportBundle, { body: ExportBody, answer: ExportAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const reservation = mirror.reservations.get(body.bundleId);
    if (!reservation || (body.reservationId !== undefined && body.reservationId !== reservation.reservationId)) {
      throw refuse(
        'QuotaNotReserved',
        `No quota is reserved for bundle ${body.bundleId}${body.reservationId ? ` under ${body.reservationId}` : ''}`,
      );
    }
    let exported = mirror.exports.get(body.bundleId);
    if (!exported) {
      const exportId = shortId('exp');
      exported = {
        exportId,
        // The content of a reference bundle is its identity: the same bundle always has the same digest.
        digest: `sha256:${createHash('sha256').update(`mirror-bundle:${tenantId}:${body.bundleId}`).digest('hex')}`,
        sizeBytes: reservation.sizeBytes,
        location: `file:///var/lib/stellaops/mirror/exports/${tenantId}/${body.bundleId}.tar.zst`,
      };
      mirror.exports.set(body.bundleId, exported);
    }
    return { bundleId: body.bundleId, ...exported };
  });

  provider(MirrorEffect.DeleteExport, { body: BundleBody, answer: DeleteAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const exported = mirror.exports.get(body.bundleId);
    mirror.exports.delete(body.bundleId);
    return { bundleId: body.bundleId, exportId: exported?.exportId ?? null, deleted: !!exported };
  });

  provider(MirrorEffect.SignBundle, { body: SignBody, answer: SignAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const exported = mirror.exports.get(body.bundleId);
    if (!exported) throw refuse('ExportMissing', `Bundle ${body.bundleId} has not been exported`);
    if (body.digest !== undefined && body.digest !== exported.digest) {
      throw refuse('DigestMismatch', `Bundle ${body.bundleId} has digest ${exported.digest}, not ${body.digest}`);
    }
    let signature = mirror.signatures.get(body.bundleId);
    if (!signature) {
      signature = { signatureId: shortId('sig'), digest: exported.digest };
      mirror.signatures.set(body.bundleId, signature);
    }
    return { bundleId: body.bundleId, ...signature, keyId: SIGNING_KEY_ID, algorithm: 'ecdsa-p256-sha256' };
  });

  provider(MirrorEffect.RevokeSignature, { body: BundleBody, answer: RevokeAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const signature = mirror.signatures.get(body.bundleId);
    mirror.signatures.delete(body.bundleId);
    return { bundleId: body.bundleId, signatureId: signature?.signatureId ?? null, revoked: !!signature };
  });

  provider(MirrorEffect.PublishBundle, { body: PublishBody, answer: PublishAnswer }, (tenantId, body) => {
    const mirror = mirrorOf(tenantId);
    const signature = mirror.signatures.get(body.bundleId);
    if (!signature)
      throw refuse('SignatureMissing', `Bundle ${body.bundleId} is not signed (or its signature was revoked)`);
    if (!mirror.exports.has(body.bundleId))
      throw refuse('ExportMissing', `Bundle ${body.bundleId} has not been exported`);
    let publication = mirror.publications.get(body.bundleId);
    if (!publication) {
      const name = body.mirror ?? DEFAULT_MIRROR;
      publication = {
        bundleId: body.bundleId,
        publicationId: shortId('pub'),
        mirror: name,
        url: `https://mirror.stellaops.local/${name}/${tenantId}/${body.bundleId}.tar.zst`,
        digest: signature.digest,
        signatureId: signature.signatureId,
      };
      mirror.publications.set(body.bundleId, publication);
    }
    return publication;
  });

  typed.get('/providers/calls', { schema: { response: { 200: Calls } } }, async () => Object.fromEntries(calls));
  typed.get('/providers/applied', { schema: { response: { 200: Calls } } }, async () => Object.fromEntries(applied));

  if (options.faults) {
    const list = () => ({ faults: faults.map((f) => ({ ...f })) });
    typed.get('/control/faults', { schema: { response: { 200: Faults } } }, async () => list());
    // One fault per (effect, key): setting it again replaces it.
    typed.put(
      '/control/faults',
      { schema: { body: Fault, response: { 200: Faults, 400: errorRef } } },
      async (request) => {
        const fault = request.body;
        const existing = faults.findIndex((f) => f.effect === fault.effect && f.key === fault.key);
        if (existing >= 0) faults.splice(existing, 1);
        faults.push({ ...fault, remaining: fault.times ?? null });
        request.log.info({ fault }, 'fault injected');
        return list();
      },
    );
    typed.delete('/control/faults', { schema: { response: { 200: Faults } } }, async () => {
      faults.length = 0;
      return list();
    });
  }

  return {
    calls: () => Object.fromEntries(calls),
    applied: () => Object.fromEntries(applied),
    releaseHanging() {
      for (const resolve of hanging) resolve();
      hanging.clear();
    },
  };
}
