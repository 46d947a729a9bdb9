/**
 * Per-tenant notification configuration of pack approvals (scope `Notifier.Admin`): routing rules and templates.
 * The tenant is the token's. Bodies pass the route schema, then the semantic checks of the routing and template
 * modules (`validateRule`: CEL predicate and recipient formats; `validateTemplate`: mustache safety and webhook
 * JSON); a failure answers 400 with field errors and stores nothing. Every change is audited with the token subject
 * as actor (`notify.rule.created|updated|deleted`, `notify.template.upserted|deleted`).
 *
 * 201 vs 200 of a PUT is decided by a read before the upsert: two concurrent first writes of the same id may both
 * answer 201 (the stored result is the same last-writer-wins row either way).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
// The routing and template modules are pure (no I/O): the API validates with them, it never runs activities.
import { DEFAULT_TEMPLATES } from '../../notify/default-templates.js';
import {
  RuleInput,
  validateRule,
  type FieldError as NotifyFieldError,
  type NotifyChannel,
  type NotifyRule,
  type RuleInputValue,
} from '../../notify/routing.js';
import { validateTemplate, type NotifyTemplate } from '../../notify/templates.js';
import { Scope } from '../../core/scopes.js';
import { recordAudit } from '../../db/queries/audit.js';
import {
  deleteRule,
  deleteTemplate,
  getRule,
  listRules,
  listTemplates,
  upsertRule,
  upsertTemplate,
} from '../../db/queries/notify-config.js';
import type { AppDeps } from '../deps.js';
import { commonErrorResponses, errorRef, notFound, validationFailed, type FieldError } from '../errors.js';
import { bearerAuth, principalOf } from '../plugins/auth.js';
import {
  RuleDoc,
  RuleList,
  RuleParams,
  TemplateBody,
  TemplateDoc,
  TemplateList,
  TemplateParams,
} from '../schemas/notify-config.js';

const RULES = '/notifications/rules';
const TEMPLATES = '/notifications/templates';

/**
 * The request field errors of a semantic check over `input`: pointers into `input` address the body, except those
 * under `pathFields`, which the route merged into `input` from its path parameters.
 */
function inRequest(errors: readonly NotifyFieldError[], pathFields: readonly string[] = []): FieldError[] {
  return errors.map(({ path, message }) => {
    const first = path.split('/')[1];
    return { in: first !== undefined && pathFields.includes(first) ? 'params' : 'body', pointer: path, message };
  });
}

/**
 * A recipient as the audit trail keeps it: email addresses as given, webhook URLs reduced to their origin (paths and
 * query strings of webhook URLs often embed tokens).
 */
function auditedRecipient(channel: NotifyChannel, recipient: string): string {
  if (channel !== 'webhook') return recipient;
  try {
    return new URL(recipient).origin;
  } catch {
    return '[invalid url]';
  }
}

