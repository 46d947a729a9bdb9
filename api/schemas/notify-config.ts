/**
 * Schemas of the per-tenant notification configuration of pack approvals: routing rules and templates
 * (`/notifications/rules`, `/notifications/templates`). Rule bodies reuse `RuleInput` of the routing module; the
 * semantic checks (CEL predicate, recipient formats, mustache safety, webhook JSON) are `validateRule` and
 * `validateTemplate`, which the routes call after the schema.
 */
import { Type } from '@sinclair/typebox';
// The routing and template modules are pure (no I/O); the API shares their id and locale patterns.
import { TEMPLATE_ID_PATTERN } from '../../notify/routing.js';
import { LOCALE_PATTERN } from '../../notify/templates.js';

/** Pattern of rule ids. */
export const RULE_ID_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

const Channel = Type.Union([Type.Literal('email'), Type.Literal('webhook')], { description: 'Delivery channel' });

export const RuleParams = Type.Object({ ruleId: Type.String({ pattern: RULE_ID_PATTERN, description: 'Rule id' }) });

/** A stored routing rule. */
export const RuleDoc = Type.Object({
  ruleId: Type.String(),
  tenantId: Type.String(),
  name: Type.String(),
  predicate: Type.String({ description: 'CEL expression over `event` and `reason`; evaluates to a bool' }),
  channels: Type.Array(Type.Object({ channel: Channel, recipients: Type.Array(Type.String()) })),
  templateId: Type.Optional(
    Type.String({ description: 'Template of the notifications; the reason’s default if absent' }),
  ),
  enabled: Type.Boolean(),
  priority: Type.Integer({ description: 'Lower runs first; ties broken by ruleId' }),
});

export const RuleList = Type.Object({ items: Type.Array(RuleDoc) });

export const TemplateParams = Type.Object({
  templateId: Type.String({ pattern: TEMPLATE_ID_PATTERN, description: 'Template id' }),
  channel: Channel,
  locale: Type.String({ pattern: LOCALE_PATTERN, description: 'Locale, language[-REGION] (`en-US`, `de`)' }),
});

/**
 * Body of a template upsert. Which fields are required depends on the channel of the path (email: `subject` and
 * `text`, `html` optional; webhook: `body` only), so the per-channel rules and mustache checks are `validateTemplate`'s.
 */
export const TemplateBody = Type.Object(
  {
    subject: Type.Optional(Type.String({ description: 'Email: subject line (mustache)' })),
    text: Type.Optional(Type.String({ description: 'Email: plain-text body (mustache)' })),
    html: Type.Optional(
      Type.String({ description: 'Email: optional HTML body (mustache; values are HTML-escaped, `{{{x}}}` refused)' }),
    ),
    body: Type.Optional(
      Type.String({ description: 'Webhook: JSON document template (mustache; values are JSON-string-escaped)' }),
    ),
  },
  { additionalProperties: false },
);

/** A stored (or built-in) template. */
export const TemplateDoc = Type.Object({
  templateId: Type.String(),
  channel: Channel,
  locale: Type.String(),
  subject: Type.Optional(Type.String()),
  text: Type.Optional(Type.String()),
  html: Type.Optional(Type.String()),
  body: Type.Optional(Type.String()),
});

export const TemplateList = Type.Object({
  items: Type.Array(TemplateDoc, { description: 'The tenant’s own templates (they take precedence)' }),
  builtIn: Type.Array(TemplateDoc, { description: 'The built-in defaults, for reference' }),
});
