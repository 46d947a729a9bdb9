/**
 * The production-like stack (docker-compose.yml, Dockerfile, docker/). No Docker engine runs the tests, so the
 * files are read the way Compose reads them — YAML with merge keys, then `${VAR}` interpolation — and checked
 * for what makes the stack start in order and reach itself: names, ports, addresses, databases, start
 * conditions, and an environment the application's own configuration accepts. That the configuration also works,
 * on the production Temporal server, is test/integration/production-topology.test.ts, which runs the same
 * services' environments.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  applicationRoleOf,
  loadConfig,
  migrationDatabaseUrlOf,
  natsServersOf,
  TASK_QUEUES,
  WORKER_MODES,
} from '../../core/config.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/shared/search-attributes.js';
import {
  argv,
  bindMounts,
  dependenciesOf,
  environmentOf,
  interpolateDeep,
  publishedPorts,
  readComposeFile,
  references,
  serviceOf,
  type ComposeFile,
  type Service,
} from '../support/compose.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Services a reviewer expects, by role. */
const POSTGRES = 'postgres';
/** The one-shot that creates the application role (also on volumes the init script no longer runs on). */
const POSTGRES_ROLES = 'postgres-roles';
const TEMPORAL = 'temporal';
const SEARCH_ATTRIBUTES = 'temporal-search-attributes';
const TEMPORAL_UI = 'temporal-ui';
const NATS = 'nats';
/** The one-shot that creates the JetStream streams of sagas before any app process starts. */
const NATS_STREAMS = 'nats-streams';
/** One worker service per mode that a deployment runs (`combined` is for single-process runs). */
const WORKERS = ['worker-saga', 'worker-effect'] as const;
/** The services that run the product: one-shots, workers and the API. */
const APP_SERVICES = ['migrate', NATS_STREAMS, ...WORKERS, 'api'] as const;
/** The long-running app services. */
const RUNNING_SERVICES = [...WORKERS, 'api'] as const;
const REQUIRED_SERVICES = [POSTGRES, POSTGRES_ROLES, TEMPORAL, SEARCH_ATTRIBUTES, TEMPORAL_UI, NATS, ...APP_SERVICES];
const TEMPORAL_ADDRESS = 'temporal:7233';
const NATS_URL = 'nats://nats:4222';

/** Every environment variable core/config.ts reads (checked against its source below). */
const CONFIG_VARIABLES = [
  'NODE_ENV',
  'LOG_LEVEL',
  'DATA_DIR',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_DEV_PORT',
  'TEMPORAL_UI_PORT',
  'TEMPORAL_DEV_IP',
  'DATABASE_URL',
  'DATABASE_MIGRATION_URL',
  'PG_EMBEDDED_PORT',
  'PG_POOL_MAX',
  'API_HOST',
  'API_PORT',
  'WORKER_QUEUES',
  'WORKER_MODE',
  'WORKER_OPS_HOST',
  'WORKER_OPS_PORT',
  'NATS_URL',
  'NATS_BRIDGE',
  'NATS_CREATE_STREAMS',
  'GATEWAY_URL',
  'EFFECTS_MANIFEST',
  'AUTH_JWT_ISSUER',
  'AUTH_JWT_AUDIENCE',
  'AUTH_JWT_PUBLIC_KEY',
  'AUTH_JWKS_URL',
  'SELF_CHECK_TENANT',
  'POLICY_ENGINE_URL',
  'PUBLIC_BASE_URL',
  'PACK_EVENTS_SIGNING_SECRETS',
  'APPROVAL_LINK_SECRET',
  'PAYLOAD_CODEC_KEYS',
  'SMTP_URL',
  'MAIL_FROM',
  'POLICY_ENGINE_PORT',
  'POLICY_SIMULATION_METRICS_WINDOW',
  'POLICY_SIMULATION_TIMEOUT_SECONDS',
];
const AUTH_KEY_VARIABLES = ['AUTH_JWKS_URL', 'AUTH_JWT_PUBLIC_KEY'];