export const notifyConfigRoutes: FastifyPluginAsyncTypebox<{ deps: AppDeps }> = async (app, { deps }) => {
  const { pool } = deps;
  // Authentication before body parsing and validation: callers without the scope learn nothing about the input.
  await app.register(bearerAuth, { verify: deps.verifyToken, scopes: [Scope.NotifierAdmin], hook: 'onRequest' });
  const security = [{ bearer: [] }];
  const tags = ['notifications'];
  const audit = (
    tenantId: string,
    eventType: string,
    actor: string,
    subject: string,
    details: Record<string, unknown>,
  ) => recordAudit(pool, { tenantId, eventType, actor, subject, details });

  app.get(
    RULES,
    {
      schema: {
        tags,
        summary: 'List the tenant’s routing rules of pack-approval notifications, in evaluation order',
        security,
        response: { 200: RuleList, ...commonErrorResponses },
      },
    },
    async (request) => ({ items: await listRules(pool, principalOf(request).tenantId) }),
  );

  app.get(
    `${RULES}/:ruleId`,
    {
      schema: {
        tags,
        summary: 'Read a routing rule',
        security,
        params: RuleParams,
        response: { 200: RuleDoc, 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request) => {
      const rule = await getRule(pool, principalOf(request).tenantId, request.params.ruleId);
      if (!rule) throw notFound(`Rule ${request.params.ruleId} not found`);
      return rule;
    },
  );

  app.put(
    `${RULES}/:ruleId`,
    {
      schema: {
        tags,
        summary: 'Create or replace a routing rule',
        description:
          '201 when created, 200 when replaced. `predicate` is a CEL expression over `event` (kind, type, runId, ' +
          'approvalId, planHash, requiredGrants, stepIds, requestedBy, locale, status, reason, gateId, ' +
          'hasPolicyGate) and `reason` that must evaluate to a bool; `matches` is not allowed. Email recipients ' +
          'are addresses, webhook recipients https URLs (http only for loopback). 400 with field errors otherwise.',
        security,
        params: RuleParams,
        body: RuleInput,
        response: { 200: RuleDoc, 201: RuleDoc, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { ruleId } = request.params;
      const errors = validateRule(request.body);
      if (errors.length > 0) throw validationFailed(inRequest(errors));
      const input = Value.Default(RuleInput, Value.Clone(request.body)) as RuleInputValue;
      const rule: NotifyRule = {
        ruleId,
        tenantId,
        name: input.name,
        predicate: input.predicate,
        channels: input.channels,
        ...(input.templateId !== undefined ? { templateId: input.templateId } : {}),
        enabled: input.enabled,
        priority: input.priority,
      };
      const existed = (await getRule(pool, tenantId, ruleId)) !== undefined;
      await upsertRule(pool, rule, subject);
      await audit(tenantId, `notify.rule.${existed ? 'updated' : 'created'}`, subject, ruleId, {
        name: rule.name,
        predicate: rule.predicate,
        channels: rule.channels.map(({ channel, recipients }) => ({
          channel,
          recipients: recipients.map((recipient) => auditedRecipient(channel, recipient)),
        })),
        templateId: rule.templateId ?? null,
        enabled: rule.enabled,
        priority: rule.priority,
      });
      if (existed) return reply.code(200).send(rule);
      return reply.code(201).header('location', `${RULES}/${ruleId}`).send(rule);
    },
  );

  app.delete(
    `${RULES}/:ruleId`,
    {
      schema: {
        tags,
        summary: 'Delete a routing rule',
        security,
        params: RuleParams,
        response: { 204: Type.Null(), 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { ruleId } = request.params;
      if (!(await deleteRule(pool, tenantId, ruleId))) throw notFound(`Rule ${ruleId} not found`);
      await audit(tenantId, 'notify.rule.deleted', subject, ruleId, {});
      return reply.code(204).send(null);
    },
  );

  app.get(
    TEMPLATES,
    {
      schema: {
        tags,
        summary: 'List the tenant’s notification templates, and the built-in defaults for reference',
        security,
        response: { 200: TemplateList, ...commonErrorResponses },
      },
    },
    async (request) => ({
      items: await listTemplates(pool, principalOf(request).tenantId),
      builtIn: [...DEFAULT_TEMPLATES],
    }),
  );

  app.put(
    `${TEMPLATES}/:templateId/:channel/:locale`,
    {
      schema: {
        tags,
        summary: 'Create or replace a notification template',
        description:
          '201 when created, 200 when replaced. Email: `{ subject, text, html? }`; webhook: `{ body }` (a JSON ' +
          'document template). Mustache tags may only name model fields; partials are not supported; `{{{x}}}` and ' +
          '`{{&x}}` are refused in `html` and `body`; a webhook body must render to a JSON object. 400 with field ' +
          'errors otherwise.',
        security,
        params: TemplateParams,
        body: TemplateBody,
        response: { 200: TemplateDoc, 201: TemplateDoc, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { templateId, channel, locale } = request.params;
      // The route schema allows only subject/text/html/body, so the path's fields cannot be overridden here.
      const input = { templateId, channel, locale, ...request.body };
      const errors = validateTemplate(input);
      if (errors.length > 0) throw validationFailed(inRequest(errors, ['templateId', 'channel', 'locale']));
      const template = input as NotifyTemplate;
      const existed = (await listTemplates(pool, tenantId)).some(
        (t) => t.templateId === templateId && t.channel === channel && t.locale === locale,
      );
      await upsertTemplate(pool, tenantId, template, subject);
      await audit(tenantId, 'notify.template.upserted', subject, `${templateId}/${channel}/${locale}`, {
        templateId,
        channel,
        locale,
        created: !existed,
      });
      if (existed) return reply.code(200).send(template);
      return reply.code(201).header('location', `${TEMPLATES}/${templateId}/${channel}/${locale}`).send(template);
    },
  );

  app.delete(
    `${TEMPLATES}/:templateId/:channel/:locale`,
    {
      schema: {
        tags,
        summary: 'Delete a notification template (the built-in default applies again)',
        security,
        params: TemplateParams,
        response: { 204: Type.Null(), 404: errorRef, ...commonErrorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, subject } = principalOf(request);
      const { templateId, channel, locale } = request.params;
      if (!(await deleteTemplate(pool, tenantId, templateId, channel, locale))) {
        throw notFound(`Template ${templateId}/${channel}/${locale} not found`);
      }
      await audit(tenantId, 'notify.template.deleted', subject, `${templateId}/${channel}/${locale}`, {
        templateId,
        channel,
        locale,
      });
      return reply.code(204).send(null);
    },
  );
};
