/**
 * `npm run pack-event -- <event.json> [--fresh] [--callback URL] [--api URL]`: signs a Task Runner event with the
 * local signing secret and posts it to the local API, as the Task Runner would. `--fresh` gives it new ids and
 * timestamps and drops the sample's resume callback (a remote host); `--callback` points the callback at a URL.
 *
 * The Task Runner's side of the event contract (`withFreshIds`, `signedHeaders`, `postSignedEvent`) is exported for
 * the tests and benchmarks, which post events the same way.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { signatureHeaders } from '../activities/shared/http.js';
import { loadConfig } from '../core/config.js';
import { loadOrCreateLocalKey, mintToken } from '../core/local-keys.js';
import { packEventSecretsOf } from '../core/local-secrets.js';
import { Scope } from '../core/scopes.js';

/** `event` as a new request: a new event id and run id, requested at `now` and expiring a day later. */
export function withFreshIds<T extends object>(event: T, now: number = Date.now()): T {
  return {
    ...event,
    eventId: `evt-${randomUUID()}`,
    runId: `run-${randomUUID().slice(0, 8)}`,
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 24 * 3600 * 1000).toISOString(),
  };
}

/** Standard Webhooks headers for `body` signed with `secret` (a new signature id and the current time by default). */
export function signedHeaders(
  secret: string,
  body: string,
  options: { id?: string; at?: Date } = {},
): Record<string, string> {
  return signatureHeaders(new Webhook(secret), options.id ?? `msg_${randomUUID()}`, options.at ?? new Date(), body);
}

/** POSTs `event` to the ingestion endpoint of `baseUrl` with a bearer token, signed with `secret`. */
export function postSignedEvent(
  baseUrl: string,
  event: unknown,
  options: { token: string; secret: string },
): Promise<Response> {
  const body = JSON.stringify(event);
  return fetch(`${baseUrl}/notifications/pack-approvals`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${options.token}`,
      ...signedHeaders(options.secret, body),
    },
    body,
  });
}

/**
 * The event `npm run pack-event` posts: `loaded` as it is, or with `fresh` a new request (new ids and times) whose
 * resume callback is `callback` when given and omitted otherwise — a sample's callback points at a Task Runner
 * that does not exist here, which the worker would retry for a day.
 */
export function eventToPost(
  loaded: Record<string, unknown>,
  options: { fresh: boolean; callback?: string | undefined },
): Record<string, unknown> {
  const { resumeCallback: _sample, ...fresh } = withFreshIds(loaded);
  const event = options.fresh ? fresh : loaded;
  return options.callback ? { ...event, resumeCallback: withCallback(loaded, options.callback) } : event;
}

/** The sample's resume callback (its token) pointed at `url`. */
function withCallback(loaded: Record<string, unknown>, url: string): { url: string; token: string } {
  const sample = loaded.resumeCallback as { token?: unknown } | undefined;
  return { url, token: typeof sample?.token === 'string' ? sample.token : 'local-resume-token' };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { fresh: { type: 'boolean', default: false }, api: { type: 'string' }, callback: { type: 'string' } },
  });
  const file = positionals[0] ?? 'samples/pack-approvals/pack-approval-requested.json';
  const config = loadConfig();
  const loaded = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const event = eventToPost(loaded, { fresh: values.fresh, callback: values.callback });
  if (values.fresh && !values.callback) {
    console.log(
      'resume callback omitted (--callback <url> sets one); the approval then records resume "not-configured"',
    );
  }
  const [secret] = await packEventSecretsOf(config);
  const token = await mintToken(await loadOrCreateLocalKey(config.dataDir), {
    tenant: String(event.tenantId),
    scopes: [Scope.NotifierEventsWrite],
    subject: 'task-runner',
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    expiresIn: '5m',
  });
  const response = await postSignedEvent(values.api ?? `http://127.0.0.1:${config.api.port}`, event, {
    token,
    secret: secret!,
  });
  console.log(response.status, await response.text());
  process.exitCode = response.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
