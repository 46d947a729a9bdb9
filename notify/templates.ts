/**
 * Notification templates of pack approvals: locale resolution, the model templates render against, rendering of
 * email (mustache; HTML-escaped only in `html`) and webhook bodies (mustache with JSON-string escaping, then parsed),
 * and `redactSecrets`, the last line of defence before anything leaves the service.
 *
 * Template safety: tags may only name plain identifiers (`a.b.c`, or `.` inside a list section), never prototype
 * members such as `constructor` or `toString`, so a template can only read the model's own data; partials are not
 * supported; unescaped tags (`{{{x}}}`, `{{&x}}`) are refused where escaping matters (email `html`, webhook `body`).
 * Each render uses its own mustache `Writer` and passes `escape` per call; no global mustache state is touched.
 *
 * Pure module (no I/O): activities load templates from Postgres and call these functions.
 */
import mustache from 'mustache';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { AckResult, Decision, PackApprovalEvent, PackEventKind } from '../workflows/pack-approval/definitions.js';
import { TEMPLATE_ID_PATTERN, type FieldError, type NotifyChannel, type NotifyReason } from './routing.js';

/** Pattern of template locales: a language, optionally with a region (`de`, `de-CH`). */
export const LOCALE_PATTERN = '^[a-z]{2}(-[A-Z]{2})?$';
/** The last resort of every locale chain. */
export const FALLBACK_LOCALE = 'en-US';

/** A notification template as stored (built-in or per tenant). */
export interface NotifyTemplate {
  templateId: string;
  locale: string;
  channel: NotifyChannel;
  /** Email: subject line (not HTML-escaped; line breaks are folded to spaces). */
  subject?: string;
  /** Email: plain-text body (not HTML-escaped). */
  text?: string;
  /** Email: optional HTML body (values are HTML-escaped). */
  html?: string;
  /** Webhook: a JSON document template (values are JSON-string-escaped; put string tags inside quotes). */
  body?: string;
}

/** An invalid template or a failed render. */
export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(
    message: string,
    /** The template field concerned (`subject`, `text`, `html`, `body`), when known. */
    readonly field?: string,
  ) {
    super(message);
  }
}

const TemplateId = Type.String({ pattern: TEMPLATE_ID_PATTERN });
const Locale = Type.String({ pattern: LOCALE_PATTERN });

/** API body of an email template. */
export const EmailTemplateInput = Type.Object(
  {
    templateId: TemplateId,
    locale: Locale,
    channel: Type.Literal('email'),
    subject: Type.String({ minLength: 1, maxLength: 500 }),
    text: Type.String({ minLength: 1, maxLength: 20_000 }),
    html: Type.Optional(Type.String({ minLength: 1, maxLength: 100_000 })),
  },
  { additionalProperties: false },
);

/** API body of a webhook template. */
export const WebhookTemplateInput = Type.Object(
  {
    templateId: TemplateId,
    locale: Locale,
    channel: Type.Literal('webhook'),
    body: Type.String({ minLength: 2, maxLength: 20_000 }),
  },
  { additionalProperties: false },
);

/**
 * API body of the template create/replace endpoint: email (subject + text, html optional) or webhook (body). Mustache
 * syntax, tag safety and the webhook body's JSON validity are checked by `validateTemplate`, which the API must call.
 */
export const TemplateInput = Type.Union([EmailTemplateInput, WebhookTemplateInput]);
/** A template input that passed the schema. */

/** Canonical form of a locale (`de_ch` → `de-CH`), or undefined when it is not language[-REGION]. */
export function normalizeLocale(locale: string | undefined): string | undefined {
  if (locale === undefined) return undefined;
  const match = /^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?$/.exec(locale.trim());
  if (!match) return undefined;
  const language = (match[1] ?? '').toLowerCase();
  return match[2] ? `${language}-${match[2].toUpperCase()}` : language;
}

/**
 * The locales to try, in order and without duplicates: the requested locale (e.g. `de-CH`), its language (`de`), the
 * tenant default and its language, then `en-US` and `en`. Malformed locales are skipped.
 */