/** `--type` values of `temporal operator search-attribute create` for the SDK's types. */
const CLI_SEARCH_ATTRIBUTE_TYPE: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** What the host environment of `docker compose up` provides in these tests. */
const HOST_ENV: Record<string, string> = {
  AUTH_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  AUTH_JWT_ISSUER: 'https://idp.example.com',
  POLICY_ENGINE_URL: 'https://policy-engine.example.com',
  PACK_EVENTS_SIGNING_SECRETS: 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=',
  APPROVAL_LINK_SECRET: 'a-long-link-secret',
  PAYLOAD_CODEC_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  STELLAOPS_DB_PASSWORD: 'owner-secret',
  STELLAOPS_APP_DB_PASSWORD: 'app-secret',
  TEMPORAL_DB_PASSWORD: 'temporal-secret',
  GATEWAY_URL: 'https://gateway.example.com',
  EFFECTS_MANIFEST_FILE: './samples/sagas/effects-manifest.yaml',
};

function imageTag(image: string): string | undefined {
  const name = image.split('@')[0]!;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > lastSlash ? name.slice(colon + 1) : undefined;
}

/** Compose durations (`45s`, `1m30s`, `500ms`) in seconds. */
function seconds(duration: string | undefined): number {
  if (!duration) return 10; // Compose's default stop grace period
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    total += Number(amount) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile, read instruction by instruction.

interface Instruction {
  keyword: string;
  args: string;
}

function dockerfileInstructions(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

/** Exec-form (`["a", "b"]`) or shell-form arguments as a list. */
function execArgs(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

// ---------------------------------------------------------------------------------------------------------------

const { text: composeText, raw, compose } = readComposeFile(HOST_ENV);
const dockerfile = existsSync(join(ROOT, 'Dockerfile')) ? dockerfileInstructions(read('Dockerfile')) : [];

function service(name: string, file: ComposeFile = compose): Service {
  return serviceOf(file, name);
}

/** The Dockerfile's final stage (the image the app services run). */
function finalStage(): Instruction[] {
  const lastFrom = dockerfile.map((i) => i.keyword).lastIndexOf('FROM');
  return lastFrom < 0 ? [] : dockerfile.slice(lastFrom);
}

const imageHasHealthcheck = (): boolean =>
  finalStage().some((i) => i.keyword === 'HEALTHCHECK' && !/^NONE\b/i.test(i.args));

/** Whether Compose can ever see the service healthy (its own check, or the app image's). */
function hasHealthcheck(s: Service): boolean {
  if (s.healthcheck?.disable) return false;
  if (s.healthcheck?.test) return !(Array.isArray(s.healthcheck.test) && s.healthcheck.test[0] === 'NONE');
  return s.build !== undefined && imageHasHealthcheck();
}

/** Full command line of an app service: its command, or the image's CMD. */
function appCommand(name: string): string[] {
  const s = service(name);
  const entrypoint = argv(s.entrypoint);
  const command = argv(s.command);
  if (command.length > 0 || entrypoint.length > 0) return [...entrypoint, ...command];
  const cmd = finalStage().findLast((i) => i.keyword === 'CMD');
  return cmd ? execArgs(cmd.args) : [];
}

/** Databases and roles the postgres init scripts create, plus the image's own POSTGRES_DB/POSTGRES_USER. */
function postgresInit(): { databases: Set<string>; roles: Set<string>; scripts: string } {
  const pg = service(POSTGRES);
  const env = environmentOf(pg);
  const user = env.POSTGRES_USER || 'postgres';
  const databases = new Set([env.POSTGRES_DB || user]);
  const roles = new Set([user]);
  let scripts = '';
  for (const mount of bindMounts(pg).filter((m) => m.target.startsWith('/docker-entrypoint-initdb.d'))) {
    const path = join(ROOT, mount.source);
    const files = statSync(path).isDirectory() ? readdirSync(path).map((f) => join(path, f)) : [path];
    for (const file of files.filter((f) => /\.(sh|sql)$/.test(f))) scripts += readFileSync(file, 'utf8') + '\n';
  }
  for (const [, name] of scripts.matchAll(/CREATE\s+DATABASE\s+"?([a-z_][a-z0-9_]*)"?/gi)) databases.add(name!);
  for (const [, name] of scripts.matchAll(/CREATE\s+(?:ROLE|USER)\s+"?([a-z_][a-z0-9_]*)"?/gi)) roles.add(name!);
  return { databases, roles, scripts };
}

describe('docker-compose.yml', () => {
  it('defines the services of the stack', () => {
    expect(Object.keys(compose.services ?? {})).toEqual(expect.arrayContaining(REQUIRED_SERVICES));
  });

  it('pins every image to an explicit version', () => {
    for (const [name, s] of Object.entries(compose.services ?? {})) {
      expect(s.image, `${name} has no image`).toEqual(expect.any(String));
      const tag = imageTag(s.image!);
      expect(tag, `${name}: ${s.image} has no tag`).toBeDefined();
      expect(tag, `${name}: ${s.image}`).not.toBe('latest');
      // Registry images need at least major.minor; the app image is built here (`build`) under a local tag.
      if (s.build === undefined) expect(tag, `${name}: ${s.image} is not version-pinned`).toMatch(/^\d+\.\d+/);
    }
  });

  it('runs every app service from one image built from the Dockerfile', () => {
    const images = new Set(APP_SERVICES.map((name) => service(name).image));
    expect(images.size).toBe(1);
    for (const name of APP_SERVICES) expect(service(name).build, `${name} has no build`).toBeDefined();
  });

  it('uses host variables only with a default or a loud failure', () => {
    for (const { name, op } of references(raw)) {
      expect([':-', '-', ':?', '?'], `\${${name}} has neither a default nor an error message`).toContain(op);
    }
  });

  it('publishes the API on 3000, the Temporal UI on 8233 and Temporal gRPC on 7233', () => {
    expect(publishedPorts(service('api'))).toContainEqual({ published: 3000, target: 3000 });
    expect(publishedPorts(service(TEMPORAL_UI))).toContainEqual({ published: 8233, target: 8080 });
    expect(publishedPorts(service(TEMPORAL))).toContainEqual({ published: 7233, target: 7233 });

    const api = environmentOf(service('api'));
    expect(api.API_HOST).toBe('0.0.0.0');
    expect(Number(api.API_PORT)).toBe(3000);

    const hostPorts = Object.values(compose.services ?? {}).flatMap((s) => publishedPorts(s).map((p) => p.published));
    expect(new Set(hostPorts).size, 'a host port is published twice').toBe(hostPorts.length);
  });

  it('points the app services at the postgres service and a database its init creates', () => {
    const { databases } = postgresInit();
    for (const name of APP_SERVICES) {
      const env = environmentOf(service(name));
      for (const variable of ['DATABASE_URL', ...(env.DATABASE_MIGRATION_URL ? ['DATABASE_MIGRATION_URL'] : [])]) {
        const url = new URL(env[variable] ?? '');
        expect(url.protocol, `${name}: ${variable}`).toMatch(/^postgres(ql)?:$/);
        expect(url.hostname, `${name}: ${variable} host`).toBe(POSTGRES);
        expect(url.port || '5432', `${name}: ${variable}`).toBe('5432');
        expect([...databases], `${name}: database of ${variable}`).toContain(url.pathname.slice(1));
      }
    }
  });

  it('runs migrations as the owner of the database and the worker and the API as the application role', () => {
    const { roles, scripts } = postgresInit();
    const owner = /CREATE\s+DATABASE\s+"?stellaops"?\s+OWNER\s+"?([a-z_][a-z0-9_]*)"?/i.exec(scripts)?.[1];
    expect(owner, 'the init script creates the stellaops database with an owner').toBeDefined();
    expect([...roles]).toContain(owner);
    const userOf = (url: string | undefined) => decodeURIComponent(new URL(url ?? '').username);
    const passwordOf = (url: string | undefined) => decodeURIComponent(new URL(url ?? '').password);

    // Only migrate holds the owner's credentials; its password is the one the init script sets.
    const migrate = environmentOf(service('migrate'));
    expect(userOf(migrate.DATABASE_MIGRATION_URL)).toBe(owner);
    expect(passwordOf(migrate.DATABASE_MIGRATION_URL)).toBe(HOST_ENV.STELLAOPS_DB_PASSWORD);
    expect(environmentOf(service(POSTGRES)).STELLAOPS_DB_PASSWORD).toBe(HOST_ENV.STELLAOPS_DB_PASSWORD);
    expect(scripts).toContain('STELLAOPS_DB_PASSWORD');
    for (const name of APP_SERVICES.filter((n) => n !== 'migrate')) {
      expect(environmentOf(service(name)).DATABASE_MIGRATION_URL, `${name} has the owner's credentials`).toBe(
        undefined,
      );
    }

    // Every app service connects as one application role, which the roles job creates with the same password.
    const application = new Set(APP_SERVICES.map((name) => userOf(environmentOf(service(name)).DATABASE_URL)));
    expect(application.size).toBe(1);
    const [appRole] = [...application];
    expect(appRole).not.toBe(owner);
    for (const name of APP_SERVICES) {
      expect(passwordOf(environmentOf(service(name)).DATABASE_URL), name).toBe(HOST_ENV.STELLAOPS_APP_DB_PASSWORD);
    }
    expect(loadConfig(migrate).database.migrationUrl).toBe(migrate.DATABASE_MIGRATION_URL);
    expect(applicationRoleOf(loadConfig(migrate)), 'migrate grants the application role').toBe(appRole);
    expect(userOf(migrationDatabaseUrlOf(loadConfig(migrate)))).toBe(owner);

    const job = service(POSTGRES_ROLES);
    const jobEnv = environmentOf(job);
    const sql = [...argv(job.entrypoint), ...argv(job.command)].join('\n');
    expect(job.image).toBe(service(POSTGRES).image);
    expect(jobEnv.PGHOST).toBe(POSTGRES);
    expect(jobEnv.PGUSER).toBe(environmentOf(service(POSTGRES)).POSTGRES_USER);
    expect(jobEnv.STELLAOPS_APP_DB_PASSWORD).toBe(HOST_ENV.STELLAOPS_APP_DB_PASSWORD);
    expect(sql).toContain(`CREATE ROLE ${appRole}`);
    // Idempotent, and never a superuser or an owner of anything.
    expect(sql).toMatch(new RegExp(`WHERE NOT EXISTS \\(SELECT FROM pg_roles WHERE rolname = '${appRole}'\\)`));
    expect(sql).toMatch(new RegExp(`ALTER ROLE ${appRole} LOGIN NOSUPERUSER[^;]*PASSWORD`));
    expect(sql).not.toMatch(/\bOWNER\b|\bGRANT\b/);
    expect(dependenciesOf(job)[POSTGRES]).toBe('service_healthy');
    expect(dependenciesOf(service('migrate'))[POSTGRES_ROLES]).toBe('service_completed_successfully');
    expect(['always', 'unless-stopped']).not.toContain(job.restart);
  });

  it('keeps postgres data on a named volume and checks readiness with pg_isready', () => {
    const pg = service(POSTGRES);
    expect(pg.image).toMatch(/^postgres:16(\.|-|$)/);
    const data = (pg.volumes ?? []).find(
      (v): v is string => typeof v === 'string' && v.endsWith(':/var/lib/postgresql/data'),
    );
    expect(data, 'no volume on /var/lib/postgresql/data').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.split(':')[0]);
    expect(argv(pg.healthcheck?.test).join(' ')).toContain('pg_isready');
  });

  it('connects Temporal (auto-setup, postgres12) to the postgres service and databases it can use', () => {
    const temporal = service(TEMPORAL);
    const env = environmentOf(temporal);
    const { databases, roles, scripts } = postgresInit();
    expect(temporal.image).toMatch(/^temporalio\/auto-setup:/);
    expect(env.DB).toBe('postgres12');
    expect(env.POSTGRES_SEEDS).toBe(POSTGRES);
    expect(env.DB_PORT ?? '5432').toBe('5432');
    expect([...roles]).toContain(env.POSTGRES_USER);
    expect(env.POSTGRES_PWD).toBe(HOST_ENV.TEMPORAL_DB_PASSWORD);
    expect(environmentOf(service(POSTGRES)).TEMPORAL_DB_PASSWORD).toBe(HOST_ENV.TEMPORAL_DB_PASSWORD);
    expect(scripts).toContain('TEMPORAL_DB_PASSWORD');
    if (env.SKIP_DB_CREATE === 'true') {
      // auto-setup will not create them: the postgres init must.
      expect([...databases]).toContain(env.DBNAME ?? 'temporal');
      expect([...databases]).toContain(env.VISIBILITY_DBNAME ?? 'temporal_visibility');
    }
    expect(dependenciesOf(temporal)[POSTGRES]).toBe('service_healthy');
  });

  it('addresses Temporal as temporal:7233 from the app services, the UI and the setup job', () => {
    for (const name of [...APP_SERVICES, TEMPORAL_UI, SEARCH_ATTRIBUTES]) {
      expect(environmentOf(service(name)).TEMPORAL_ADDRESS, name).toBe(TEMPORAL_ADDRESS);
    }
    expect(TEMPORAL_ADDRESS.split(':')[0]).toBe(TEMPORAL);
  });

  it('starts the workers and the API only after migrations, search attributes and streams succeeded', () => {
    for (const name of RUNNING_SERVICES) {
      const deps = dependenciesOf(service(name));
      expect(deps.migrate, `${name} → migrate`).toBe('service_completed_successfully');
      expect(deps[SEARCH_ATTRIBUTES], `${name} → ${SEARCH_ATTRIBUTES}`).toBe('service_completed_successfully');
      expect(deps[TEMPORAL], `${name} → temporal`).toBe('service_healthy');
      expect(deps[NATS_STREAMS], `${name} → ${NATS_STREAMS}`).toBe('service_completed_successfully');
    }
    expect(dependenciesOf(service('migrate'))[POSTGRES]).toBe('service_healthy');
    expect(dependenciesOf(service(NATS_STREAMS))[NATS]).toBe('service_healthy');
    expect(dependenciesOf(service(TEMPORAL_UI))).toHaveProperty(TEMPORAL);
  });

  it('has a dependency graph Compose can satisfy', () => {
    const services = compose.services ?? {};
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, condition] of Object.entries(dependenciesOf(s))) {
        const target = services[dep];
        expect(target, `${name} depends on unknown service ${dep}`).toBeDefined();
        if (condition === 'service_healthy') {
          expect(hasHealthcheck(target!), `${name} waits for ${dep} to be healthy: it has no health check`).toBe(true);
        }
        if (condition === 'service_completed_successfully') {
          // A one-shot that restarts forever never "completes" for its dependents.
          expect(['always', 'unless-stopped'], `${dep} is one-shot`).not.toContain(target!.restart);
        }
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, path: string[]): void => {
      if (done.has(name)) return;
      expect(visiting.has(name), `dependency cycle: ${[...path, name].join(' → ')}`).toBe(false);
      visiting.add(name);
      for (const dep of Object.keys(dependenciesOf(services[name] ?? {}))) visit(dep, [...path, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of Object.keys(services)) visit(name, []);
  });

  it('registers the TenantId Keyword search attribute in the namespace the app uses, idempotently', () => {
    const job = service(SEARCH_ATTRIBUTES);
    expect(job.image).toMatch(/^temporalio\/admin-tools:/);
    expect(dependenciesOf(job)[TEMPORAL]).toBe('service_healthy');
    const command = [...argv(job.entrypoint), ...argv(job.command)];
    expect(command.join(' ')).toContain('TenantId');
    expect(command.join(' ')).toContain('Keyword');
    for (const key of SEARCH_ATTRIBUTE_KEYS) {
      expect(command, `search attribute ${key.name} is not registered`).toContain(
        `${key.name}=${CLI_SEARCH_ATTRIBUTE_TYPE[key.type]}`,
      );
    }
    const jobEnv = environmentOf(job);
    for (const name of APP_SERVICES) {
      expect(jobEnv.TEMPORAL_NAMESPACE, `namespace of ${name}`).toBe(environmentOf(service(name)).TEMPORAL_NAMESPACE);
    }
    expect(jobEnv.TEMPORAL_ADDRESS).toBe(TEMPORAL_ADDRESS);
    // The script it runs is mounted from the repository and uses the CLI's create command.
    const mount = bindMounts(job).find((m) => command.includes(m.target));
    expect(mount, 'the registration script is not mounted').toBeDefined();
    const lines = read(mount!.source)
      .replace(/\\\n\s*/g, ' ')
      .split('\n');
    const create = lines.find((line) => line.includes('temporal operator search-attribute create'));
    expect(create, 'the script does not run `temporal operator search-attribute create`').toBeDefined();
    expect(create).toMatch(/--name\b.*--type\b/);
    expect(
      lines.some((line) => line.includes('temporal operator search-attribute list')),
      'an existing attribute must not fail the job',
    ).toBe(true);
  });

  it('creates the namespace with its retention in the registration job, not in auto-setup', () => {
    const job = service(SEARCH_ATTRIBUTES);
    const mount = bindMounts(job).find((m) => argv(job.entrypoint).includes(m.target));
    const script = read(mount!.source).replace(/\\\n\s*/g, ' ');
    expect(script).toMatch(
      /temporal operator namespace create .*--namespace "\$namespace" .*--retention "\$retention"/,
    );
    expect(script).toContain('TEMPORAL_NAMESPACE_RETENTION');
    expect(environmentOf(job).TEMPORAL_NAMESPACE_RETENTION).toMatch(/^\d+h$/);
    // auto-setup would race the job to create it.
    expect(environmentOf(service(TEMPORAL)).SKIP_DEFAULT_NAMESPACE_CREATION).toBe('true');
  });

  it('requires an auth key for every production service, so a missing key fails loudly', () => {
    const production = Object.entries(raw.services ?? {}).filter(([, s]) => environmentOf(s).NODE_ENV === 'production');
    expect(production.map(([name]) => name)).toEqual(expect.arrayContaining([...APP_SERVICES]));
    for (const [name, s] of production) {
      const env = environmentOf(s);
      const keys = AUTH_KEY_VARIABLES.filter((key) => new RegExp(`^\\$\\{${key}:?\\?[^}]+\\}$`).test(env[key] ?? ''));
      expect(keys, `${name} must take AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY as \${VAR:?message}`).not.toHaveLength(0);
    }
    for (const key of AUTH_KEY_VARIABLES.filter((k) => composeText.includes(`\${${k}:?`))) {
      const env = { ...HOST_ENV, [key]: undefined };
      expect(() => interpolateDeep(raw, env)).toThrow(new RegExp(key));
    }
  });

  it('gives the app services only variables the configuration reads, with values it accepts', () => {
    const configSource = read('core/config.ts') + read('core/temporal-connection.ts');
    for (const name of CONFIG_VARIABLES) expect(configSource, `core/config.ts reads ${name}`).toContain(`'${name}'`);

    for (const name of APP_SERVICES) {
      const env = environmentOf(service(name));
      const unknown = Object.keys(env).filter((key) => !CONFIG_VARIABLES.includes(key));
      expect(unknown, `${name} sets variables nothing reads`).toEqual([]);

      const config = loadConfig(env);
      expect(config.env, name).toBe('production');
      expect(config.temporal.address, name).toBe(TEMPORAL_ADDRESS);
      expect(config.auth.useLocalKey, name).toBe(false);
      expect(new URL(config.database.url!).hostname, name).toBe(POSTGRES);
    }
    expect(loadConfig(environmentOf(service('api'))).api).toEqual({ host: '0.0.0.0', port: 3000 });
  });

  it('runs one worker service per mode, together serving every task queue, the bridge only in saga mode', () => {
    const configs = WORKERS.map((name) => ({ name, config: loadConfig(environmentOf(service(name))) }));
    const modes = configs.map(({ config }) => config.worker.mode);
    expect(new Set(modes).size, 'two worker services of one mode').toBe(modes.length);
    expect(modes).toEqual(expect.arrayContaining(WORKER_MODES.filter((mode) => mode !== 'combined')));
    expect(new Set(configs.flatMap(({ config }) => config.worker.queues))).toEqual(new Set(TASK_QUEUES));
    for (const { name, config } of configs) {
      expect(config.nats.bridge.enabled, `${name}: bridge`).toBe(config.worker.mode === 'saga');
      expect(appCommand(name), name).toContain('workers/main.ts');
    }
    expect(configs.find(({ config }) => config.worker.mode === 'saga')?.name).toBe('worker-saga');
  });

  it('checks each worker on its operations port, which listens beyond loopback, at /ready', () => {
    expect(read('workers/ops-server.ts')).toContain("'/ready'");
    for (const name of WORKERS) {
      const s = service(name);
      const config = loadConfig(environmentOf(s));
      expect(config.worker.opsHost, `${name}: the health check runs in the container, not on its loopback only`).toBe(
        '0.0.0.0',
      );
      const check = argv(s.healthcheck?.test).join(' ');
      expect(check, name).toContain(`http://127.0.0.1:${config.worker.opsPort}/ready`);
      expect(argv(s.healthcheck?.test)[0], `${name}: exec form, no shell in the check`).toBe('CMD');
      expect(hasHealthcheck(s), name).toBe(true);
    }
  });

  it('points every app service at the nats service, JetStream on, its store on a named volume', () => {
    for (const name of APP_SERVICES) {
      const config = loadConfig(environmentOf(service(name)));
      expect(config.nats.url, name).toBe(NATS_URL);
      expect(natsServersOf(config).map((server) => new URL(server).hostname)).toEqual([NATS]);
    }
    const nats = service(NATS);
    expect(nats.image).toMatch(/^nats:\d+\.\d+\.\d+-alpine$/);
    const command = argv(nats.command);
    expect(command).toContain('--jetstream');
    const store = command[command.indexOf('--store_dir') + 1];
    const volume = (nats.volumes ?? []).find((v): v is string => typeof v === 'string' && v.endsWith(`:${store}`));
    expect(volume, 'the JetStream store is not on a volume').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume!.split(':')[0]);
    // The health check asks the monitoring port the command opens, and only passes with JetStream up.
    const monitoring = command[command.indexOf('--http_port') + 1];
    expect(argv(nats.healthcheck?.test).join(' ')).toContain(
      `http://127.0.0.1:${monitoring}/healthz?js-enabled-only=true`,
    );
    expect(new URL(NATS_URL).port).toBe('4222');
  });

  it('creates the streams once, in the one-shot, and starts everything else with stream creation off', () => {
    const job = service(NATS_STREAMS);
    expect(appCommand(NATS_STREAMS)).toContain('scripts/saga-streams.ts');
    expect(read('scripts/saga-streams.ts')).toContain('prepareSagaStreams(');
    expect(['always', 'unless-stopped']).not.toContain(job.restart);
    expect(loadConfig(environmentOf(job)).nats.createStreams).toBe(true);
    for (const name of APP_SERVICES.filter((n) => n !== NATS_STREAMS)) {
      expect(loadConfig(environmentOf(service(name))).nats.createStreams, name).toBe(false);
    }
  });

  it('gives the workers the Gateway and an effects manifest mounted from the host', () => {
    for (const name of WORKERS) {
      const s = service(name);
      const config = loadConfig(environmentOf(s));
      expect(config.sagas.gatewayUrl, name).toBe(HOST_ENV.GATEWAY_URL);
      const mount = bindMounts(s).find((m) => m.target === config.sagas.effectsManifestPath);
      expect(mount, `${name}: EFFECTS_MANIFEST is not a mounted file`).toBeDefined();
      expect(mount!.source).toBe(HOST_ENV.EFFECTS_MANIFEST_FILE);
    }
    const env = { ...HOST_ENV, EFFECTS_MANIFEST_FILE: undefined };
    expect(() => interpolateDeep(raw, env)).toThrow(/EFFECTS_MANIFEST_FILE/);
  });

  it('runs migrations, the streams job, the workers and the API from entrypoints that exist', () => {
    const expected = {
      migrate: 'scripts/migrate.ts',
      [NATS_STREAMS]: 'scripts/saga-streams.ts',
      'worker-saga': 'workers/main.ts',
      'worker-effect': 'workers/main.ts',
      api: 'api/server.ts',
    };
    for (const [name, entry] of Object.entries(expected)) {
      expect(appCommand(name), name).toContain(entry);
      expect(existsSync(join(ROOT, entry)), entry).toBe(true);
    }
    expect(['always', 'unless-stopped']).not.toContain(service('migrate').restart);
  });

  it('turns off the image health check where no HTTP server runs', () => {
    if (!imageHasHealthcheck()) return;
    for (const name of ['migrate', NATS_STREAMS]) expect(service(name).healthcheck?.disable, name).toBe(true);
    expect(hasHealthcheck(service('api'))).toBe(true);
  });

  it('lets the workers and the API finish their graceful shutdown before Docker kills them', () => {
    /**
     * The process's shutdown deadline in seconds: a literal `deadlineMs`, or one derived from the worker's grace
     * setting (`(config.worker.shutdownGraceSeconds + N) * 1000`), evaluated with the service's configuration.
     */
    const drain = (path: string, name: string): number => {
      const source = read(path);
      const literal = /installShutdown\(\{[^}]*?deadlineMs:\s*([\d_]+)/.exec(source);
      if (literal) return Number(literal[1]!.replaceAll('_', '')) / 1000;
      const derived = /deadlineMs:\s*\(config\.worker\.shutdownGraceSeconds\s*\+\s*(\d+)\)\s*\*\s*1000/.exec(source);
      expect(derived, `${path} has no shutdown deadline`).not.toBeNull();
      return loadConfig(environmentOf(service(name))).worker.shutdownGraceSeconds + Number(derived![1]);
    };
    for (const name of WORKERS) {
      expect(seconds(service(name).stop_grace_period), name).toBeGreaterThan(drain('workers/main.ts', name));
    }
    expect(seconds(service('api').stop_grace_period)).toBeGreaterThan(drain('api/server.ts', 'api'));
  });
});

describe('Dockerfile', () => {
  it('exists', () => {
    expect(dockerfile.length, 'Dockerfile is missing or empty').toBeGreaterThan(0);
  });

  it('builds on a pinned node 20 bookworm-slim image', () => {
    const args = new Map(
      dockerfile
        .filter((i) => i.keyword === 'ARG' && i.args.includes('='))
        .map((i) => i.args.split('=', 2) as [string, string]),
    );
    const stages = new Set<string>();
    const froms = dockerfile.filter((i) => i.keyword === 'FROM');
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) {
      const [image, as, alias] = from.args
        .replace(/\$\{?(\w+)\}?/g, (_, name: string) => args.get(name) ?? '')
        .split(/\s+/);
      if (!stages.has(image!)) {
        expect(image).toMatch(/^node:20(\.\d+)*-bookworm-slim$/);
        expect(imageTag(image!)).not.toBe('latest');
      }
      if (as?.toUpperCase() === 'AS' && alias) stages.add(alias);
    }
  });

  it('installs from the lockfile with npm ci', () => {
    const ci = dockerfile.findIndex((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    const lock = dockerfile.findIndex((i) => i.keyword === 'COPY' && i.args.includes('package-lock.json'));
    expect(ci, 'no `npm ci`').toBeGreaterThanOrEqual(0);
    expect(lock, 'package-lock.json is not copied before `npm ci`').toBeGreaterThanOrEqual(0);
    expect(lock).toBeLessThan(ci);
  });

  it('runs as a non-root user', () => {
    const user = finalStage().findLast((i) => i.keyword === 'USER');
    expect(user, 'no USER in the final stage').toBeDefined();
    expect(user!.args.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('runs the API by default and checks /health', () => {
    const cmd = finalStage()
      .filter((i) => i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT')
      .flatMap((i) => execArgs(i.args));
    expect(cmd).toContain('api/server.ts');
    const healthcheck = finalStage().find((i) => i.keyword === 'HEALTHCHECK');
    if (healthcheck) {
      expect(healthcheck.args).toContain('/health');
      expect(read('api/routes/system.ts')).toContain("'/health'");
    }
  });

  it('keeps dependencies, local data and secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim().replace(/^\/|\/$/g, ''))
      .filter((line) => line && !line.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.data', '.env']));
  });
});
