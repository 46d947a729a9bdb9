/**
 * The dev server's command line (`devServerArgs`) and the codec endpoint `npm start` gives its Web UI
 * (`codecEndpointOf`): the UI decodes through the API only when it runs, at an address the browser on this machine
 * reaches.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { codecEndpointOf } from '../../stack/index.js';
import { devServerArgs, type DevServerOptions } from '../../stack/temporal.js';

const base: DevServerOptions = { ip: '127.0.0.1', port: 7233, namespace: 'default' };

/** The value that follows `flag` in `args`, or undefined when the flag is absent. */
function valueOf(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

describe('devServerArgs', () => {
  it('points the Web UI at the codec endpoint when one is given', () => {
    const args = devServerArgs({ ...base, uiPort: 8233, uiCodecEndpoint: 'http://127.0.0.1:3000/codec' });
    expect(valueOf(args, '--ui-codec-endpoint')).toBe('http://127.0.0.1:3000/codec');
    expect(valueOf(args, '--ui-port')).toBe('8233');
    expect(args.filter((arg) => arg === '--ui-codec-endpoint')).toHaveLength(1);
  });

  it('gives no codec endpoint without one', () => {
    expect(devServerArgs({ ...base, uiPort: 8233 })).not.toContain('--ui-codec-endpoint');
  });

  it('gives no codec endpoint to a headless server, which has no Web UI to decode for', () => {
    const args = devServerArgs({ ...base, uiCodecEndpoint: 'http://127.0.0.1:3000/codec' });
    expect(args).toContain('--headless');
    expect(args).not.toContain('--ui-codec-endpoint');
  });
});

describe('codecEndpointOf', () => {
  it.each([
    [{}, 'http://127.0.0.1:3000/codec'],
    [{ API_PORT: '3100' }, 'http://127.0.0.1:3100/codec'],
    [{ API_HOST: '0.0.0.0', API_PORT: '3100' }, 'http://127.0.0.1:3100/codec'],
    [{ API_HOST: 'localhost' }, 'http://127.0.0.1:3000/codec'],
    [{ API_HOST: '10.1.2.3' }, 'http://10.1.2.3:3000/codec'],
    [{ API_HOST: '::1' }, 'http://[::1]:3000/codec'],
  ])('with %j is %s', (env, expected) => {
    expect(codecEndpointOf(loadConfig(env))).toBe(expected);
  });

  it('is undefined with API_PORT=0, whose port is only known once the API listens', () => {
    expect(codecEndpointOf(loadConfig({ API_PORT: '0' }))).toBeUndefined();
  });
});
