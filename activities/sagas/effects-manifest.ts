/**
 * The effects manifest: the providers sagas call (their effects), declared in a JSON or YAML file
 * (`EFFECTS_MANIFEST`, else the bundled `samples/sagas/effects-manifest.yaml` for the reference services). Each
 * provider has a name, `kind: http`, a URL template, a method, headers (literals or secret references resolved at
 * load time: `{ secretFile: /run/secrets/x }`, `{ secretEnv: NAME }`), a timeout per attempt, a retry policy and a
 * circuit breaker for its upstream (the origin of its URL); the optional `defaults` apply to every provider and to
 * the `gateway` section (the Gateway commands' timeout, retries and breaker). Parsing and validation are pure:
 * the file and the secrets arrive through the loader's parameters, so tests pass their own. Every problem is
 * reported at once, each naming the file and the field (`effects.yaml: providers[2].timeoutMs must be …`).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError, environmentSecret, type AppConfig } from '../../core/config.js';
import type { SagaDefinition } from '../../workflows/sagas/definitions.js';
import { checkOutboundUrl, HEADER_NAME, HEADER_VALUE } from '../shared/outbound-policy.js';

/** The bundled manifest: the providers of the two sample sagas on the reference services. */
export const BUNDLED_EFFECTS_MANIFEST = fileURLToPath(
  new URL('../../samples/sagas/effects-manifest.yaml', import.meta.url),
);

/** The one placeholder of a manifest: the reference services' base URL. */
export const REFERENCE_SERVICES_PLACEHOLDER = '${REFERENCE_SERVICES_URL}';

/** HTTP methods a provider may be called with (`GET` sends no body: its input goes into the URL template). */
export const EFFECT_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'] as const;
export type EffectMethod = (typeof EFFECT_METHODS)[number];

/** Headers the effect and Gateway activities set themselves: the manifest may not set them. */
export const RESERVED_EFFECT_HEADERS: readonly string[] = [
  'content-type',
  'content-length',
  'host',
  'idempotency-key',
  'x-tenant-id',
  'x-correlation-id',
  'traceparent',
];

/** Bounds of the settings, shared by the schema and the messages. */
export const LIMITS = {
  timeoutMs: { minimum: 100, maximum: 300_000 },
  initialIntervalMs: { minimum: 1, maximum: 3_600_000 },
  backoffCoefficient: { minimum: 1, maximum: 10 },
  maximumIntervalMs: { minimum: 1, maximum: 86_400_000 },
  maximumAttempts: { minimum: 0, maximum: 1_000 },
  threshold: { minimum: 1, maximum: 1_000 },
  halfOpenAfterMs: { minimum: 1, maximum: 3_600_000 },
} as const;

/** An integer setting within its {@link LIMITS}. */
const Int = (name: keyof typeof LIMITS) =>
  Type.Integer({ ...LIMITS[name], mustBe: `an integer between ${LIMITS[name].minimum} and ${LIMITS[name].maximum}` });

/** Retries of one call, as Temporal counts attempts (the first call is attempt 1; 0 attempts: no limit). */
export const RetrySettings = Type.Object(
  {
    initialIntervalMs: Int('initialIntervalMs'),
    backoffCoefficient: Type.Number({
      ...LIMITS.backoffCoefficient,
      mustBe: `a number between ${LIMITS.backoffCoefficient.minimum} and ${LIMITS.backoffCoefficient.maximum}`,
    }),
    maximumIntervalMs: Int('maximumIntervalMs'),
    maximumAttempts: Int('maximumAttempts'),
  },
  { additionalProperties: false },
);
export type RetrySettings = Static<typeof RetrySettings>;

/** The circuit breaker of an upstream: open after `threshold` consecutive failures, probe after `halfOpenAfterMs`. */
export const BreakerSettings = Type.Object(
  { threshold: Int('threshold'), halfOpenAfterMs: Int('halfOpenAfterMs') },
  { additionalProperties: false },
);
export type BreakerSettings = Static<typeof BreakerSettings>;

/** Settings a provider inherits from `defaults` (field by field for `retry` and `breaker`). */
const CallSettings = {
  timeoutMs: Type.Optional(Int('timeoutMs')),
  retry: Type.Optional(Type.Partial(RetrySettings, { additionalProperties: false })),
  breaker: Type.Optional(Type.Partial(BreakerSettings, { additionalProperties: false })),
};