export function localeChain(requested: string | undefined, tenantDefault: string | undefined): string[] {
  const chain: string[] = [];
  const add = (locale: string | undefined): void => {
    if (locale !== undefined && !chain.includes(locale)) chain.push(locale);
  };
  for (const candidate of [normalizeLocale(requested), normalizeLocale(tenantDefault), FALLBACK_LOCALE]) {
    if (candidate === undefined) continue;
    add(candidate);
    add(candidate.split('-')[0]);
  }
  return chain;
}

/**
 * The template for (`templateId`, `channel`) in the best locale. Walks `localeChain(requested, tenantDefault)`; at
 * each entry an exact locale match wins, and at a bare-language entry (`de`) any template of that language also
 * matches — preferring the language's "own" region (`de-DE`, `fr-FR`), else the alphabetically first (`de-AT`). So
 * `de-CH` with only `de-DE` and `en-US` templates resolves to `de-DE`, before the tenant default is considered.
 * Returns undefined when nothing along the chain exists.
 */
export function resolveTemplate(
  templates: readonly NotifyTemplate[],
  templateId: string,
  channel: NotifyChannel,
  requested: string | undefined,
  tenantDefault: string | undefined,
): NotifyTemplate | undefined {
  const candidates = templates.filter((t) => t.templateId === templateId && t.channel === channel);
  for (const locale of localeChain(requested, tenantDefault)) {
    const exact = candidates.find((t) => normalizeLocale(t.locale) === locale);
    if (exact) return exact;
    if (locale.includes('-')) continue;
    const ownRegion = `${locale}-${locale.toUpperCase()}`;
    const sameLanguage = candidates
      .map((template) => ({ template, normalized: normalizeLocale(template.locale) ?? '' }))
      .filter(({ normalized }) => normalized.startsWith(`${locale}-`))
      .sort((a, b) => {
        if (a.normalized === ownRegion) return -1;
        if (b.normalized === ownRegion) return 1;
        return a.normalized < b.normalized ? -1 : a.normalized > b.normalized ? 1 : 0;
      });
    if (sameLanguage[0]) return sameLanguage[0].template;
  }
  return undefined;
}

/** An element of a list in the model, with flags for separators (`{{^last}}, {{/last}}`). */
export interface ModelListItem {
  value: string;
  index: number;
  first: boolean;
  last: boolean;
}

/** A key/value entry of a map in the model. */
export interface ModelEntry {
  key: string;
  value: string;
  first: boolean;
  last: boolean;
}

/** The human decision, when the approval was decided here (the ack's result, as the workflow records it). */
export type DecisionInput = Pick<AckResult, 'decision' | 'decidedBy' | 'decidedAt' | 'comment'>;

/**
 * The values templates can use. Lists come both joined (`requiredGrants`, `stepIds`: `", "`-separated) and as item
 * lists (`requiredGrantsList`, ...). Optional parts are absent (a mustache section over them renders nothing). Holds no
 * secrets: the resume callback is never part of it.
 */
export interface ApprovalTemplateModel {
  kind: PackEventKind;
  isPolicyGate: boolean;
  tenantId: string;
  runId: string;
  approvalId: string;
  planHash: string;
  requiredGrants: string;
  requiredGrantsList: ModelListItem[];
  requiredGrantCount: number;
  stepIds: string;
  stepIdsList: ModelListItem[];
  stepCount: number;
  requestedBy: string;
  requestedAt: string;
  expiresAt?: string;
  /** Why this notification is sent. */
  reason: NotifyReason;
  /** Status of an Updated event (`approved`, `held`, ...), when present. */
  status?: string;
  /** Free-text reason of an Updated event, when present. */
  statusReason?: string;
  /** The Task Runner's message template id and parameters. */
  messageTemplateId: string;
  parameters: Record<string, string>;
  parametersList: ModelEntry[];
  policyGate?: {
    gateId: string;
    parameters: Record<string, string>;
    parametersList: ModelEntry[];
    messages: string;
    messagesList: ModelListItem[];
  };
  /** Where approvers act (provided by the caller). */
  approvalLink: string;
  decision?: {
    decision: Decision;
    approved: boolean;
    rejected: boolean;
    decidedBy: string;
    decidedAt: string;
    comment?: string;
  };
}

