/**
 * Pack approvals: signed ingestion of Task Runner events, reading an approval, and the human decision (ack).
 *
 * Ingestion order: IP allowlist → bearer token (Packs.Approve or Notifier.Events:Write) → per-tenant rate limit →
 * HMAC signature (Standard Webhooks, several secrets, ±5 min, a signature id is single-use) → schema validation →
 * tenant check → duplicate check → signalWithStart. Nothing here waits for a worker.
 */
import { BlockList, isIPv6 } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Webhook } from 'standardwebhooks';
import { signResumeToken, verifyApprovalLink } from '../../notify/approval-links.js';
import { Scope } from '../../core/scopes.js';
import { getApprovalView, recordIngestedEvent, claimSignatureAndCheckEvent } from '../../db/queries/pack-approvals.js';
import { packApprovalWorkflowId, type PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import type { AppDeps } from '../app.js';
import { commonErrorResponses, errorRef, forbidden, HttpError, notFound, unauthorized } from '../errors.js';
import { registerPackApprovalMetrics } from '../metrics.js';
import { principalOf, requireScopes } from '../plugins/auth.js';
import {
  AckBody,
  AckResponse,
  ApprovalParams,
  IngestResponse,
  PackApprovalEventBody,
  PackApprovalRequested,
  PackApprovalUpdated,
} from '../schemas/pack-approvals.js';
import { ackApproval, signalApprovalEvent } from '../temporal/pack-approvals.js';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: string;
  }
}

