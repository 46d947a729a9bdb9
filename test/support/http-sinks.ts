/** Real HTTP peers on loopback for tests: misbehaving Policy Engines and a webhook receiver. */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** A running loopback server. */
export interface Sink {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  return body;
}

/** An engine that accepts requests and never answers (until closed): the evaluation stays `running`. */
export async function startHangingEngine(): Promise<Sink & { requests: () => number }> {
  let requests = 0;
  const server = createServer(() => {
    requests++;
  });
  return { url: await listen(server), close: closer(server), requests: () => requests };
}

/** An engine that answers `status` to the first `failures` requests, then forwards to `upstream`. */
export async function startFlakyEngine(options: {
  failures: number;
  status: number;
  upstream: string;
}): Promise<Sink & { requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    void (async () => {
      requests++;
      const body = await readBody(req);
      if (requests <= options.failures) {
        res.writeHead(options.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'Unavailable', message: `injected failure ${requests}` }));
        return;
      }
      const upstream = await fetch(new URL(req.url ?? '/', options.upstream), {
        method: req.method ?? 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(await upstream.text());
    })();
  });
  return { url: await listen(server), close: closer(server), requests: () => requests };
}

/** One request a receiver got. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** `Date.now()` when the body had arrived. */
  receivedAt: number;
}

/** How a receiver answers a request (each on its own connection); `hang` never answers. */
export type Answer = ((res: ServerResponse) => void) | 'hang';

/**
 * A receiver on loopback recording every request into `received` and answering as `answer()` says at that moment
 * (tests switch answers between cases).
 */
export async function startHttpReceiver(
  answer: () => Answer,
  received: ReceivedRequest[] = [],
): Promise<Sink & { received: ReceivedRequest[] }> {
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        receivedAt: Date.now(),
      });
      // One connection per request: no case inherits a keep-alive socket of another.
      res.setHeader('connection', 'close');
      const respond = answer();
      if (respond !== 'hang') respond(res);
    })();
  });
  return { url: await listen(server), close: closer(server), received };
}

/** A receiver shared by the tests of one file or `describe` block (see `useHttpReceiver`). */
export interface SharedReceiver {
  /** Requests received since the current test started. */
  readonly received: ReceivedRequest[];
  /** How the next requests are answered; reset to the default after each test. */
  answer: Answer;
  /** Base URL (`http://127.0.0.1:{port}`), known once the tests run. */
  readonly url: string;
}

/**
 * Starts a receiver before the tests of the enclosing file or `describe` block and closes it after them; after each
 * test it forgets the requests and answers with `defaultAnswer` again.
 */
export function useHttpReceiver(defaultAnswer: Answer = (res) => res.writeHead(204).end()): SharedReceiver {
  const received: ReceivedRequest[] = [];
  let sink: Sink | undefined;
  const shared = {
    received,
    answer: defaultAnswer,
    get url(): string {
      if (!sink) throw new Error('the receiver starts before the tests run');
      return sink.url;
    },
  };
  beforeAll(async () => {
    sink = await startHttpReceiver(() => shared.answer, received);
  });
  afterEach(() => {
    received.length = 0;
    shared.answer = defaultAnswer;
  });
  afterAll(async () => {
    await sink?.close();
  });
  return shared;
}

/** A webhook receiver answering `status()` with an empty body and recording every request. */
export function startReceiver(status: () => number = () => 204): Promise<Sink & { received: ReceivedRequest[] }> {
  return startHttpReceiver(() => (res) => res.writeHead(status()).end());
}

/** Polls `fn` until it returns a defined value. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