/** Extra inputs of `buildTemplateModel`. */
export interface TemplateModelExtras {
  reason: NotifyReason;
  approvalLink: string;
  decision?: DecisionInput;
}

function listItems(values: readonly string[]): ModelListItem[] {
  return values.map((value, index) => ({ value, index, first: index === 0, last: index === values.length - 1 }));
}

function entries(map: Readonly<Record<string, string>>): { record: Record<string, string>; list: ModelEntry[] } {
  const pairs = Object.entries(map)
    .filter(([, value]) => typeof value === 'string')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    record: Object.fromEntries(pairs),
    list: pairs.map(([key, value], index) => ({
      key,
      value,
      first: index === 0,
      last: index === pairs.length - 1,
    })),
  };
}

/**
 * Builds the model of `event` for templates. Copies only the listed fields (never `resumeCallback`, `traceparent`
 * or a decision's resume token), so whatever a template names, no secret can be rendered.
 */
export function buildTemplateModel(event: PackApprovalEvent, extras: TemplateModelExtras): ApprovalTemplateModel {
  const parameters = entries(event.message.parameters);
  const model: ApprovalTemplateModel = {
    kind: event.kind,
    isPolicyGate: event.kind === 'pack.policy.gate',
    tenantId: event.tenantId,
    runId: event.runId,
    approvalId: event.approvalId,
    planHash: event.planHash,
    requiredGrants: event.requiredGrants.join(', '),
    requiredGrantsList: listItems(event.requiredGrants),
    requiredGrantCount: event.requiredGrants.length,
    stepIds: event.stepIds.join(', '),
    stepIdsList: listItems(event.stepIds),
    stepCount: event.stepIds.length,
    requestedBy: event.requestedBy,
    requestedAt: event.requestedAt,
    reason: extras.reason,
    messageTemplateId: event.message.templateId,
    parameters: parameters.record,
    parametersList: parameters.list,
    approvalLink: extras.approvalLink,
  };
  if (event.expiresAt !== undefined) model.expiresAt = event.expiresAt;
  if (event.status !== undefined) model.status = event.status;
  if (event.reason !== undefined) model.statusReason = event.reason;
  if (event.policyGate) {
    const gateParameters = entries(event.policyGate.parameters);
    model.policyGate = {
      gateId: event.policyGate.gateId,
      parameters: gateParameters.record,
      parametersList: gateParameters.list,
      messages: event.policyGate.messages.join('\n'),
      messagesList: listItems(event.policyGate.messages),
    };
  }
  if (extras.decision) {
    const { decision, decidedBy, decidedAt, comment } = extras.decision;
    model.decision = {
      decision,
      approved: decision === 'approve',
      rejected: decision === 'reject',
      decidedBy,
      decidedAt,
    };
    if (comment !== undefined) model.decision.comment = comment;
  }
  return model;
}

/** Names of prototype members; tags may not name them (`{{constructor}}`, `{{list.toString}}`, `{{x.length}}`). */
const FORBIDDEN_NAMES = new Set(
  [Object.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype].flatMap((proto) =>
    Object.getOwnPropertyNames(proto),
  ),
);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Token = [string, string, number, number, Token[]?, ...unknown[]];

/** Checks the tokens of a parsed template: safe names, no partials, no unescaped tags where `escaped` is required. */
function checkTokens(tokens: readonly Token[], field: string, escaped: boolean): void {
  for (const token of tokens) {
    const [kind, name] = token;
    if (kind === 'text' || kind === '!' || kind === '=') continue;
    if (kind === '>') throw new TemplateError(`${field}: partials ({{>${name}}}) are not supported`, field);
    if (kind === '&' && escaped) {
      throw new TemplateError(`${field}: unescaped tags ({{{${name}}}} or {{&${name}}}) are not allowed here`, field);
    }
    if (name !== '.') {
      for (const segment of name.split('.')) {
        if (!IDENTIFIER.test(segment) || FORBIDDEN_NAMES.has(segment)) {
          throw new TemplateError(`${field}: tag "${name}" is not a model field`, field);
        }
      }
    }
    const children = token[4];
    if ((kind === '#' || kind === '^') && Array.isArray(children)) checkTokens(children, field, escaped);
  }
}

