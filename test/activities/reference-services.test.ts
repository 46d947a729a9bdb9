// The reference services of sagas over HTTP on a free loopback port, emitting to a real loopback receiver that
// stands in for the product's ingress: what the Gateway and effect activities (and a user of npm start) see.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { loadPolicyEngineData } from '../../policy-engine/evaluate.js';
import { createImpactIndex, digestOf } from '../../reference-services/impact-index.js';
import {
  eventDeliveryOf,
  localEventTokens,
  startReferenceServices,
  type ReferenceServicesOptions,
  type RunningReferenceServices,
} from '../../reference-services/server.js';
import { AggregateEvent, type GatewayCommand } from '../../workflows/sagas/definitions.js';
import { eventually, useHttpReceiver, type ReceivedRequest } from '../support/http-sinks.js';
import { memoryLogger } from '../support/logger.js';
import { freePort } from '../support/ports.js';

// TypeBox's Value checker knows no formats by itself; the API validates them with ajv-formats.
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const ADVISORY = 'CVE-2023-44487';
/** The three sample images whose SBOMs carry CVE-2023-44487, with their findings counts. */
const IMPACTED = [
  { imageId: 'payments-api:3.8.2', sbomId: 'sbom-payments-api', findings: 15 },
  { imageId: 'auth-service:2.1.0', sbomId: 'sbom-auth-service', findings: 14 },
  { imageId: 'edge-gateway:1.9.0', sbomId: 'sbom-edge-gateway', findings: 19 },
];
const STUCK_IMAGE = 'stuck-image:1.0.0';

// The ingress: answers 202 unless a test says otherwise.
const ingress = useHttpReceiver((res) => res.writeHead(202, { 'content-type': 'application/json' }).end('{}'));

let sequenceOfIds = 0;
/** A command of its own for each call: unique commandId and correlation id. */
function command(overrides: Partial<GatewayCommand> = {}): GatewayCommand {
  sequenceOfIds++;
  return {
    tenantId: 'local',
    commandId: `local:advisory-impact-rescan:corr-${sequenceOfIds}:rescan`,
    aggregateType: 'Scan',
    aggregateId: IMPACTED[0]!.imageId,
    commandType: 'RequestRescan',
    payload: { imageId: IMPACTED[0]!.imageId, advisoryId: ADVISORY },
    correlationId: `corr-${sequenceOfIds}`,
    causationId: 'evt-advisory-published',
    ...overrides,
  };
}