const NonEmpty = Type.String({ minLength: 1, mustBe: 'a non-empty string' });

/** A header value: a literal, or a reference to a secret resolved when the manifest is loaded. */
const HeaderValue = Type.Union(
  [
    Type.String(),
    Type.Object({ secretFile: NonEmpty }, { additionalProperties: false }),
    Type.Object({ secretEnv: NonEmpty }, { additionalProperties: false }),
  ],
  { mustBe: 'a string, { secretFile: <path> } or { secretEnv: <NAME> }' },
);

/** One provider as the file declares it. */
const ProviderDocument = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z][A-Za-z0-9._-]{0,99}$',
      mustBe: 'an effect name ([A-Za-z][A-Za-z0-9._-]*)',
    }),
    kind: Type.Literal('http', { mustBe: '"http"' }),
    url: NonEmpty,
    method: Type.Optional(
      Type.Union(
        EFFECT_METHODS.map((m) => Type.Literal(m)),
        { mustBe: `one of ${EFFECT_METHODS.join(', ')}` },
      ),
    ),
    headers: Type.Optional(Type.Record(Type.String(), HeaderValue, { mustBe: 'a map of header names to values' })),
    ...CallSettings,
  },
  { additionalProperties: false },
);

/** The manifest file. */
export const EffectsManifestDocument = Type.Object(
  {
    defaults: Type.Optional(Type.Object(CallSettings, { additionalProperties: false })),
    gateway: Type.Optional(Type.Object(CallSettings, { additionalProperties: false })),
    providers: Type.Array(ProviderDocument, { mustBe: 'a list of providers' }),
  },
  { additionalProperties: false },
);
export type EffectsManifestDocument = Static<typeof EffectsManifestDocument>;

/** Timeout, retries and breaker of one kind of call. */
export interface CallPolicy {
  /** Timeout of one attempt. */
  timeoutMs: number;
  retry: RetrySettings;
  breaker: BreakerSettings;
}

/** A provider, validated, with its defaults applied and its secrets resolved. */
export interface EffectProvider extends CallPolicy {
  name: string;
  kind: 'http';
  /** URL template: `{tenantId}`, `{commandId}` and `{payload.<field>}` placeholders in its path and query. */
  url: string;
  /** The origin the URL calls: one circuit breaker per upstream. */
  upstream: string;
  method: EffectMethod;
  /** Header values as sent (secrets resolved): never logged. */
  headers: Record<string, string>;
}

/** A loaded effects manifest. */
export interface EffectsManifest {
  /** The file it was loaded from (for messages). */
  source: string;
  /** Providers by effect name. */
  providers: ReadonlyMap<string, EffectProvider>;
  /** Timeout, retries and breaker of Gateway commands. */
  gateway: CallPolicy;
}

/** The built-in settings a manifest's `defaults` refine. */
export const BUILT_IN_CALL_POLICY: CallPolicy = {
  timeoutMs: 10_000,
  retry: { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 60_000, maximumAttempts: 10 },
  breaker: { threshold: 5, halfOpenAfterMs: 30_000 },
};

/** An invalid effects manifest; `problems` lists every one, each starting with the file's path. */
export class EffectsManifestError extends ConfigError {
  override name = 'EffectsManifestError';
  constructor(source: string, problems: string[]) {
    super(
      problems.map((problem) => `${source}: ${problem}`),
      `Invalid effects manifest ${source}`,
    );
  }
}

/** Where a manifest's secrets come from: injected, so that parsing stays pure and tests pass their own. */
export interface SecretSources {
  /** Reads a secret file (`{ secretFile }`); throws when it cannot. */
  readSecretFile(path: string): string;
  /** The value of an environment variable (`{ secretEnv }`), undefined when unset. */
  environmentSecret(name: string): string | undefined;
}

/** Options of {@link parseEffectsManifest}. */
export interface ParseManifestOptions extends SecretSources {
  /** The file's path, named by every message; `.json` files are parsed as JSON, anything else as YAML. */
  source: string;
  /** What `${REFERENCE_SERVICES_URL}` stands for. */
  referenceServicesUrl: string;
}