/** Builds the allowlist check; an empty list allows every address. */
function allowlist(cidrs: string[]): (ip: string) => boolean {
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

export const packApprovalRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { pool, temporal, config } = deps;
  const settings = config.packApprovals;
  const verifiers = deps.packApprovalSecrets.eventSecrets.map((secret) => new Webhook(secret));
  const allowed = allowlist(settings.ipAllowlist);
  const ingestAuth = requireScopes(deps.verifyToken, [Scope.PacksApprove, Scope.NotifierEventsWrite]);
  const approverAuth = requireScopes(deps.verifyToken, [Scope.PacksApprove]);
  const { ackLatency } = registerPackApprovalMetrics(deps.metrics, pool, deps.logger);

  app.addSchema(PackApprovalRequested);
  app.addSchema(PackApprovalUpdated);
  // The signature covers the exact bytes received, so this scope keeps the raw body next to the parsed one.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch {
      done(new HttpError(400, 'InvalidJson', 'The body is not valid JSON'), undefined);
    }
  });
  await app.register(rateLimit, { global: false, hook: 'preParsing' });

  app.post(
    '/notifications/pack-approvals',
    {
      onRequest: [
        async (request) => {
          if (!allowed(request.ip)) throw forbidden(`Address ${request.ip} is not allowed to post events`);
        },
        ingestAuth,
      ],
      config: {
        rateLimit: {
          max: settings.rateLimitPerMinute,
          timeWindow: '1 minute',
          keyGenerator: (request) => `tenant:${request.principal?.tenantId ?? request.ip}`,
        },
      },
      preValidation: async (request) => {
        const headers = {
          'webhook-id': String(request.headers['webhook-id'] ?? ''),
          'webhook-timestamp': String(request.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(request.headers['webhook-signature'] ?? ''),
        };
        if (!headers['webhook-id'] || !headers['webhook-timestamp'] || !headers['webhook-signature']) {
          throw unauthorized('Missing signature headers (webhook-id, webhook-timestamp, webhook-signature)');
        }
        let failure = 'Invalid signature';
        const valid = verifiers.some((verifier) => {
          try {
            verifier.verify(request.rawBody ?? '', headers);
            return true;
          } catch (error) {
            if (/timestamp/i.test((error as Error).message))
              failure = 'Signature timestamp outside the ±5 minute window';
            return false;
          }
        });
        if (!valid) throw unauthorized(failure);
      },
      schema: {
        tags: ['pack-approvals'],
        summary: 'Ingest a PackApprovalRequested or PackApprovalUpdated event from the Task Runner',
        description:
          '202 accepted; 200 duplicate (same eventId); 400 invalid (do not retry); 401/403; 409 approval already ' +
          'finished; 429 and 503 with Retry-After (retry with backoff, re-signing each attempt). See docs/contracts/.',
        security: [{ bearer: [] }],
        body: PackApprovalEventBody,
        response: { 200: IngestResponse, 202: IngestResponse, 409: errorRef, 429: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const event = request.body as PackApprovalEvent;
      if (event.tenantId !== principalOf(request).tenantId)
        throw forbidden('The event’s tenant is not the token’s tenant');
      const workflowId = packApprovalWorkflowId(event.tenantId, event.runId, event.approvalId);
      const { freshSignature, duplicate } = await claimSignatureAndCheckEvent(
        pool,
        String(request.headers['webhook-id']),
        event.tenantId,
        event.eventId,
      );
      if (!freshSignature) throw unauthorized('Signature id already used (replay); sign each delivery attempt anew');
      if (duplicate) {
        return reply.code(200).send({ status: 'duplicate', eventId: event.eventId, workflowId });
      }
      // Signal first, then remember the id: a crash in between only means the retry is signalled again, which the
      // workflow deduplicates by eventId. Nothing accepted is lost.
      await signalApprovalEvent(temporal, event, {
        reminderOffsetsSeconds: settings.reminderOffsetsSeconds,
        defaultTtlSeconds: settings.defaultTtlSeconds,
        taskQueuePrefix: deps.taskQueuePrefix ?? '',
      });
      const first = await recordIngestedEvent(pool, event.tenantId, event.eventId, workflowId);
      request.log.info(
        {
          tenantId: event.tenantId,
          runId: event.runId,
          approvalId: event.approvalId,
          correlationId: event.correlationId,
          eventId: event.eventId,
        },
        'pack approval event accepted',
      );
      return reply
        .code(first ? 202 : 200)
        .send({ status: first ? 'accepted' : 'duplicate', eventId: event.eventId, workflowId });
    },
  );

  app.get(
    '/notifications/pack-approvals/:runId/:approvalId',
    {
      preHandler: approverAuth,
      schema: {
        tags: ['pack-approvals'],
        summary: 'Read an approval of the caller’s tenant',
        security: [{ bearer: [] }],
        params: ApprovalParams,
        response: { 200: Type.Object({}, { additionalProperties: true }), 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const view = await getApprovalView(
        pool,
        principalOf(request).tenantId,
        request.params.runId,
        request.params.approvalId,
      );
      if (!view) throw notFound(`Approval ${request.params.runId}/${request.params.approvalId} not found`);
      return view;
    },
  );

  app.post(
    '/notifications/pack-approvals/:runId/:approvalId/ack',
    {
      schema: {
        tags: ['pack-approvals'],
        summary: 'Approve or reject (bearer token with Packs.Approve, or the signed link token in the body)',
        description:
          '200 with the decision, resume status and a resume token for CLI use. The same decision again answers the ' +
          'original result; a different one 409. 403 when the approver lacks the required grants.',
        security: [{ bearer: [] }],
        params: ApprovalParams,
        body: AckBody,
        response: { 200: AckResponse, 404: errorRef, 409: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { runId, approvalId } = request.params;
      let tenantId: string;
      let decidedBy: string;
      let grants: string[];
      if (request.body.token) {
        let claims;
        try {
          claims = await verifyApprovalLink(deps.packApprovalSecrets.linkSecret, request.body.token);
        } catch {
          throw unauthorized('Invalid or expired approval link');
        }
        if (claims.runId !== runId || claims.approvalId !== approvalId)
          throw forbidden('The link is for another approval');
        ({ tenantId, grants } = claims);
        decidedBy = claims.recipient;
      } else {
        await approverAuth.call(app, request, reply);
        const principal = principalOf(request);
        tenantId = principal.tenantId;
        decidedBy = principal.subject;
        grants = [...principal.scopes];
      }
      const result = await ackApproval(
        temporal,
        { tenantId, runId, approvalId },
        {
          decision: request.body.decision,
          ...(request.body.comment ? { comment: request.body.comment } : {}),
          decidedBy,
          grants,
        },
      );
      const view = result.repeated
        ? undefined
        : await getApprovalView(pool, tenantId, runId, approvalId).catch(() => undefined);
      if (view) {
        ackLatency.observe(Math.max(0, (Date.parse(result.decidedAt) - Date.parse(view.requestedAt)) / 1000));
      }
      const resumeToken = await signResumeToken(deps.packApprovalSecrets.linkSecret, {
        tenantId,
        runId,
        approvalId,
        decision: result.decision,
        decidedBy: result.decidedBy,
      });
      const { repeated: _repeated, ...answer } = result;
      return { runId, approvalId, ...answer, resumeToken };
    },
  );
};
