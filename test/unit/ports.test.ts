/** Port picking of the embedded servers: free ports below the kernel's ephemeral range. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { bindablePort, ephemeralPortsStart, freePort } from '../../stack/ports.js';

describe('ports', () => {
  it("reads where the kernel's ephemeral range starts, with Linux's default when it cannot", () => {
    expect(ephemeralPortsStart(() => '32768\t60999\n')).toBe(32_768);
    expect(ephemeralPortsStart(() => '49152 65535')).toBe(49_152);
    expect(ephemeralPortsStart(() => 'garbage')).toBe(32_768);
    expect(ephemeralPortsStart(() => '0 100')).toBe(32_768);
    expect(
      ephemeralPortsStart(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(32_768);
  });

  it('picks free ports below the ephemeral range, which a server can then bind', async () => {
    const start = ephemeralPortsStart();
    const picked = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of picked) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(start);
    }
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(picked[0], '127.0.0.1', resolve));
    try {
      // Taken now: probing it says so.
      expect(await bindablePort(picked[0]!)).toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await bindablePort(picked[0]!)).toBe(picked[0]);
  });
});
