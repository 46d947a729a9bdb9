/** Loopback ports for the servers this product starts: probing whether one can be bound, or picking a free one. */
import { readFileSync } from 'node:fs';
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

/** The lowest port {@link freePort} picks: below it lie the usual ports of well-known services. */
const LOWEST_PICKED_PORT = 10_000;
/** Random picks before {@link freePort} falls back to a port of the kernel's choice. */
const PICK_ATTEMPTS = 50;

/**
 * The first port of the kernel's ephemeral range, which it hands out as the local port of outgoing connections
 * (Linux's `ip_local_port_range`; its default where that cannot be read).
 */
export function ephemeralPortsStart(
  read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'),
): number {
  try {
    const start = Number(read().trim().split(/\s+/)[0]);
    if (Number.isInteger(start) && start > 0 && start <= 65_535) return start;
  } catch {
    // Not Linux, or no /proc: the default below.
  }
  return 32_768;
}

/**
 * A random port of [`low`, `high`] on `host` that was free a moment ago, or undefined when `attempts` picks were all
 * taken. Another process may still take it before the caller binds it.
 */
export async function randomFreePort(
  low: number,
  high: number,
  host = '127.0.0.1',
  attempts = PICK_ATTEMPTS,
): Promise<number | undefined> {
  for (let attempt = 0; attempt < attempts && high >= low; attempt++) {
    const port = await bindablePort(low + Math.floor(Math.random() * (high - low + 1)), host);
    if (port !== undefined) return port;
  }
  return undefined;
}

/**
 * A TCP port on `host` that was free a moment ago, for a server that cannot report the port it bound to (`0`)
 * itself. Picked at random below the kernel's ephemeral range: a port of that range may become the local port of
 * any outgoing connection between the pick and the server's bind (or between a stop and a restart on it), and the
 * server would then find it taken. Another process may still take it in between, which the caller's start reports.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const port =
    (await randomFreePort(LOWEST_PICKED_PORT, Math.min(ephemeralPortsStart() - 1, 65_535), host)) ??
    (await bindablePort(0, host));
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}