/** The headers the Gateway activity sends with `cmd`. */
const headersOf = (cmd: GatewayCommand, extra: Record<string, string> = {}): Record<string, string> => ({
  'x-tenant-id': cmd.tenantId,
  'idempotency-key': cmd.commandId,
  'x-correlation-id': cmd.correlationId,
  traceparent: TRACEPARENT,
  ...extra,
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(
  services: RunningReferenceServices,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${services.url}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

const submit = (services: RunningReferenceServices, cmd: GatewayCommand, headers = headersOf(cmd)) =>
  call(services, 'POST', '/api/v1/commands', cmd, headers);

/** The events of one request to the ingress: one event, or a batch `{ events }`. */
function eventsOf(request: ReceivedRequest): AggregateEvent[] {
  const body = JSON.parse(request.body) as AggregateEvent | { events: AggregateEvent[] };
  return 'events' in body && Array.isArray(body.events) ? body.events : [body as AggregateEvent];
}
/** The events the ingress received, parsed, in arrival order. */
const eventsAt = (received: ReceivedRequest[]) => received.flatMap(eventsOf);

/** Waits until the ingress has received `count` events. */
const receivedCount = (count: number, timeoutMs = 5_000) =>
  eventually(() => (eventsAt(ingress.received).length >= count ? ingress.received : undefined), timeoutMs);

const started: RunningReferenceServices[] = [];
async function start(options: ReferenceServicesOptions = {}): Promise<RunningReferenceServices> {
  const services = await startReferenceServices({
    events: { apiUrl: ingress.url, tokenFor: async (tenant) => `token-of-${tenant}` },
    emitterRetry: { initialMs: 20, maxMs: 200 },
    scanDelayMs: 50,
    neverCompleteImages: [STUCK_IMAGE],
    faults: true,
    ...options,
  });
  started.push(services);
  return services;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

describe('reference Gateway', () => {
  it('applies RequestRescan: 202, then Scan.Requested and Scan.Completed posted to the ingress as full events', async () => {
    const services = await start();
    const cmd = command();
    const answer = await submit(services, cmd);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ commandId: cmd.commandId, aggregateSequence: 1 });

    const received = await receivedCount(2);
    for (const request of received) {
      expect(request).toMatchObject({ method: 'POST', url: '/api/v1/events' });
      expect(request.headers.authorization).toBe('Bearer token-of-local');
      expect(request.headers['content-type']).toBe('application/json');
    }
    const events = eventsAt(received);
    for (const event of events) expect(Value.Errors(AggregateEvent, event).First()).toBeUndefined();
    expect(events.map((e) => [e.eventType, e.sequence])).toEqual([
      ['Scan.Requested', 1],
      ['Scan.Completed', 2],
    ]);
    for (const event of events) {
      expect(event).toMatchObject({
        tenantId: 'local',
        aggregateType: 'Scan',
        aggregateId: 'payments-api:3.8.2',
        correlationId: cmd.correlationId,
        metadata: { causationId: cmd.commandId, correlationId: cmd.correlationId, traceparent: TRACEPARENT },
      });
    }
    expect(events[0]!.payload).toEqual({ imageId: 'payments-api:3.8.2', advisoryId: ADVISORY });
    // The findings a scan reports are those of the image's sample SBOM.
    expect(events[1]!.payload).toEqual({ imageId: 'payments-api:3.8.2', advisoryId: ADVISORY, findings: 15 });
    expect(events[0]!.eventId).not.toBe(events[1]!.eventId);
    expect(Date.parse(events[1]!.occurredAt)).toBeGreaterThanOrEqual(Date.parse(events[0]!.occurredAt));
  });

  it('answers a repeated commandId with its first answer and applies it once; counts every arrival', async () => {
    const services = await start();
    const cmd = command();
    const first = await submit(services, cmd);
    const repeats = await Promise.all([submit(services, cmd), submit(services, cmd)]);
    expect(first.status).toBe(202);
    for (const repeat of repeats) {
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual(first.body);
      expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    }
    await receivedCount(2);
    await new Promise((r) => setTimeout(r, 150));
    expect(eventsAt(ingress.received).map((e) => e.eventType)).toEqual(['Scan.Requested', 'Scan.Completed']);

    expect((await call(services, 'GET', '/api/v1/commands/received')).body).toEqual({ [cmd.commandId]: 3 });
    expect((await call(services, 'GET', '/api/v1/commands/applied')).body).toEqual({ [cmd.commandId]: 1 });
    expect(services.counters.commandsReceived()).toEqual({ [cmd.commandId]: 3 });
    expect(services.counters.commandsApplied()).toEqual({ [cmd.commandId]: 1 });
  });

  it('deduplicates per tenant: the same commandId of another tenant is a command of its own', async () => {
    const services = await start();
    const cmd = command();
    expect((await submit(services, cmd)).status).toBe(202);
    expect((await submit(services, { ...cmd, tenantId: 'acme' })).status).toBe(202);
    expect(services.counters.commandsApplied()).toEqual({ [cmd.commandId]: 2 });
    const events = eventsAt(await receivedCount(4));
    expect(new Set(events.map((e) => e.tenantId))).toEqual(new Set(['local', 'acme']));
    // Each tenant's aggregate counts its own sequence.
    expect(events.filter((e) => e.tenantId === 'acme').map((e) => e.sequence)).toEqual([1, 2]);
    expect(ingress.received.map((r) => r.headers.authorization)).toContain('Bearer token-of-acme');
  });

  it('refuses a commandId reused for a different command with 422 and applies nothing', async () => {
    const services = await start();
    const cmd = command();
    await submit(services, cmd);
    const reused = await submit(services, { ...cmd, payload: { ...cmd.payload, advisoryId: 'CVE-2021-44228' } });
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ error: 'IdempotencyKeyReused' });
    expect(services.counters.commandsApplied()).toEqual({ [cmd.commandId]: 1 });
  });

  it('checks expectedSequence: a stale one is 409 with the sequences, the current one is applied', async () => {
    const services = await start();
    const image = IMPACTED[1]!.imageId;
    const onImage = (overrides: Partial<GatewayCommand>) =>
      command({ aggregateId: image, payload: { imageId: image, advisoryId: ADVISORY }, ...overrides });
    expect((await submit(services, onImage({ expectedSequence: 0 }))).body).toMatchObject({ aggregateSequence: 1 });
    await receivedCount(2); // Scan.Requested and Scan.Completed: the aggregate is at sequence 2

    const stale = onImage({ expectedSequence: 1 });
    const refused = await submit(services, stale);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      error: 'SequenceMismatch',
      message: `Scan ${image} is at sequence 2, the command expected 1`,
    });
    // A refusal is an answer too: its repeat gets it again, and it was never applied.
    expect((await submit(services, stale)).status).toBe(409);
    expect(services.counters.commandsApplied()[stale.commandId]).toBeUndefined();

    const current = await submit(services, onImage({ expectedSequence: 2 }));
    expect(current).toMatchObject({ status: 202, body: { aggregateSequence: 3 } });
  });

  it('cancels a pending rescan: 202 and Scan.Cancelled, and the scan never completes', async () => {
    const services = await start();
    const request = command({ aggregateId: STUCK_IMAGE, payload: { imageId: STUCK_IMAGE, advisoryId: ADVISORY } });
    expect((await submit(services, request)).status).toBe(202);
    const cancel = command({
      commandId: `${request.commandId}:cancel`,
      commandType: 'CancelRescan',
      aggregateId: STUCK_IMAGE,
      payload: { imageId: STUCK_IMAGE, advisoryId: ADVISORY },
      correlationId: request.correlationId,
    });
    const answer = await submit(services, cancel);
    expect(answer).toMatchObject({ status: 202, body: { commandId: cancel.commandId, aggregateSequence: 2 } });
    const events = eventsAt(await receivedCount(2));
    expect(events.map((e) => e.eventType)).toEqual(['Scan.Requested', 'Scan.Cancelled']);
    expect(events[1]).toMatchObject({
      payload: { imageId: STUCK_IMAGE, advisoryId: ADVISORY },
      correlationId: request.correlationId,
      metadata: { causationId: cancel.commandId },
    });
    // Nothing is left to cancel now.
    const again = await submit(services, { ...cancel, commandId: `${cancel.commandId}:2` });
    expect(again).toMatchObject({ status: 409, body: { error: 'NoPendingRescan' } });
  });

  it('refuses to cancel a rescan that completed already with 409, so the saga sees a rejection', async () => {
    const services = await start();
    const request = command();
    await submit(services, request);
    await receivedCount(2);
    const cancel = command({
      commandType: 'CancelRescan',
      correlationId: request.correlationId,
    });
    const answer = await submit(services, cancel);
    expect(answer.status).toBe(409);
    expect(answer.body).toMatchObject({
      error: 'ScanCompleted',
      message: `The rescan of image payments-api:3.8.2 for advisory ${ADVISORY} has already completed`,
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(eventsAt(ingress.received).map((e) => e.eventType)).toEqual(['Scan.Requested', 'Scan.Completed']);
  });

  it('completes each of two concurrent rescans of one image for its own saga', async () => {
    const services = await start();
    const [a, b] = [command(), command()];
    await Promise.all([submit(services, a), submit(services, b)]);
    const completed = eventsAt(await receivedCount(4)).filter((e) => e.eventType === 'Scan.Completed');
    expect(completed.map((e) => e.correlationId).sort()).toEqual([a.correlationId, b.correlationId].sort());
  });

  it('answers 422 for an unknown command or aggregate, or a command without its advisory', async () => {
    const services = await start();
    for (const [cmd, error] of [
      [command({ commandType: 'Rescan' }), 'UnknownCommand'],
      [command({ aggregateType: 'Image' }), 'UnknownAggregate'],
      [command({ payload: { imageId: IMPACTED[0]!.imageId } }), 'InvalidCommand'],
      [command({ payload: { imageId: 'other:1', advisoryId: ADVISORY } }), 'InvalidCommand'],
    ] as const) {
      const answer = await submit(services, cmd);
      expect(answer.status, cmd.commandType).toBe(422);
      expect(answer.body.error).toBe(error);
    }
    expect(services.counters.commandsApplied()).toEqual({});
    expect(ingress.received).toEqual([]);
  });

  it('refuses missing or mismatching headers and invalid bodies with 400, applying nothing', async () => {
    const services = await start();
    const cmd = command();
    const { 'x-tenant-id': _tenant, ...withoutTenant } = headersOf(cmd);
    const missing = await submit(services, cmd, withoutTenant);
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: 'ValidationFailed' });
    expect(missing.body.errors).toEqual([expect.objectContaining({ path: 'headers.x-tenant-id' })]);

    for (const [header, value, field] of [
      ['x-tenant-id', 'acme', 'tenantId'],
      ['idempotency-key', 'another-id', 'commandId'],
      ['x-correlation-id', 'corr-other', 'correlationId'],
    ] as const) {
      const answer = await submit(services, cmd, headersOf(cmd, { [header]: value }));
      expect(answer.status, header).toBe(400);
      expect(answer.body).toMatchObject({ error: 'HeaderMismatch' });
      expect(String(answer.body.message)).toContain(`body's ${field}`);
    }
    const badTrace = await submit(services, cmd, headersOf(cmd, { traceparent: 'not-a-trace' }));
    expect(badTrace.status).toBe(400);
    const { commandType: _type, ...withoutType } = cmd;
    expect((await call(services, 'POST', '/api/v1/commands', withoutType, headersOf(cmd))).status).toBe(400);
    const stringSequence = { ...cmd, expectedSequence: '0' };
    expect((await call(services, 'POST', '/api/v1/commands', stringSequence, headersOf(cmd))).status).toBe(400);

    expect(services.counters.commandsApplied()).toEqual({});
    expect(services.counters.commandsReceived()).toEqual({ [cmd.commandId]: 7 });
    // The refused command can still be sent properly afterwards: nothing was remembered for it.
    expect((await submit(services, cmd)).status).toBe(202);
  });
});

