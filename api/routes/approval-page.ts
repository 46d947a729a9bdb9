/**
 * The approval page at the links that mails carry (`{publicBaseUrl}/approvals/{token}`): the signed link token is
 * the credential. GET shows the approval; POST (an HTML form, no JavaScript) approves or rejects it through the
 * workflow's Update, exactly like the JSON ack route. Every answer in this scope is an HTML page — errors too.
 *
 * The route is a wildcard (`/approvals/*`) because a link token is longer than the router's 100-character limit
 * for named parameters.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyApprovalLink, type ApprovalLinkClaims } from '../../notify/approval-links.js';
import { getApprovalView } from '../../db/queries/pack-approvals.js';
import { DECISIONS } from '../../workflows/pack-approval/definitions.js';
import type { AppDeps } from '../deps.js';
import { HttpError, notFound, toErrorDocument, VALIDATION_FAILED, type ErrorDocument } from '../errors.js';
import type { PackApprovalService } from '../services/pack-approvals.js';
import { renderApprovalPage, renderErrorPage, renderResultPage } from '../views/approval-page.js';

/** Headers of every page: never cached or framed, no referrer (the URL is a credential), no scripts. */
const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
} as const;

const HTML = 'text/html; charset=utf-8';
const MAX_COMMENT = 2000;

const Html = (description: string) => Type.String({ description: `text/html: ${description}` });
const TokenParams = Type.Object({ '*': Type.String({ maxLength: 4000, description: 'Signed approval-link token' }) });
const DecisionForm = Type.Object({
  decision: Type.Union(
    DECISIONS.map((d) => Type.Literal(d)),
    { description: 'The button pressed' },
  ),
  comment: Type.Optional(Type.String({ maxLength: MAX_COMMENT })),
});
const errorPages = {
  400: Html('invalid form'),
  401: Html('invalid or expired link'),
  404: Html('unknown approval, or not available yet'),
  500: Html('internal error (no details)'),
  503: Html('Temporal or Postgres unavailable; retry later'),
} as const;

const TITLES: Record<number, string> = {
  400: 'Invalid request',
  401: 'Link invalid or expired',
  403: 'Not allowed',
  404: 'Approval not found',
  409: 'Already decided',
  413: 'Request too large',
  415: 'Unsupported form',
  503: 'Temporarily unavailable',
};

function page(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).type(HTML).send(html);
}

/** The page's wording where the JSON document's would not suit a person reading it. */
function pageMessage(doc: ErrorDocument, requestId: string): string {
  if (doc.body.error === VALIDATION_FAILED && doc.body.errors) return 'The request is invalid.';
  if (doc.status === 503) return 'The service is temporarily unavailable. Retry in a moment.';
  if (doc.status >= 500) return `Internal error; quote request id ${requestId} when reporting it.`;
  return doc.body.message;
}

/** Renders the API's error mapping as a page: same status and headers, a title and a message for people. */
function errorPage(reply: FastifyReply, doc: ErrorDocument, requestId: string): FastifyReply {
  const title = TITLES[doc.status] ?? 'Something went wrong';
  reply.headers(doc.headers);
  return page(reply, doc.status, renderErrorPage(doc.status, title, pageMessage(doc, requestId)));
}

/** Fields of a urlencoded form, first value per name. */
function parseForm(body: string): Record<string, string> {
  const form: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of new URLSearchParams(body)) if (!(name in form)) form[name] = value;
  return form;
}

/** Why a submitted form is not a decision, if it is not. */
function formProblem(body: unknown): string | undefined {
  const form = (body ?? {}) as { decision?: unknown; comment?: unknown };
  if (typeof form.decision !== 'string' || !(DECISIONS as readonly string[]).includes(form.decision)) {
    return 'Choose Approve or Reject.';
  }
  if (form.comment !== undefined && (typeof form.comment !== 'string' || form.comment.length > MAX_COMMENT)) {
    return `The comment is limited to ${MAX_COMMENT} characters.`;
  }
  return undefined;
}