/** Renders one template field with its own writer and escape function, after checking its tags. */
function renderField(
  template: string,
  model: ApprovalTemplateModel,
  field: string,
  escape: (value: unknown) => string,
  escaped: boolean,
): string {
  const writer = new mustache.Writer();
  try {
    checkTokens(writer.parse(template) as Token[], field, escaped);
    return writer.render(template, model, undefined, { escape });
  } catch (error) {
    if (error instanceof TemplateError) throw error;
    throw new TemplateError(`${field}: ${error instanceof Error ? error.message : String(error)}`, field);
  }
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '/': '&#x2F;',
  '`': '&#x60;',
  '=': '&#x3D;',
};

/** HTML-escapes a value (the characters mustache escapes by default). */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`=/]/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Escapes a value for use inside a JSON string literal (quotes, backslashes, control characters). */
export function escapeJsonString(value: unknown): string {
  return JSON.stringify(String(value)).slice(1, -1);
}

const noEscape = (value: unknown): string => String(value);

/** A rendered email. */
export interface RenderedEmail {
  subject: string;
  text: string;
  html?: string;
}

/**
 * Renders an email template: `subject` and `text` without escaping (subject line breaks folded to one space, so a
 * value cannot inject headers), `html` with HTML escaping. Throws `TemplateError` when the template is not an email
 * template, is malformed or names something that is not a model field.
 */
export function renderEmail(template: NotifyTemplate, model: ApprovalTemplateModel): RenderedEmail {
  if (template.channel !== 'email' || template.subject === undefined || template.text === undefined) {
    throw new TemplateError(`template ${template.templateId} (${template.locale}) is not an email template`);
  }
  const subject = renderField(template.subject, model, 'subject', noEscape, false)
    .replace(/[\r\n]+/g, ' ')
    .trim();
  const rendered: RenderedEmail = { subject, text: renderField(template.text, model, 'text', noEscape, false) };
  if (template.html !== undefined) rendered.html = renderField(template.html, model, 'html', escapeHtml, true);
  return rendered;
}

/**
 * Renders a webhook template: values are JSON-string-escaped (a value with quotes or newlines cannot break out of its
 * string), the result is parsed. Throws `TemplateError` when the template is malformed or the result is not a JSON
 * object.
 */
export function renderWebhook(template: NotifyTemplate, model: ApprovalTemplateModel): Record<string, unknown> {
  if (template.channel !== 'webhook' || template.body === undefined) {
    throw new TemplateError(`template ${template.templateId} (${template.locale}) is not a webhook template`);
  }
  const text = renderField(template.body, model, 'body', escapeJsonString, true);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TemplateError(
      `body: rendered webhook body is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
      'body',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TemplateError('body: rendered webhook body must be a JSON object', 'body');
  }
  return parsed as Record<string, unknown>;
}

/** A model with every optional part present and awkward values (quotes, newlines, markup) for validation renders. */
function sampleModel(): ApprovalTemplateModel {
  const event: PackApprovalEvent = {
    eventId: 'evt-sample',
    type: 'PackApprovalUpdated',
    kind: 'pack.policy.gate',
    tenantId: 'tenant-"sample"',
    runId: 'run-1\nline',
    approvalId: 'approval-1',
    planHash: 'sha256:0123456789abcdef',
    requiredGrants: ['deploy:prod', 'quote:"x"'],
    stepIds: ['build', 'deploy\\prod'],
    message: { templateId: 'sample', parameters: { env: 'prod', note: '<b>"hi"</b>' } },
    policyGate: { gateId: 'sec-1', parameters: { level: 'high' }, messages: ['first "message"', 'second\nline'] },
    requestedBy: 'alice@example.com',
    requestedAt: '2025-01-01T00:00:00.000Z',
    expiresAt: '2025-01-02T00:00:00.000Z',
    locale: 'en-US',
    correlationId: 'corr-1',
    status: 'held',
    reason: 'because "policy"',
  };
  return buildTemplateModel(event, {
    reason: 'decided',
    approvalLink: 'https://example.com/approvals/1?x="y"',
    decision: { decision: 'approve', decidedBy: 'bob', decidedAt: '2025-01-01T01:00:00.000Z', comment: 'ok "fine"' },
  });
}