/** `/providers/2/timeoutMs` → `providers[2].timeoutMs`. */
export function fieldOf(pointer: string): string {
  let field = '';
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(key)) field += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) field += field === '' ? key : `.${key}`;
    else field += `[${JSON.stringify(key)}]`;
  }
  return field === '' ? 'the manifest' : field;
}

/** A value for messages: short, and never anything but the value the file holds at a non-secret field. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The message of one schema error (`providers[0].timeoutMs must be an integer between 100 and 300000 (got 5)`). */
export function schemaProblem(error: ValueError): string {
  const field = fieldOf(error.path);
  if (error.type === ValueErrorType.ObjectRequiredProperty) return `${field} is required`;
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return `${field} is not a known field`;
  const mustBe =
    (error.schema as TSchema & { mustBe?: string }).mustBe ??
    (error.type === ValueErrorType.Object ? 'an object' : error.message.replace(/^Expected /, ''));
  return `${field} must be ${mustBe} (got ${shown(error.value)})`;
}

/**
 * Replaces `${REFERENCE_SERVICES_URL}` in every string of `document`; any other `${…}` is a problem naming its field.
 * @returns the document with the placeholder replaced.
 */
export function substitutePlaceholders(
  document: unknown,
  referenceServicesUrl: string,
  problems: string[],
  pointer = '',
): unknown {
  if (typeof document === 'string') {
    for (const match of document.matchAll(/\$\{[^}]*\}?/g)) {
      if (match[0] !== REFERENCE_SERVICES_PLACEHOLDER) {
        problems.push(
          `${fieldOf(pointer)} uses ${shown(match[0])}: the only placeholder is ${REFERENCE_SERVICES_PLACEHOLDER}`,
        );
      }
    }
    return document.split(REFERENCE_SERVICES_PLACEHOLDER).join(referenceServicesUrl.replace(/\/$/, ''));
  }
  if (Array.isArray(document)) {
    return document.map((item, i) => substitutePlaceholders(item, referenceServicesUrl, problems, `${pointer}/${i}`));
  }
  if (document !== null && typeof document === 'object') {
    return Object.fromEntries(
      Object.entries(document).map(([key, value]) => [
        key,
        substitutePlaceholders(
          value,
          referenceServicesUrl,
          problems,
          `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        ),
      ]),
    );
  }
  return document;
}

/** The placeholders of a URL template, as written (`{tenantId}`, `{payload.imageId}`). */
const TEMPLATE_PLACEHOLDER = /\{([^{}]*)\}/g;
const PAYLOAD_FIELD = /^payload\.([A-Za-z_][A-Za-z0-9_]*)$/;
/** Stands in for placeholders while the template is checked as a URL. */
const MARKER = 'placeholder0';

/**
 * Checks a provider's URL template: known placeholders, in the path and query only, and the outbound URL policy.
 * @returns the upstream (origin) the template calls, or undefined after adding the problems.
 */
export function checkUrlTemplate(template: string, field: string, problems: string[]): string | undefined {
  let valid = true;
  for (const match of template.matchAll(TEMPLATE_PLACEHOLDER)) {
    const [placeholder] = match;
    const name = match[1]!; // the group always takes part in the match
    if (name !== 'tenantId' && name !== 'commandId' && !PAYLOAD_FIELD.test(name)) {
      problems.push(
        `${field} has an unknown placeholder ${placeholder} (use {tenantId}, {commandId} or {payload.<field>})`,
      );
      valid = false;
    }
  }
  if (!valid) return undefined;
  const checked = checkOutboundUrl(template.replace(TEMPLATE_PLACEHOLDER, MARKER));
  if (!checked.ok) {
    problems.push(`${field} ${checked.problem}`);
    return undefined;
  }
  if (checked.url.host.includes(MARKER) || /[{}]/.test(checked.url.host)) {
    problems.push(`${field} may have placeholders in its path and query only, not in its host`);
    return undefined;
  }
  return checked.url.origin;
}

/** Why a URL template cannot be filled for a command: the payload lacks a field it needs. */
export class UrlTemplateError extends Error {
  override name = 'UrlTemplateError';
}

/**
 * Fills a URL template for one command, each value URL-encoded.
 * @throws UrlTemplateError when the payload has no string, number or boolean at a `{payload.<field>}`.
 */
export function expandUrlTemplate(
  template: string,
  values: { tenantId: string; commandId: string; payload: Record<string, unknown> },
): string {
  return template.replace(TEMPLATE_PLACEHOLDER, (placeholder, name: string) => {
    if (name === 'tenantId') return encodeURIComponent(values.tenantId);
    if (name === 'commandId') return encodeURIComponent(values.commandId);
    const field = PAYLOAD_FIELD.exec(name)?.[1] ?? '';
    const value = values.payload[field];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return encodeURIComponent(String(value));
    }
    throw new UrlTemplateError(`the payload needs ${field} (a string, number or boolean) for ${placeholder}`);
  });
}

type HeaderDocument = NonNullable<EffectsManifestDocument['providers'][number]['headers']>;

/** Resolves a provider's headers (secrets included), adding a problem for each invalid one; never quotes a secret. */
export function resolveHeaders(
  headers: HeaderDocument,
  field: string,
  secrets: SecretSources,
  problems: string[],
): Record<string, string> {
  const resolved: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    const at = `${field}.headers[${JSON.stringify(name)}]`;
    if (!HEADER_NAME.test(name)) {
      problems.push(`${field}.headers: ${shown(name)} is not a valid header name`);
      continue;
    }
    const lower = name.toLowerCase();
    if (RESERVED_EFFECT_HEADERS.includes(lower)) {
      problems.push(`${at} is set by the effect activities themselves`);
      continue;
    }
    if (seen.has(lower)) {
      problems.push(`${at} repeats a header (names are case-insensitive)`);
      continue;
    }
    seen.add(lower);
    let text: string | undefined;
    if (typeof value === 'string') {
      if (!HEADER_VALUE.test(value)) problems.push(`${at} must be non-empty visible ASCII`);
      else resolved[name] = value;
      continue;
    }
    if ('secretFile' in value) {
      if (!value.secretFile.startsWith('/')) {
        problems.push(`${at}.secretFile must be an absolute path (got ${shown(value.secretFile)})`);
        continue;
      }
      try {
        text = secrets.readSecretFile(value.secretFile).replace(/\r?\n$/, '');
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        problems.push(
          `${at}: the secret file ${value.secretFile} cannot be read${typeof code === 'string' ? ` (${code})` : ''}`,
        );
        continue;
      }
    } else {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value.secretEnv)) {
        problems.push(`${at}.secretEnv must be an environment variable name (got ${shown(value.secretEnv)})`);
        continue;
      }
      text = secrets.environmentSecret(value.secretEnv);
      if (text === undefined) {
        problems.push(`${at}: the environment variable ${value.secretEnv} is not set`);
        continue;
      }
    }
    // The value is a secret: the message says what is wrong with it, never what it is.
    if (!HEADER_VALUE.test(text)) problems.push(`${at}: the secret must be non-empty visible ASCII`);
    else resolved[name] = text;
  }
  return resolved;
}

type CallDocument = Partial<Pick<EffectsManifestDocument['providers'][number], 'timeoutMs' | 'retry' | 'breaker'>>;

/** `own` over `base`, field by field. */
export function callPolicyOf(base: CallPolicy, own: CallDocument | undefined): CallPolicy {
  return {
    timeoutMs: own?.timeoutMs ?? base.timeoutMs,
    retry: { ...base.retry, ...own?.retry },
    breaker: { ...base.breaker, ...own?.breaker },
  };
}

/** Adds a problem when the retry policy's intervals contradict each other. */
function checkPolicy(policy: CallPolicy, field: string, problems: string[]): void {
  if (policy.retry.maximumIntervalMs < policy.retry.initialIntervalMs) {
    problems.push(
      `${field}.retry.maximumIntervalMs must be at least initialIntervalMs (${policy.retry.maximumIntervalMs} < ${policy.retry.initialIntervalMs})`,
    );
  }
}

/** Whether two breaker settings are the same (one breaker guards one upstream, so its callers must agree). */
export const sameBreaker = (a: BreakerSettings, b: BreakerSettings) =>
  a.threshold === b.threshold && a.halfOpenAfterMs === b.halfOpenAfterMs;

/** Reads the text of a manifest as JSON (`.json`) or YAML. @throws Error with the parser's message. */
function parseText(text: string, source: string): unknown {
  return /\.json$/i.test(source) ? JSON.parse(text) : parseYaml(text);
}

/**
 * Parses and validates a manifest's text.
 * @throws EffectsManifestError listing every problem, each naming the file and the field.
 */
export function parseEffectsManifest(text: string, options: ParseManifestOptions): EffectsManifest {
  const { source } = options;
  let raw: unknown;
  try {
    raw = parseText(text, source);
  } catch (error) {
    throw new EffectsManifestError(source, [
      `is not valid ${/\.json$/i.test(source) ? 'JSON' : 'YAML'} (${(error as Error).message.split('\n')[0]})`,
    ]);
  }
  const problems: string[] = [];
  const document = substitutePlaceholders(raw, options.referenceServicesUrl, problems);
  const reported = new Set<string>();
  for (const error of Value.Errors(EffectsManifestDocument, document)) {
    // One message per field: a value out of range is also reported as "not an integer" by some schemas.
    if (reported.has(error.path)) continue;
    reported.add(error.path);
    problems.push(schemaProblem(error));
  }
  if (problems.length > 0) throw new EffectsManifestError(source, problems);

  const valid = document as EffectsManifestDocument;
  const defaults = callPolicyOf(BUILT_IN_CALL_POLICY, valid.defaults);
  checkPolicy(defaults, 'defaults', problems);
  const gateway = callPolicyOf(defaults, valid.gateway);
  if (valid.gateway) checkPolicy(gateway, 'gateway', problems);

  const providers = new Map<string, EffectProvider>();
  /** The first provider of each upstream, whose breaker the others must share. */
  const upstreams = new Map<string, { field: string; breaker: BreakerSettings }>();
  valid.providers.forEach((declared, index) => {
    const field = `providers[${index}]`;
    if (providers.has(declared.name)) {
      problems.push(`${field}.name repeats the effect ${shown(declared.name)}`);
      return;
    }
    const policy = callPolicyOf(defaults, declared);
    checkPolicy(policy, field, problems);
    const upstream = checkUrlTemplate(declared.url, `${field}.url`, problems);
    const headers = resolveHeaders(declared.headers ?? {}, field, options, problems);
    if (upstream === undefined) return;
    const first = upstreams.get(upstream);
    if (first && !sameBreaker(first.breaker, policy.breaker)) {
      problems.push(
        `${field}.breaker must equal ${first.field}.breaker: both call ${upstream}, and one breaker guards one upstream`,
      );
    }
    if (!first) upstreams.set(upstream, { field, breaker: policy.breaker });
    providers.set(declared.name, {
      name: declared.name,
      kind: declared.kind,
      url: declared.url,
      upstream,
      method: declared.method ?? 'POST',
      headers,
      ...policy,
    });
  });
  if (problems.length > 0) throw new EffectsManifestError(source, problems);
  return { source, providers, gateway };
}

/** Options of {@link loadEffectsManifest}. */
export interface LoadManifestOptions extends Partial<SecretSources> {
  /** The manifest file; the bundled one when undefined. */
  path?: string | undefined;
  referenceServicesUrl: string;
  /** Reads the manifest file (`fs.readFileSync` by default). */
  readFile?: (path: string) => string;
}

/**
 * Reads, parses and validates the manifest at `path` (the bundled one by default), resolving its secrets from files
 * and from the environment (through `environmentSecret` in core/config.ts) unless the options bring their own.
 * @throws EffectsManifestError naming the file and every invalid field.
 */
export function loadEffectsManifest(options: LoadManifestOptions): EffectsManifest {
  const source = options.path ?? BUNDLED_EFFECTS_MANIFEST;
  const read = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  let text: string;
  try {
    text = read(source);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new EffectsManifestError(source, [
      `cannot be read${typeof code === 'string' ? ` (${code})` : ''}: set EFFECTS_MANIFEST to a readable file`,
    ]);
  }
  return parseEffectsManifest(text, {
    source,
    referenceServicesUrl: options.referenceServicesUrl,
    readSecretFile: options.readSecretFile ?? ((path) => readFileSync(path, 'utf8')),
    environmentSecret: options.environmentSecret ?? ((name) => environmentSecret(name)),
  });
}

/** The reference services' base URL, which `${REFERENCE_SERVICES_URL}` stands for. */
export function referenceServicesUrlOf(config: AppConfig): string {
  return `http://127.0.0.1:${config.sagas.referenceServicesPort}`;
}

/** Loads the manifest the configuration names (`EFFECTS_MANIFEST`, else the bundled one). */
export function effectsManifestFromConfig(config: AppConfig): EffectsManifest {
  return loadEffectsManifest({
    path: config.sagas.effectsManifestPath,
    referenceServicesUrl: referenceServicesUrlOf(config),
  });
}

/**
 * Checks that every effect a saga declares has a provider in the manifest: a saga calling an undeclared effect
 * would fail at run time, so it is a start-up error.
 * @throws EffectsManifestError naming each saga and effect missing from the manifest.
 */
export function assertSagaEffectsDeclared(
  manifest: Pick<EffectsManifest, 'source' | 'providers'>,
  sagas: readonly Pick<SagaDefinition, 'name' | 'effects'>[],
): void {
  const problems = sagas.flatMap((saga) =>
    saga.effects
      .filter((effect) => !manifest.providers.has(effect))
      .map((effect) => `the saga ${saga.name} calls the effect ${effect}, which no provider declares`),
  );
  if (problems.length > 0) throw new EffectsManifestError(manifest.source, problems);
}

/** The delay before the attempt after `attempt` (1-based), by the retry policy: exponential, capped. */
export function backoffDelayMs(retry: RetrySettings, attempt: number): number {
  const delay = retry.initialIntervalMs * retry.backoffCoefficient ** Math.max(0, attempt - 1);
  return Math.min(retry.maximumIntervalMs, Math.round(delay));
}

/** Whether `attempt` is the last the retry policy allows (never, with 0 maximum attempts). */
export function isLastAttempt(retry: RetrySettings, attempt: number): boolean {
  return retry.maximumAttempts > 0 && attempt >= retry.maximumAttempts;
}

/**
 * Checks that the Gateway and any provider on its upstream agree on the breaker: both call one origin, and one
 * breaker guards one upstream.
 * @throws EffectsManifestError naming each provider whose breaker differs from `gateway.breaker`.
 */
export function assertGatewayBreakerShared(manifest: EffectsManifest, gatewayUrl: string): void {
  const gatewayOrigin = new URL(gatewayUrl).origin;
  const problems = [...manifest.providers.values()]
    .filter(
      (provider) => provider.upstream === gatewayOrigin && !sameBreaker(provider.breaker, manifest.gateway.breaker),
    )
    .map(
      (provider) =>
        `gateway.breaker must equal the breaker of ${provider.name}: both call ${gatewayOrigin}, and one breaker guards one upstream`,
    );
  if (problems.length > 0) throw new EffectsManifestError(manifest.source, problems);
}

/**
 * The manifest the effect and Gateway-command activities read on every call, so a reload (`/admin/reload`) takes
 * effect without restarting the worker: calls in flight finish with the manifest they started with, the next ones
 * use the new one, and the breaker of an upstream whose settings changed is rebuilt (closed) on its next call.
 */
export interface EffectsManifestSource {
  /** The manifest in use. */
  current(): EffectsManifest;
  /**
   * Puts `next` in use. With a Gateway URL given to the source, `next` is checked first (see
   * {@link assertGatewayBreakerShared}) and a manifest that fails the check is not put in use.
   * @throws EffectsManifestError when `next` fails the check; the current manifest stays.
   */
  replace(next: EffectsManifest): void;
}

/**
 * Creates a source holding `initial`.
 * @throws EffectsManifestError when `options.gatewayUrl` is given and `initial` fails the Gateway breaker check.
 */
export function createEffectsManifestSource(
  initial: EffectsManifest,
  options: { gatewayUrl?: string } = {},
): EffectsManifestSource {
  const check = (manifest: EffectsManifest) => {
    if (options.gatewayUrl !== undefined) assertGatewayBreakerShared(manifest, options.gatewayUrl);
  };
  check(initial);
  let manifest = initial;
  return {
    current: () => manifest,
    replace(next) {
      check(next);
      manifest = next;
    },
  };
}
