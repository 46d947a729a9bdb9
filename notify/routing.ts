/**
 * Rule-based routing of pack-approval notifications. Tenants write rules whose predicate is a CEL (Common Expression
 * Language) expression over a small, token-free view of the event (`ruleContext`); matching rules turn into
 * `NotificationIntent`s. CEL is evaluated by `@marcbachmann/cel-js`, an interpreter over a parsed AST: predicate text
 * is never handed to `eval`/`new Function`, and an expression can only read the declared variables and call CEL's
 * built-in functions.
 *
 * Pure module (no I/O): activities load the rules from Postgres and call `routeEvent`; the API validates rule input
 * with `RuleInput` and `validateRule`.
 */
import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  NOTIFY_CHANNELS,
  type NotificationIntent,
  type PackApprovalEvent,
} from '../workflows/pack-approval/definitions.js';
import { checkOutboundUrl } from '../activities/shared/outbound-policy.js';

/** Why a notification is sent (the `reason` of a `NotificationIntent`). */
export type NotifyReason = NotificationIntent['reason'];
/** Delivery channels of notifications. */
export type NotifyChannel = NotificationIntent['channel'];

/** Pattern of template ids (rules, templates and the built-in defaults). */
export const TEMPLATE_ID_PATTERN = '^[a-z0-9][a-z0-9._-]{0,99}$';
/** Maximum length of a predicate, in characters. */
export const MAX_PREDICATE_LENGTH = 2000;
/** Deepest allowed nesting of comprehension macros (`all`, `exists`, `exists_one`, `map`, `filter`). */
export const MAX_COMPREHENSION_NESTING = 2;

/** One channel of a rule in API input. Recipient formats are checked by `validateRule` (they depend on `channel`). */
const RuleChannelInput = Type.Object(
  {
    channel: Type.Union(NOTIFY_CHANNELS.map((c) => Type.Literal(c))),
    recipients: Type.Array(Type.String({ minLength: 1, maxLength: 2048 }), { minItems: 1, maxItems: 50 }),
  },
  { additionalProperties: false },
);

/**
 * Body of the rule create/replace API (server-assigned `ruleId`/`tenantId` excluded). `enabled` and `priority` carry
 * defaults (true, 100) that Ajv's `useDefaults` or `validateRule` apply. Recipient formats and the predicate are
 * checked by `validateRule`, which the API must call as well.
 */