/** A model with only the mandatory fields, empty lists and maps. */
function emptyModel(): ApprovalTemplateModel {
  return buildTemplateModel(
    {
      eventId: '',
      type: 'PackApprovalRequested',
      kind: 'pack.approval',
      tenantId: '',
      runId: '',
      approvalId: '',
      planHash: '',
      requiredGrants: [],
      stepIds: [],
      message: { templateId: '', parameters: {} },
      requestedBy: '',
      requestedAt: '',
      correlationId: '',
    },
    { reason: 'requested', approvalLink: '' },
  );
}

/**
 * Validates template input for the API: the `TemplateInput` schema (checked against the branch of its `channel` for
 * precise messages), then mustache syntax and tag safety of each field by rendering it; a webhook body must render to
 * a JSON object both with an empty model and with a sample model whose values contain quotes and newlines.
 */
export function validateTemplate(input: unknown): FieldError[] {
  const channel = typeof input === 'object' && input !== null ? (input as { channel?: unknown }).channel : undefined;
  const schema = channel === 'email' ? EmailTemplateInput : channel === 'webhook' ? WebhookTemplateInput : undefined;
  if (!schema) return [{ path: '/channel', message: 'channel must be "email" or "webhook"' }];
  const errors: FieldError[] = [...Value.Errors(schema, input)].map((e) => ({
    path: e.path === '' ? '/' : e.path,
    message: e.message,
  }));
  if (errors.length > 0) return errors;
  const template = input as NotifyTemplate;
  for (const model of [emptyModel(), sampleModel()]) {
    try {
      if (template.channel === 'email') renderEmail(template, model);
      else renderWebhook(template, model);
    } catch (error) {
      const field = error instanceof TemplateError && error.field ? error.field : 'body';
      return [{ path: `/${field}`, message: error instanceof Error ? error.message : String(error) }];
    }
  }
  return [];
}

/** Keys dropped by `redactSecrets` wherever they appear (compared case-insensitively). */
const SECRET_KEYS = new Set(['token', 'secret', 'password', 'resumetoken', 'authorization']);
/** Secrets shorter than this are ignored by `redactSecrets` (too likely to match innocent text). */
export const MIN_SECRET_LENGTH = 8;
const REDACTED = '[redacted]';

/**
 * Deep-copies a JSON value, replacing every occurrence of each secret (≥ 8 characters; also in its URL-encoded
 * forms, e.g. inside query strings) in strings and object keys with `[redacted]`, and dropping properties named
 * token, secret, password, resumeToken or authorization (any case). Cycles become `[redacted]`.
 */
export function redactSecrets<T>(value: T, secrets: readonly string[]): T {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(encodeURIComponent(secret).replace(/%20/g, '+'));
    forms.add(encodeURI(secret));
  }
  // Longest first, so a secret containing another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  const scrub = (text: string): string => ordered.reduce((acc, form) => acc.split(form).join(REDACTED), text);
  const seen = new Set<object>();
  const copy = (node: unknown): unknown => {
    if (typeof node === 'string') return scrub(node);
    if (typeof node !== 'object' || node === null) return node;
    if (seen.has(node)) return REDACTED;
    seen.add(node);
    let result: unknown;
    if (Array.isArray(node)) {
      result = node.map((item) => copy(item));
    } else {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) {
        if (SECRET_KEYS.has(key.toLowerCase())) continue;
        Object.defineProperty(out, scrub(key), {
          value: copy(item),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      result = out;
    }
    seen.delete(node);
    return result;
  };
  return copy(value) as T;
}
