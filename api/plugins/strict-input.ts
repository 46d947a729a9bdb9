/**
 * Strict input: the request validator of the API, given to Fastify as its validator factory
 * (`schemaController: { compilersFactory: { buildValidator: strictValidatorFactory() } }`).
 *
 * - Bodies are validated without type coercion (`"3"` is not an integer, `"x"` not an array, `null` not a number);
 *   query strings, path parameters and headers, which arrive as text, keep Ajv's coercion.
 * - What Postgres would refuse is refused here, for every route at once: no string anywhere in a body, query string,
 *   path or header (values and property names, however deeply nested) may contain the NUL character, and a
 *   `date-time` must be one Postgres can store (years 1–9999, UTC offsets up to ±15:59).
 *
 * Failures are ordinary validation errors: 400 `ValidationFailed` with a field error per failing field.
 */
import { AjvCompiler, type Ajv, type Options as AjvOptions, type ValidatorFactory } from '@fastify/ajv-compiler';

/** RFC 3339 date-time as Ajv's `date-time` format reads it (offset `±hh`, `±hhmm` or `±hh:mm`). */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):[0-5]\d(?:\.\d+)?(?:Z|[+-](\d{2})(?::?(\d{2}))?)$/i;

/** Days of `month` (1–12) in `year`. */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Whether `value` is an RFC 3339 date-time that Postgres stores in a `timestamptz` and JavaScript's `Date.parse` reads
 * (workflows compute deadlines from them): a real calendar date from year 1 (Postgres has no year 0), a time of day
 * without leap second, and an offset of at most ±15:59.
 */
export function isPostgresDateTime(value: string): boolean {
  const match = DATE_TIME.exec(value);
  if (!match) return false;
  const [year, month, day, hour, offsetHours] = [match[1], match[2], match[3], match[4], match[6]].map((field) =>
    Number(field ?? 0),
  );
  // `Date.parse` refuses what is not a date-time at all (month 13, minute 60, offset minutes 60, …) but takes year 0,
  // 24:00, 30 February and offsets up to ±23:59, which Postgres refuses or reads as another instant.
  return (
    !Number.isNaN(Date.parse(value)) &&
    year! >= 1 &&
    day! <= daysInMonth(year!, month!) &&
    hour! <= 23 &&
    offsetHours! <= 15
  );
}

/** A validation error in Ajv's shape, as the error mapping reads it. */
export interface InputError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
}

const NUL = '\u0000';
const escapePointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');
const nulError = (instancePath: string, message: string): InputError => ({
  keyword: 'noNul',
  instancePath,
  schemaPath: '#/noNul',
  params: {},
  message,
});

/**
 * One error per string of `data` that contains the NUL character (which Postgres `text` and `jsonb` cannot hold), and
 * per object with such a property name, in document order. Iterative, so any nesting depth is safe.
 */
export function nulErrors(data: unknown): InputError[] {
  const errors: InputError[] = [];
  const pending: [string, unknown][] = [['', data]];
  while (pending.length > 0) {
    const [path, value] = pending.pop()!;
    if (typeof value === 'string') {
      if (value.includes(NUL)) errors.push(nulError(path, 'must not contain the NUL character (U+0000)'));
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.some(([key]) => key.includes(NUL))) {
        errors.push(nulError(path, 'must not have a property name that contains the NUL character (U+0000)'));
      }
      // Reversed onto the stack, so they come off in document order.
      for (const [key, child] of entries.reverse()) pending.push([`${path}/${escapePointer(key)}`, child]);
    }
  }
  return errors;
}

/** What Fastify passes the validator compiler for one schema of a route. */
interface RouteSchema {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}

/** A compiled Ajv validator (with `schemaEnv`, so Fastify lets it coerce a request part's root value). */
interface Validator {
  (data: unknown, context?: object): boolean;
  errors?: unknown[] | null;
  schemaEnv?: unknown;
}

/**
 * Whether `data` may hold a NUL anywhere: JSON escapes it as `\u0000`, so one native serialisation rules out the
 * common case before the walk of {@link nulErrors} (a literal backslash-u text only costs that walk).
 */
function mayHoldNul(data: unknown): boolean {
  return JSON.stringify(data ?? null).includes('\\u0000');
}

/** `validate` with the NUL check: its schema errors and the NUL errors of the data, together. */
function withNulCheck(validate: Validator): Validator {
  const strict: Validator = (data, context) => {
    const nul = mayHoldNul(data) ? nulErrors(data) : [];
    // Ajv sets `errors` whenever it returns false.
    const errors = validate(data, context) ? nul : [...validate.errors!, ...nul];
    strict.errors = errors;
    return errors.length === 0;
  };
  strict.schemaEnv = validate.schemaEnv;
  return strict;
}

/** Ajv options of every request part: all errors at once, nothing removed silently, defaults applied. */
const AJV_OPTIONS: AjvOptions = { allErrors: true, removeAdditional: false, useDefaults: true };

/**
 * The validator factory of the API (Fastify's `schemaController.compilersFactory.buildValidator`): Fastify's own Ajv
 * compiler, one Ajv without coercion for bodies and one with it for the other parts, both with the Postgres
 * `date-time` format and the NUL check. One factory per Fastify instance.
 */
export function strictValidatorFactory(): ValidatorFactory {
  const pool = AjvCompiler();
  const onCreate = (ajv: Ajv) => {
    ajv.addFormat('date-time', { type: 'string', validate: isPostgresDateTime });
  };
  const factory = (externalSchemas: Record<string, object>) => {
    const body = pool(externalSchemas, { customOptions: { ...AJV_OPTIONS, coerceTypes: false }, onCreate });
    const text = pool(externalSchemas, { customOptions: { ...AJV_OPTIONS, coerceTypes: 'array' }, onCreate });
    return (route: RouteSchema): Validator => {
      const compile = (route.httpPart === 'body' ? body : text) as unknown as (route: RouteSchema) => Validator;
      return withNulCheck(compile(route));
    };
  };
  // Fastify's declared type describes a plain Ajv compile; at run time it calls the result with the route schema.
  return factory as unknown as ValidatorFactory;
}