export const RuleInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    predicate: Type.String({ minLength: 1, maxLength: MAX_PREDICATE_LENGTH }),
    channels: Type.Array(RuleChannelInput, { minItems: 1, maxItems: 10 }),
    templateId: Type.Optional(Type.String({ pattern: TEMPLATE_ID_PATTERN })),
    enabled: Type.Boolean({ default: true }),
    priority: Type.Integer({ minimum: 0, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);
/** A validated rule input (defaults applied). */
export type RuleInputValue = Static<typeof RuleInput>;

/**
 * A routing rule as stored for a tenant: the validated input plus its id and tenant. `predicate` is a CEL expression
 * over `ruleContext(...)`; `templateId`, when absent, is the default of the reason; lower `priority` runs first
 * (0..1000), ties broken by `ruleId`.
 */
export type NotifyRule = { ruleId: string; tenantId: string } & RuleInputValue;

/** A field-level validation problem; `path` is a JSON pointer into the input (e.g. `/channels/0/recipients/1`). */
export interface FieldError {
  path: string;
  message: string;
}

/** An invalid rule: `field` names the offending input field (e.g. `predicate`). */
export class RuleError extends Error {
  override name = 'RuleError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The variables a predicate sees. Strings and lists of strings, plus `hasPolicyGate`; absent values are `''`. */
export interface RuleContext {
  event: Pick<
    PackApprovalEvent,
    'tenantId' | 'runId' | 'approvalId' | 'planHash' | 'requiredGrants' | 'stepIds' | 'requestedBy'
  > & {
    kind: string;
    type: string;
    /** Requested locale, `''` when the event has none. */
    locale: string;
    /** Status of an Updated event, `''` otherwise. */
    status: string;
    /** Free-text reason of an Updated event, `''` otherwise. */
    reason: string;
    /** Policy gate id, `''` when the event carries no gate. */
    gateId: string;
    hasPolicyGate: boolean;
  };
  /** Why the notification is considered (`requested`, `reminder`, `expired`, `hold`, `released`, `decided`). */
  reason: NotifyReason;
}

/** A compiled predicate: true/false for a context; throws when evaluation fails or does not yield a boolean. */
export type CompiledPredicate = (context: RuleContext) => boolean;

/** The CEL environment of predicates: only `event` and `reason` exist, typed so that `check` catches mistakes. */
const predicateEnvironment = new Environment({
  unlistedVariablesAreDyn: false,
  enableOptionalTypes: false,
  limits: { maxAstNodes: 400, maxDepth: 32, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 },
})
  .registerVariable({
    name: 'event',
    schema: {
      kind: 'string',
      type: 'string',
      tenantId: 'string',
      runId: 'string',
      approvalId: 'string',
      planHash: 'string',
      requiredGrants: 'list<string>',
      stepIds: 'list<string>',
      requestedBy: 'string',
      locale: 'string',
      status: 'string',
      reason: 'string',
      gateId: 'string',
      hasPolicyGate: 'bool',
    },
  })
  .registerVariable('reason', 'string');

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/** Whether `value` is an AST node of the CEL parser. */
function isAstNode(value: unknown): value is ASTNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

/**
 * Rejects constructs that are valid CEL but unsuitable for tenant-written predicates: regular expressions (`matches`,
 * a catastrophic-backtracking risk) and deeply nested comprehensions (cost grows as size^depth).
 */
function checkCost(node: ASTNode, comprehensionDepth: number): void {
  let depth = comprehensionDepth;
  if (node.op === 'call' || node.op === 'rcall') {
    const name = node.args[0];
    if (name === 'matches') {
      throw new RuleError(
        'predicate',
        'regular expressions (matches) are not allowed in predicates; use startsWith, endsWith or contains',
      );
    }
    if (node.op === 'rcall' && COMPREHENSIONS.has(name)) {
      depth += 1;
      if (depth > MAX_COMPREHENSION_NESTING) {
        throw new RuleError(
          'predicate',
          `comprehensions (all, exists, exists_one, map, filter) may be nested at most ${MAX_COMPREHENSION_NESTING} deep`,
        );
      }
    }
  }
  const visit = (value: unknown): void => {
    if (isAstNode(value)) checkCost(value, depth);
    else if (Array.isArray(value)) for (const item of value) visit(item);
  };
  visit(node.args);
}

/** A CEL error as one line: its summary and the 1-based position when known. */
function describeCelError(error: unknown): string {
  if (error instanceof Error) {
    const { summary, range } = error as Error & { summary?: unknown; range?: { start: number } };
    const text = typeof summary === 'string' && summary !== '' ? summary : (error.message.split('\n')[0] ?? '');
    return range ? `${text} (at position ${range.start + 1})` : text;
  }
  return String(error);
}

/**
 * Compiles a predicate. Throws `RuleError` (field `predicate`) when it is empty or too long, does not parse, uses
 * unknown variables/functions (`process.exit()` is just an unknown variable), type-checks to something that cannot be
 * a boolean (`1 + 1`), or uses a disallowed construct (`matches`, comprehensions nested deeper than 2).
 */
export function compilePredicate(text: string): CompiledPredicate {
  if (text.trim() === '') throw new RuleError('predicate', 'predicate must not be empty');
  if (text.length > MAX_PREDICATE_LENGTH) {
    throw new RuleError('predicate', `predicate must be at most ${MAX_PREDICATE_LENGTH} characters`);
  }
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = predicateEnvironment.parse(text);
  } catch (error) {
    throw new RuleError('predicate', describeCelError(error));
  }
  // Before the type check, which refuses the function form `matches(s, re)` for want of an overload: every form of
  // `matches` is refused with the same message, whatever overloads the CEL library has.
  checkCost(parsed.ast, 0);
  const checked = predicateEnvironment.check(text);
  if (!checked.valid) throw new RuleError('predicate', describeCelError(checked.error));
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new RuleError('predicate', `predicate must evaluate to a bool, not ${checked.type ?? 'an unknown type'}`);
  }
  return (context) => {
    const result: unknown = parsed(context);
    if (typeof result !== 'boolean') throw new Error(`predicate evaluated to ${typeof result}, not a boolean`);
    return result;
  };
}

