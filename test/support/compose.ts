/**
 * docker-compose.yml read the way Compose reads it — YAML with merge keys, then `${VAR}` interpolation with the host's
 * variables — and the pieces of a service the tests use: its environment, dependencies, ports, bind mounts and
 * command. The compose file test checks the wiring with it; the production-topology test runs the services'
 * environments with it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository root, which the compose file's relative paths start from. */
export const COMPOSE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Variables of the host `docker compose` runs in. */
export type Env = Record<string, string | undefined>;
/** A service's `environment`: a map or a list of `NAME=value`. */
export type Environment = Record<string, string | number | boolean | null> | string[];
/** A service's `depends_on`: a list, or a map of conditions. */
export type DependsOn = string[] | Record<string, { condition?: string }>;
/** One entry of a service's `ports`. */
export type Port = string | number | { target: number; published?: string | number };
/** One entry of a service's `volumes`. */
export type Volume = string | { type?: string; source?: string; target: string };

/** The parts of a service the tests read. */
export interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Environment;
  ports?: Port[];
  depends_on?: DependsOn;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
  volumes?: Volume[];
  stop_grace_period?: string;
}

/** A compose file, parsed. */
export interface ComposeFile {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** A `${VAR...}` reference that cannot be resolved. */
export class InterpolationError extends Error {
  override name = 'InterpolationError';
}

/** `$$`, `${VAR…}` and `$VAR`. */
export const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose interpolation of one value: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and kin. */
export function interpolate(text: string, env: Env): string {
  return text.replace(
    REFERENCE,
    (match: string, braced: string | undefined, op: string | undefined, arg: string | undefined, bare?: string) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare)!;
      const value = env[name];
      const set = value !== undefined;
      const nonEmpty = set && value !== '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return nonEmpty ? value : (arg ?? '');
        case '-':
          return set ? value : (arg ?? '');
        case ':?':
        case '?':
          if (op === ':?' ? !nonEmpty : !set) throw new InterpolationError(`${name}: ${arg || 'required'}`);
          return value!;
        case ':+':
          return nonEmpty ? (arg ?? '') : '';
        default:
          return set ? (arg ?? '') : '';
      }
    },
  );
}

/** {@link interpolate} over every string of a parsed file. */
export function interpolateDeep(value: unknown, env: Env): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((item: unknown) => interpolateDeep(item, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolateDeep(item, env)]));
  }
  return value;
}

/** Every `${...}` reference of a parsed file: variable name and operator. */
export function references(value: unknown, found: { name: string; op: string | undefined }[] = []) {
  if (typeof value === 'string') {
    for (const match of value.matchAll(REFERENCE)) {
      if (match[0] !== '$$') found.push({ name: (match[1] ?? match[4])!, op: match[2] });
    }
  } else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) references(item, found);
  }
  return found;
}

/** A service's environment as a map (list entries split at the first `=`; null values empty). */
export function environmentOf(service: Service): Record<string, string> {
  const env = service.environment;
  if (!env) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]));
}

/** `depends_on` as service name → condition (the short list form means `service_started`). */
export function dependenciesOf(service: Service): Record<string, string> {
  const deps = service.depends_on;
  if (!deps) return {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, dep.condition ?? 'service_started']));
}

/** Published ports as host → container pairs. */
export function publishedPorts(service: Service): { published: number; target: number }[] {
  return (service.ports ?? []).flatMap((port) => {
    if (typeof port === 'object') {
      return port.published === undefined ? [] : [{ published: Number(port.published), target: port.target }];
    }
    const parts = String(port).split('/')[0]!.split(':');
    if (parts.length < 2) return [];
    return [{ published: Number(parts.at(-2)), target: Number(parts.at(-1)) }];
  });
}

/** Bind mounts as host path (relative to the project) → container path. */
export function bindMounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).flatMap((volume) => {
    const [source, target] =
      typeof volume === 'string' ? volume.split(':') : [volume.type === 'bind' ? volume.source : '', volume.target];
    return source && target && /^\.{0,2}\//.test(source) ? [{ source, target }] : [];
  });
}

/** A command or entrypoint as argument list (the string form split at blanks, as Compose does). */
export function argv(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/).filter(Boolean);
}

/** The compose file as written, merge keys resolved, before interpolation. */
export function parseComposeFile(): { text: string; raw: ComposeFile } {
  const text = readFileSync(join(COMPOSE_ROOT, 'docker-compose.yml'), 'utf8');
  return { text, raw: (parse(text, { merge: true }) ?? {}) as ComposeFile };
}

/**
 * The compose file as written and interpolated with `hostEnv`.
 * @throws InterpolationError when a `${VAR:?message}` variable is missing from `hostEnv`.
 */
export function readComposeFile(hostEnv: Env): { text: string; raw: ComposeFile; compose: ComposeFile } {
  const { text, raw } = parseComposeFile();
  return { text, raw, compose: interpolateDeep(raw, hostEnv) as ComposeFile };
}

/** The service `name` of `file`. */
export function serviceOf(file: ComposeFile, name: string): Service {
  const found = file.services?.[name];
  if (!found) throw new Error(`docker-compose.yml has no "${name}" service`);
  return found;
}
