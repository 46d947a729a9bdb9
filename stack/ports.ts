/** Loopback ports for the servers this product starts: probing whether one can be bound, or picking a free one. */
import { createServer } from 'node:net';

/** Whether `port` could be bound on `host` a moment ago (`0`: any free port); resolves with the port bound. */
export function bindablePort(port: number, host = '127.0.0.1'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => {
      const address = server.address();
      server.close(() => resolve(address && typeof address === 'object' ? address.port : undefined));
    });
  });
}

/**
 * A TCP port on `host` that was free a moment ago. For a server that cannot report the port it bound to (`0`)
 * itself; another process may take it in between, which the caller's start then reports.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const port = await bindablePort(0, host);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}