/** A pragmatic address check: local part without spaces/specials, `@`, a dotted DNS name. */
const EMAIL_PATTERN =
  /^[^\s@<>()[\]\\,;:"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Why `recipient` is not acceptable for `channel`, or undefined when it is. */
export function recipientProblem(channel: NotifyChannel, recipient: string): string | undefined {
  if (channel === 'email') {
    return recipient.length <= 254 && EMAIL_PATTERN.test(recipient) ? undefined : 'must be an email address';
  }
  const checked = checkOutboundUrl(recipient);
  return checked.ok ? undefined : checked.problem;
}

/**
 * Validates rule input for the API: the `RuleInput` schema (after applying defaults), the predicate (compiled and
 * type-checked) and each recipient's format for its channel. Returns all problems; empty when valid.
 */
export function validateRule(input: unknown): FieldError[] {
  const value: unknown = Value.Default(RuleInput, Value.Clone(input));
  const errors: FieldError[] = [];
  for (const error of Value.Errors(RuleInput, value)) {
    errors.push({ path: error.path === '' ? '/' : error.path, message: error.message });
  }
  if (typeof value !== 'object' || value === null) return errors;
  const { predicate, channels } = value as { predicate?: unknown; channels?: unknown };
  if (typeof predicate === 'string' && predicate.length > 0 && predicate.length <= MAX_PREDICATE_LENGTH) {
    try {
      compilePredicate(predicate);
    } catch (error) {
      errors.push({ path: '/predicate', message: error instanceof Error ? error.message : String(error) });
    }
  }
  if (Array.isArray(channels)) {
    channels.forEach((entry: unknown, c) => {
      if (typeof entry !== 'object' || entry === null) return;
      const { channel, recipients } = entry as { channel?: unknown; recipients?: unknown };
      if ((channel !== 'email' && channel !== 'webhook') || !Array.isArray(recipients)) return;
      recipients.forEach((recipient: unknown, r) => {
        if (typeof recipient !== 'string') return;
        const problem = recipientProblem(channel, recipient);
        if (problem)
          errors.push({ path: `/channels/${c}/recipients/${r}`, message: `${channel} recipient ${problem}` });
      });
    });
  }
  return errors;
}

/**
 * The variables predicates see for `event`: identifiers, grants, steps, locale, status and gate id, and the
 * notification `reason`. Deliberately excludes the resume callback (its token is a secret), message parameters and
 * trace data.
 */
export function ruleContext(event: PackApprovalEvent, reason: NotifyReason): RuleContext {
  return {
    event: {
      kind: event.kind,
      type: event.type,
      tenantId: event.tenantId,
      runId: event.runId,
      approvalId: event.approvalId,
      planHash: event.planHash,
      requiredGrants: [...event.requiredGrants],
      stepIds: [...event.stepIds],
      requestedBy: event.requestedBy,
      locale: event.locale ?? '',
      status: event.status ?? '',
      reason: event.reason ?? '',
      gateId: event.policyGate?.gateId ?? '',
      hasPolicyGate: event.policyGate !== undefined,
    },
    reason,
  };
}

/** Defaults of routing: the built-in template of a reason and the tenant's locale. */
export interface RoutingDefaults {
  templateIdFor(reason: NotifyReason): string;
  locale: string;
}

/** Outcome of `routeEvent`: the intents, and the rules whose predicate failed (treated as not matching). */
export interface RoutingResult {
  intents: NotificationIntent[];
  errors: { ruleId: string; message: string }[];
}

/** Compiled predicates by text: rules are reloaded per event, compiling each once per worker is enough. */
const compiledCache = new Map<string, CompiledPredicate>();
const COMPILED_CACHE_SIZE = 500;

/** `compilePredicate` through a small LRU cache. */
function compileCached(text: string): CompiledPredicate {
  const cached = compiledCache.get(text);
  if (cached) {
    compiledCache.delete(text);
    compiledCache.set(text, cached);
    return cached;
  }
  const compiled = compilePredicate(text);
  compiledCache.set(text, compiled);
  if (compiledCache.size > COMPILED_CACHE_SIZE) {
    const oldest = compiledCache.keys().next();
    if (!oldest.done) compiledCache.delete(oldest.value);
  }
  return compiled;
}

/** The identity of a recipient for deduplication: emails case-insensitively, URLs as normalised by `URL`. */
function recipientKey(channel: NotifyChannel, recipient: string): string {
  const trimmed = recipient.trim();
  if (channel === 'email') return `email:${trimmed.toLowerCase()}`;
  try {
    return `webhook:${new URL(trimmed).href}`;
  } catch {
    return `webhook:${trimmed}`;
  }
}

/**
 * Routes `event` for `reason`: evaluates the enabled rules of the event's tenant in order (priority ascending, then
 * `ruleId`) and emits one intent per distinct (channel, recipient); when several rules name the same recipient, the
 * first rule wins (its template is used). `templateId` is the rule's, else `defaults.templateIdFor(reason)`; `locale`
 * is the event's, else `defaults.locale`. A predicate that fails to compile or evaluate counts as false and is
 * reported in `errors`, as is a rule of another tenant (skipped).
 */
export function routeEvent(
  rules: readonly NotifyRule[],
  event: PackApprovalEvent,
  reason: NotifyReason,
  defaults: RoutingDefaults,
): RoutingResult {
  const context = ruleContext(event, reason);
  const locale = event.locale ?? defaults.locale;
  const ordered = rules
    .filter((rule) => rule.enabled)
    .sort((a, b) => a.priority - b.priority || (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0));
  const intents: NotificationIntent[] = [];
  const errors: RoutingResult['errors'] = [];
  const seen = new Set<string>();
  for (const rule of ordered) {
    if (rule.tenantId !== event.tenantId) {
      errors.push({ ruleId: rule.ruleId, message: 'rule belongs to another tenant; skipped' });
      continue;
    }
    let matched: boolean;
    try {
      matched = compileCached(rule.predicate)(context);
    } catch (error) {
      errors.push({ ruleId: rule.ruleId, message: error instanceof Error ? describeCelError(error) : String(error) });
      continue;
    }
    if (!matched) continue;
    const templateId = rule.templateId ?? defaults.templateIdFor(reason);
    for (const { channel, recipients } of rule.channels) {
      for (const recipient of recipients) {
        const key = recipientKey(channel, recipient);
        if (seen.has(key)) continue;
        seen.add(key);
        intents.push({ channel, recipient: recipient.trim(), templateId, locale, reason });
      }
    }
  }
  return { intents, errors };
}