export const approvalPageRoutes: FastifyPluginAsyncTypebox<{
  deps: AppDeps;
  packApprovals: PackApprovalService;
}> = async (app, { deps, packApprovals }) => {
  const { pool } = deps;
  const claimsOf = new WeakMap<FastifyRequest, ApprovalLinkClaims>();
  const tokenOf = (request: FastifyRequest) => (request.params as { '*'?: string })['*'] ?? '';

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_request, body, done) => done(null, parseForm(body as string)),
  );

  // The link is the credential: check it before anything else, on every route of this scope.
  app.addHook('onRequest', async (request) => {
    try {
      claimsOf.set(request, await verifyApprovalLink(deps.packApprovalSecrets.linkSecret, tokenOf(request)));
    } catch {
      // Not `unauthorized()`: a browser must not be asked for a bearer token.
      throw new HttpError(
        401,
        'Unauthorized',
        'This approval link is invalid or has expired. Ask for a new notification, or decide through the API.',
      );
    }
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });

  // Pages for every failure of this scope, never a JSON document or internals.
  app.setErrorHandler((error, request, reply) => errorPage(reply, toErrorDocument(error, request), request.id));

  const loadView = async (claims: ApprovalLinkClaims) => {
    const view = await getApprovalView(pool, claims.tenantId, claims.runId, claims.approvalId);
    if (!view) throw notFound(`Approval ${claims.runId}/${claims.approvalId} is not available yet; retry in a moment.`);
    return view;
  };

  app.get(
    '/approvals/*',
    {
      schema: {
        tags: ['approval-page'],
        summary: 'The approval page of an approval link (HTML)',
        description: 'Shows the approval and, while it is pending, a form to approve or reject it.',
        params: TokenParams,
        produces: ['text/html'],
        response: { 200: Html('the approval page'), ...errorPages },
      },
    },
    async (request, reply) => {
      const claims = claimsOf.get(request)!;
      const view = await loadView(claims);
      return page(reply, 200, renderApprovalPage(view, { token: tokenOf(request), recipient: claims.recipient }));
    },
  );

  app.post(
    '/approvals/*',
    {
      attachValidation: true,
      schema: {
        tags: ['approval-page'],
        summary: 'Approve or reject from the approval page (HTML form)',
        description:
          'The form of the approval page. 200 with the recorded decision (the same decision again answers the ' +
          'original one); 400 invalid form; 401 invalid link; 403 grants missing; 404 unknown; 409 decided ' +
          'differently or no longer pending; 503 retry later.',
        params: TokenParams,
        consumes: ['application/x-www-form-urlencoded'],
        produces: ['text/html'],
        body: DecisionForm,
        response: { 200: Html('the decision'), 403: Html('grants missing'), 409: Html('conflict'), ...errorPages },
      },
    },
    async (request, reply) => {
      const claims = claimsOf.get(request)!;
      const token = tokenOf(request);
      // The form's schema also refuses what cannot be stored (a NUL character in the comment): the page says so.
      const problem =
        formProblem(request.body) ??
        (request.validationError ? 'The comment contains a character that is not allowed.' : undefined);
      if (problem) {
        const view = await loadView(claims);
        return page(reply, 400, renderApprovalPage(view, { token, recipient: claims.recipient, error: problem }));
      }
      const decision = request.body.decision;
      const comment = request.body.comment?.trim();
      const { result } = await packApprovals.decide(
        { tenantId: claims.tenantId, runId: claims.runId, approvalId: claims.approvalId },
        { decision, ...(comment ? { comment } : {}), decidedBy: claims.recipient, grants: claims.grants },
      );
      request.log.info(
        { tenantId: claims.tenantId, runId: claims.runId, approvalId: claims.approvalId, decision },
        'approval decided from the approval page',
      );
      return page(reply, 200, renderResultPage(result, { token, runId: claims.runId, approvalId: claims.approvalId }));
    },
  );
};
