/**
 * Pack approvals: signed ingestion of Task Runner events, reading an approval, and the human decision (ack).
 *
 * Ingestion order: IP allowlist → bearer token (Packs.Approve or Notifier.Events:Write) → per-tenant rate limit →
 * HMAC signature (Standard Webhooks, several secrets, ±5 min, a signature id is single-use) → schema validation →
 * tenant check → duplicate check → signalWithStart. Nothing here waits for a worker.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { verifyApprovalLink } from '../../notify/approval-links.js';
import { Scope } from '../../core/scopes.js';
import { getApprovalView, recordIngestedEvent, claimSignatureAndCheckEvent } from '../../db/queries/pack-approvals.js';
import { withTraceparent } from '../../core/tracing.js';
import { packApprovalWorkflowId, type PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef, forbidden, notFound, unauthorized } from '../errors.js';
import { authenticate, bearerAuth, principalOf } from '../plugins/auth.js';
import { signedEvents } from '../plugins/signed-events.js';
import {
  AckBody,
  AckResponse,
  ApprovalParams,
  IngestResponse,
  PackApprovalEventBody,
  PackApprovalRequested,
  PackApprovalUpdated,
} from '../schemas/pack-approvals.js';
import type { PackApprovalService } from '../services/pack-approvals.js';

const APPROVER_SCOPES = [Scope.PacksApprove];

export const packApprovalRoutes: FastifyPluginAsyncTypebox<{
  deps: AppDeps;
  packApprovals: PackApprovalService;
}> = async (app, { deps, packApprovals }) => {
  const { pool, config } = deps;
  const settings = config.packApprovals;

  app.addSchema(PackApprovalRequested);
  app.addSchema(PackApprovalUpdated);
  // Registered before the bearer check so that a refused address is refused before its token is looked at.
  await app.register(signedEvents, {
    secrets: deps.packApprovalSecrets.eventSecrets,
    ipAllowlist: settings.ipAllowlist,
  });
  // onRequest: the rate limit (preParsing) keys on the authenticated tenant.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: APPROVER_SCOPES, hook: 'onRequest' });
  await app.register(rateLimit, { global: false, hook: 'preParsing' });

  app.post(
    '/notifications/pack-approvals',
    {
      config: {
        signedEvents: true,
        scopes: [Scope.PacksApprove, Scope.NotifierEventsWrite],
        rateLimit: {
          max: settings.rateLimitPerMinute,
          timeWindow: '1 minute',
          keyGenerator: (request) => `tenant:${request.principal?.tenantId ?? request.ip}`,
        },
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
      const event: PackApprovalEvent = request.body;
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
      // The event's own trace context, when the Task Runner sent one, is the parent of the signal (and the workflow).
      await withTraceparent(event.traceparent, `ingest ${event.type}`, () => packApprovals.signalEvent(event));
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
      // The credential may be the link token in the body, so this route authenticates in its handler.
      config: { scopes: false },
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
    async (request) => {
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
        const principal = await authenticate(deps.verifyToken, request, APPROVER_SCOPES);
        tenantId = principal.tenantId;
        decidedBy = principal.subject;
        grants = [...principal.scopes];
      }
      const { result, resumeToken } = await packApprovals.decide(
        { tenantId, runId, approvalId },
        {
          decision: request.body.decision,
          ...(request.body.comment ? { comment: request.body.comment } : {}),
          decidedBy,
          grants,
        },
      );
      const { repeated: _repeated, ...answer } = result;
      return { runId, approvalId, ...answer, resumeToken };
    },
  );
};