describe('reference Gateway events: delivery to the ingress', () => {
  it('retries a 503 until the ingress takes the event, keeping the order of events', async () => {
    let answers = 0;
    ingress.answer = (res) => {
      answers++;
      if (answers <= 3) res.writeHead(503, { 'retry-after': '0' }).end('{"error":"ServiceUnavailable"}');
      else res.writeHead(202).end('{}');
    };
    const services = await start();
    await submit(services, command());
    await eventually(() => (services.emitter!.stats().delivered === 2 ? true : undefined), 5_000);
    expect(services.emitter!.stats()).toEqual({ pending: 0, delivered: 2, dropped: 0, retries: 3 });
    const attempts = ingress.received.map(eventsOf);
    // Each refused attempt started with the first event, which went out again as it was, until one was taken.
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(new Set(attempts.map((events) => JSON.stringify(events[0])))).toHaveProperty('size', 1);
    const delivered = attempts.slice(3).flat();
    expect(delivered.map((e) => [e.eventType, e.sequence])).toEqual([
      ['Scan.Requested', 1],
      ['Scan.Completed', 2],
    ]);
  });

  it('sends what waited as batches, one per run of a tenant’s events, each with its tenant’s token', async () => {
    let open = false;
    const accepted: ReceivedRequest[] = [];
    ingress.answer = (res) => {
      // The receiver records a request before it answers it: the last one recorded is the one answered now.
      if (open) accepted.push(ingress.received.at(-1)!);
      res.writeHead(open ? 202 : 503).end('{}');
    };
    const services = await start();
    const onStuck = (tenantId: string) =>
      command({ tenantId, aggregateId: STUCK_IMAGE, payload: { imageId: STUCK_IMAGE, advisoryId: ADVISORY } });
    const commands = [onStuck('local'), onStuck('local'), onStuck('acme')];
    for (const cmd of commands) expect((await submit(services, cmd)).status).toBe(202);
    await eventually(() => (services.emitter!.stats().retries >= 2 ? true : undefined), 5_000);
    open = true;
    await eventually(() => (services.emitter!.stats().delivered === 3 ? true : undefined), 5_000);

    expect(accepted.map((r) => [r.headers.authorization, eventsOf(r).map((e) => e.metadata?.causationId)])).toEqual([
      ['Bearer token-of-local', [commands[0]!.commandId, commands[1]!.commandId]],
      ['Bearer token-of-acme', [commands[2]!.commandId]],
    ]);
    expect(JSON.parse(accepted[0]!.body)).toHaveProperty('events');
  });

  it('drops an event the ingress refuses with a 4xx, logs it, and delivers the next one', async () => {
    let answers = 0;
    ingress.answer = (res) => {
      answers++;
      if (answers === 1) res.writeHead(403).end('{"error":"Forbidden","message":"token tenant"}');
      else res.writeHead(202).end('{}');
    };
    const { logger, records } = memoryLogger();
    const services = await start({ logger });
    await submit(services, command());
    await receivedCount(2);
    await services.emitter!.idle();
    expect(ingress.received).toHaveLength(2);
    expect(eventsAt(ingress.received).map((e) => e.eventType)).toEqual(['Scan.Requested', 'Scan.Completed']);
    expect(services.emitter!.stats()).toMatchObject({ delivered: 1, dropped: 1, retries: 0 });
    const dropped = records.find((r) => String(r.msg).endsWith('dropped: the ingress refused it'));
    expect(dropped).toMatchObject({ level: 50, status: 403 });
  });

  it('logs an event the ingress takes but answers invalid, and does not send it again', async () => {
    ingress.answer = (res) =>
      res
        .writeHead(202, { 'content-type': 'application/json' })
        .end(JSON.stringify({ results: [{ index: 0, eventId: 'evt-x', status: 'invalid', errors: [{ path: 'x' }] }] }));
    const { logger, records } = memoryLogger();
    const services = await start({ logger });
    await submit(services, command());
    await receivedCount(2);
    await services.emitter!.idle();
    expect(ingress.received).toHaveLength(2);
    expect(records.filter((r) => r.msg === 'event refused by the ingress: invalid')).toHaveLength(2);
  });

  it('holds its events until an API that starts later is listening', async () => {
    const port = await freePort();
    const services = await start({ events: { apiUrl: `http://127.0.0.1:${port}`, tokenFor: async () => 't' } });
    await submit(services, command());
    await new Promise((r) => setTimeout(r, 300));
    expect(services.emitter!.stats()).toMatchObject({ pending: 2, delivered: 0 });
    expect(services.emitter!.stats().retries).toBeGreaterThan(0);

    const bodies: string[] = [];
    const late: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push(body);
        res.writeHead(202, { connection: 'close' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve));
    try {
      const events = () => bodies.flatMap((body) => eventsOf({ body } as ReceivedRequest));
      await eventually(() => (events().length >= 2 ? true : undefined), 5_000);
      // What waited goes out together, in order.
      expect(bodies).toHaveLength(1);
      expect(events().map((e) => e.eventType)).toEqual(['Scan.Requested', 'Scan.Completed']);
    } finally {
      late.closeAllConnections();
      await new Promise((resolve) => late.close(resolve));
    }
  });

  it('emits with tokens minted from the local key, or says at start-up why it cannot emit', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'reference-services-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const local = loadConfig({ DATA_DIR: dataDir });
    const delivery = eventDeliveryOf(local);
    expect(delivery).toMatchObject({ target: { apiUrl: 'http://127.0.0.1:3000' } });
    const token = await localEventTokens(local)('acme');
    const [, claims] = token.split('.');
    expect(JSON.parse(Buffer.from(claims!, 'base64url').toString())).toMatchObject({
      tenant: 'acme',
      scope: 'Runner.Events:Write',
      iss: 'stellaops-local',
    });

    const external = loadConfig({ AUTH_JWKS_URL: 'https://issuer.example.com/jwks', DATA_DIR: dataDir });
    const none = eventDeliveryOf(external);
    expect(none.target).toBeUndefined();
    expect('reason' in none && none.reason).toContain('REFERENCE_SERVICES_TOKEN');
    const withToken = eventDeliveryOf(
      loadConfig({ ...{ AUTH_JWKS_URL: 'https://i/jwks' }, REFERENCE_SERVICES_TOKEN: 'tok' }),
    );
    expect(withToken.target && 'tokenFor' in withToken.target && (await withToken.target.tokenFor('x'))).toBe('tok');
    // The API's port is unknown before it listens: nothing to post to, and it says so.
    const randomPort = eventDeliveryOf(loadConfig({ API_PORT: '0', DATA_DIR: dataDir }));
    expect(randomPort.target).toBeUndefined();
    expect('reason' in randomPort && randomPort.reason).toContain('API_PORT=0');
  });
});

