/**
 * A TCP proxy on loopback in front of a real server, which a test cuts (connections dropped, new ones refused) and
 * restores on the same port: an outage of that server for one client only, while the others keep reaching it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

/** A running proxy. */
export interface TcpProxy {
  /** `127.0.0.1:{port}`: what the client is pointed at. */
  address: string;
  port: number;
  /** Drops every connection and refuses new ones until {@link restore}. */
  cut(): Promise<void>;
  /** Accepts connections again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Pipes an accepted connection to `upstream` both ways, each side closing the other; both sockets are tracked in
 * `sockets` until they close (so a test can drop them all).
 */
export function pipeToUpstream(client: Socket, upstream: { host: string; port: number }, sockets: Set<Socket>): void {
  const server = connect(upstream);
  for (const socket of [client, server]) {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  }
  client.pipe(server).pipe(client);
  client.once('close', () => server.destroy());
  server.once('close', () => client.destroy());
}

/** Starts a proxy to `target` (`host:port`), accepting connections. */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const listenPort = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer((client) => {
        pipeToUpstream(client, { host, port }, sockets);
      });
      next.once('error', reject);
      next.listen(listenPort, '127.0.0.1', () => {
        server = next;
        resolve();
      });
    });

  const cut = async () => {
    const closing = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (closing) await new Promise((resolve) => closing.close(resolve));
  };

  await listen();
  return {
    address: `127.0.0.1:${listenPort}`,
    port: listenPort,
    cut,
    restore: async () => {
      if (!server) await listen();
    },
    close: cut,
  };
}