/**
 * The reference services with their fault controls for the enclosing `describe`: started once, closed after it, and
 * every injected fault cleared after each test so that none leaks into the next.
 */
function referenceServicesWithFaults(): () => RunningReferenceServices {
  let services: RunningReferenceServices;
  beforeAll(async () => {
    services = await startReferenceServices({ faults: true });
  });
  afterAll(async () => {
    await services?.close();
  });
  afterEach(async () => {
    await call(services, 'DELETE', '/control/faults');
  });
  return () => services;
}

describe('reference providers', () => {
  const services = referenceServicesWithFaults();

  let keys = 0;
  const provider = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    call(services(), 'POST', `/providers/${path}`, body, { 'idempotency-key': `key-${++keys}`, ...headers });

  it('resolves the images an advisory impacts from the bundled sample SBOMs', async () => {
    const answer = await provider('impact-index/resolve', { advisoryId: ADVISORY });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      advisoryId: ADVISORY,
      images: IMPACTED.map(({ imageId, sbomId }) => ({ imageId, sbomId, digest: digestOf(sbomId) })),
    });
    const digests = (answer.body.images as { digest: string }[]).map((i) => i.digest);
    for (const digest of digests) expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(new Set(digests).size).toBe(3);

    // The same data, read independently: every SBOM with a finding for the advisory, and only those.
    const data = loadPolicyEngineData();
    const withFinding = data.findings.sboms.filter((s) =>
      s.components.some((c) => c.findings.some((f) => f.advisoryId === ADVISORY)),
    );
    expect(withFinding.map((s) => s.id)).toEqual(IMPACTED.map((i) => i.sbomId));
  });

  it('narrows the images to the packages named, and answers no images for an unknown advisory', async () => {
    const data = loadPolicyEngineData();
    const component = data.findings.sboms
      .find((s) => s.id === 'sbom-auth-service')!
      .components.find((c) => c.findings.some((f) => f.advisoryId === ADVISORY))!;
    for (const name of [component.name, `${component.name}@${component.version}`]) {
      const narrowed = await provider('impact-index/resolve', { advisoryId: ADVISORY, packages: [name] });
      expect((narrowed.body.images as { imageId: string }[]).map((i) => i.imageId)).toContain('auth-service:2.1.0');
      expect((narrowed.body.images as unknown[]).length).toBeLessThan(3);
    }
    const none = await provider('impact-index/resolve', { advisoryId: ADVISORY, packages: ['pkg:npm/left-pad'] });
    expect(none.body.images).toEqual([]);
    expect(await provider('impact-index/resolve', { advisoryId: 'CVE-1999-0001' })).toMatchObject({
      status: 200,
      body: { advisoryId: 'CVE-1999-0001', images: [] },
    });
    // The Gateway's Scan.Completed reports what the index holds for an image.
    const index = createImpactIndex(data.findings);
    expect(IMPACTED.map((i) => index.findingsOf(i.imageId))).toEqual(IMPACTED.map((i) => i.findings));
  });

  it('reserves, exports, signs and publishes a bundle; each answer feeds the next', async () => {
    const tenant = { 'x-tenant-id': 'tenant-publish' };
    const bundleId = 'bundle-2025-06-offline';
    const reserved = await provider('mirror/quota/reserve', { bundleId, sizeBytes: 2 * 1024 ** 3 }, tenant);
    expect(reserved).toMatchObject({
      status: 200,
      body: { bundleId, sizeBytes: 2 * 1024 ** 3, remainingBytes: 8 * 1024 ** 3 },
    });
    const exported = await provider('mirror/exports', { bundleId, reservationId: reserved.body.reservationId }, tenant);
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({ bundleId, sizeBytes: 2 * 1024 ** 3 });
    expect(exported.body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const signed = await provider('mirror/signatures', { bundleId, digest: exported.body.digest }, tenant);
    expect(signed).toMatchObject({ status: 200, body: { bundleId, digest: exported.body.digest } });
    const published = await provider('mirror/publications', { bundleId, mirror: 'airgap-eu' }, tenant);
    expect(published).toMatchObject({
      status: 200,
      body: {
        bundleId,
        mirror: 'airgap-eu',
        digest: exported.body.digest,
        signatureId: signed.body.signatureId,
        url: `https://mirror.stellaops.local/airgap-eu/tenant-publish/${bundleId}.tar.zst`,
      },
    });
  });

  it('undoes each step by bundle id, in reverse, and a compensation with nothing to undo succeeds', async () => {
    const tenant = { 'x-tenant-id': 'tenant-undo' };
    const bundleId = 'bundle-undo';
    const reserved = await provider('mirror/quota/reserve', { bundleId }, tenant);
    const exported = await provider('mirror/exports', { bundleId }, tenant);
    const signed = await provider('mirror/signatures', { bundleId }, tenant);

    expect((await provider('mirror/signatures/revoke', { bundleId }, tenant)).body).toEqual({
      bundleId,
      signatureId: signed.body.signatureId,
      revoked: true,
    });
    // A revoked signature cannot be published.
    expect(await provider('mirror/publications', { bundleId }, tenant)).toMatchObject({
      status: 422,
      body: { error: 'SignatureMissing' },
    });
    expect((await provider('mirror/exports/delete', { bundleId }, tenant)).body).toEqual({
      bundleId,
      exportId: exported.body.exportId,
      deleted: true,
    });
    expect((await provider('mirror/quota/release', { bundleId }, tenant)).body).toEqual({
      bundleId,
      reservationId: reserved.body.reservationId,
      released: true,
    });
    // Run again (new keys), every compensation finds nothing and still succeeds.
    expect((await provider('mirror/signatures/revoke', { bundleId }, tenant)).body).toMatchObject({ revoked: false });
    expect((await provider('mirror/exports/delete', { bundleId }, tenant)).body).toMatchObject({ deleted: false });
    expect((await provider('mirror/quota/release', { bundleId }, tenant)).body).toMatchObject({
      released: false,
      reservationId: null,
    });
    // The released quota is available again.
    const again = await provider('mirror/quota/reserve', { bundleId: 'bundle-next', sizeBytes: 1024 }, tenant);
    expect(again.body.remainingBytes).toBe(10 * 1024 ** 3 - 1024);
  });

  it('refuses steps out of order and over quota with 422 and the reason', async () => {
    const tenant = { 'x-tenant-id': 'tenant-refusals' };
    expect(await provider('mirror/exports', { bundleId: 'b-none' }, tenant)).toMatchObject({
      status: 422,
      body: { error: 'QuotaNotReserved' },
    });
    expect(await provider('mirror/signatures', { bundleId: 'b-none' }, tenant)).toMatchObject({
      status: 422,
      body: { error: 'ExportMissing' },
    });
    expect(await provider('mirror/publications', { bundleId: 'b-none' }, tenant)).toMatchObject({
      status: 422,
      body: { error: 'SignatureMissing' },
    });
    await provider('mirror/quota/reserve', { bundleId: 'b-big', sizeBytes: 9 * 1024 ** 3 }, tenant);
    const over = await provider('mirror/quota/reserve', { bundleId: 'b-more', sizeBytes: 2 * 1024 ** 3 }, tenant);
    expect(over).toMatchObject({ status: 422, body: { error: 'QuotaExceeded' } });
    expect(String(over.body.message)).toContain(`${1024 ** 3} of ${10 * 1024 ** 3} bytes left`);
    await provider('mirror/exports', { bundleId: 'b-big' }, tenant);
    expect(
      await provider('mirror/signatures', { bundleId: 'b-big', digest: `sha256:${'0'.repeat(64)}` }, tenant),
    ).toMatchObject({ status: 422, body: { error: 'DigestMismatch' } });
    // Another tenant's quota is its own.
    expect(
      (
        await provider(
          'mirror/quota/reserve',
          { bundleId: 'b-more', sizeBytes: 2 * 1024 ** 3 },
          { 'x-tenant-id': 't2' },
        )
      ).status,
    ).toBe(200);
  });

  it('answers a repeated Idempotency-Key with the first answer, changing nothing, and counts every call', async () => {
    const tenant = { 'x-tenant-id': 'tenant-idempotent' };
    const key = { ...tenant, 'idempotency-key': 'local:mirror-bundle-export:b-1:reserve-quota' };
    const first = await provider('mirror/quota/reserve', { bundleId: 'b-1', sizeBytes: 1024 }, key);
    await provider('mirror/quota/release', { bundleId: 'b-1' }, tenant);
    const repeat = await provider('mirror/quota/reserve', { bundleId: 'b-1', sizeBytes: 1024 }, key);
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(first.body);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    // The repeat did not reserve again: the release before it still holds, so the whole quota is free.
    const probe = await provider('mirror/quota/reserve', { bundleId: 'b-probe', sizeBytes: 1 }, tenant);
    expect(probe.body.remainingBytes).toBe(10 * 1024 ** 3 - 1);
    // A refusal is remembered too, and the key cannot be reused for another call.
    const refusal = { ...tenant, 'idempotency-key': 'refusal-key' };
    expect((await provider('mirror/exports', { bundleId: 'b-x' }, refusal)).status).toBe(422);
    expect((await provider('mirror/exports', { bundleId: 'b-x' }, refusal)).status).toBe(422);
    const reused = await provider('mirror/exports', { bundleId: 'b-y' }, refusal);
    expect(reused.body.error).toBe('IdempotencyKeyReused');

    const calls = (await call(services(), 'GET', '/providers/calls')).body;
    expect(calls['local:mirror-bundle-export:b-1:reserve-quota']).toBe(2);
    expect(calls['refusal-key']).toBe(3);
    expect(services().counters.providerCalls()).toEqual(calls);
    const applied = (await call(services(), 'GET', '/providers/applied')).body;
    expect(applied['local:mirror-bundle-export:b-1:reserve-quota']).toBe(1);
    expect(applied['refusal-key']).toBe(1);
    expect(services().counters.providerApplied()).toEqual(applied);
  });

  it('needs an Idempotency-Key and a body that fits the effect', async () => {
    const without = await call(services(), 'POST', '/providers/mirror/quota/reserve', { bundleId: 'b' });
    expect(without.status).toBe(400);
    expect(without.body.errors).toEqual([expect.objectContaining({ path: 'headers.idempotency-key' })]);
    expect((await provider('mirror/quota/reserve', {})).status).toBe(400);
    expect((await provider('mirror/quota/reserve', { bundleId: 'b', sizeBytes: '5' })).status).toBe(400);
    expect((await provider('impact-index/resolve', { packages: [] })).status).toBe(400);
  });
});

describe('reference providers: fault injection', () => {
  const services = referenceServicesWithFaults();

  const reserve = (key: string) =>
    call(services(), 'POST', '/providers/mirror/quota/reserve', { bundleId: `b-${key}` }, { 'idempotency-key': key });
  const inject = (fault: Record<string, unknown>) => call(services(), 'PUT', '/control/faults', fault);

  it('makes an effect refuse with 422, or be unavailable with 503 and Retry-After: 1, then recover', async () => {
    expect(await inject({ effect: 'mirror.reserve-quota', mode: 'reject', times: 1 })).toMatchObject({
      status: 200,
      body: { faults: [{ effect: 'mirror.reserve-quota', mode: 'reject', times: 1, remaining: 1 }] },
    });
    expect(await reserve('f-1')).toMatchObject({ status: 422, body: { error: 'InjectedRejection' } });
    expect((await reserve('f-1')).status).toBe(200);

    await inject({ effect: 'mirror.reserve-quota', mode: 'unavailable', times: 2 });
    for (let i = 0; i < 2; i++) {
      const answer = await reserve('f-2');
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
    }
    expect((await reserve('f-2')).status).toBe(200);
    expect((await call(services(), 'GET', '/control/faults')).body).toEqual({ faults: [] });
    // Faulted calls arrived, so they count.
    expect(services().counters.providerCalls()).toMatchObject({ 'f-1': 2, 'f-2': 3 });
    // …but only the call that got through was acted on.
    expect(services().counters.providerApplied()).toMatchObject({ 'f-1': 1, 'f-2': 1 });
  });

  it('limits a fault to one Idempotency-Key and one effect, and lasts until it is removed', async () => {
    await inject({ effect: 'mirror.reserve-quota', key: 'f-target', mode: 'unavailable' });
    expect((await reserve('f-other')).status).toBe(200);
    const resolve = await call(
      services(),
      'POST',
      '/providers/impact-index/resolve',
      { advisoryId: ADVISORY },
      // Another tenant's call with the same key (a key is remembered per tenant), to another effect.
      { 'idempotency-key': 'f-target', 'x-tenant-id': 'tenant-other' },
    );
    expect(resolve.status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await reserve('f-target')).status).toBe(503);
    expect((await call(services(), 'DELETE', '/control/faults')).body).toEqual({ faults: [] });
    expect((await reserve('f-target')).status).toBe(200);
  });

  it('hangs a call until the fault is gone from a new call, and until close for the hung one', async () => {
    await inject({ effect: 'mirror.reserve-quota', mode: 'hang', times: 1 });
    const hung = fetch(`${services().url}/providers/mirror/quota/reserve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'f-hang' },
      body: JSON.stringify({ bundleId: 'b-hang' }),
      signal: AbortSignal.timeout(400),
    });
    await expect(hung).rejects.toThrow(/timeout|aborted/i);
    expect((await reserve('f-hang')).status).toBe(200);

    // A hung call does not keep the server from closing: it is answered 503.
    const own = await startReferenceServices({ faults: true });
    await call(own, 'PUT', '/control/faults', { effect: 'mirror.publish-bundle', mode: 'hang' });
    const pending = fetch(`${own.url}/providers/mirror/publications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'f-hang-2' },
      body: JSON.stringify({ bundleId: 'b-hang' }),
    });
    await eventually(() => (own.counters.providerCalls()['f-hang-2'] ? true : undefined), 2_000);
    const closing = own.close();
    expect((await pending).status).toBe(503);
    await closing;
  });

  it('refuses faults it cannot apply, and serves no controls unless created with faults', async () => {
    expect((await inject({ effect: 'mirror.unknown', mode: 'reject' })).status).toBe(400);
    expect((await inject({ effect: 'mirror.reserve-quota', mode: 'explode' })).status).toBe(400);
    expect((await inject({ effect: 'mirror.reserve-quota', mode: 'reject', times: 0 })).status).toBe(400);
    const plain = await startReferenceServices();
    try {
      expect(
        (await call(plain, 'PUT', '/control/faults', { effect: 'mirror.reserve-quota', mode: 'reject' })).status,
      ).toBe(404);
      expect((await call(plain, 'GET', '/health')).body).toEqual({ status: 'ok', images: 6 });
    } finally {
      await plain.close();
    }
  });
});
