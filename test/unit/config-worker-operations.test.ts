/** The worker's operations settings: the SDK metrics port and the bridge shard's tenant placement file. */
import { describe, expect, it } from 'vitest';
import { loadConfig, loadTenantPlacement, type ReadTextFile } from '../../core/config.js';
import { configProblems, refusedConfigProblems } from '../support/config.js';

/** A reader of in-memory files, as text only; a missing one fails as the file system would. */
function files(contents: Record<string, string>): ReadTextFile {
  return (path, encoding) => {
    if (encoding !== 'utf8') throw new Error(`${path} read as ${JSON.stringify(encoding)}, not as UTF-8 text`);
    const text = contents[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
}

describe('WORKER_SDK_METRICS_PORT', () => {
  it('is unset by default (a free loopback port at start) and takes a port', () => {
    expect(loadConfig({}).worker.sdkMetricsPort).toBeUndefined();
    expect(loadConfig({ WORKER_SDK_METRICS_PORT: '19465' }).worker.sdkMetricsPort).toBe(19465);
    expect(configProblems({ WORKER_SDK_METRICS_PORT: '70000' })).toEqual([
      'WORKER_SDK_METRICS_PORT must be an integer between 0 and 65535 (got "70000")',
    ]);
  });
});

describe('tenant placement', () => {
  it('reads the tenants of a JSON or YAML file, each once', () => {
    const read = files({
      '/p.yaml': 'tenants:\n  - acme\n  - eu.globex\n  - acme\n',
      '/p.json': '{"tenants":["acme"]}',
    });
    expect(loadTenantPlacement('/p.yaml', read)).toEqual(['acme', 'eu.globex']);
    expect(loadTenantPlacement('/p.json', read)).toEqual(['acme']);
  });

  it('refuses an empty list, a missing list, non-ids and an unreadable file, naming the file', () => {
    const read = files({
      '/empty.yaml': 'tenants: []\n',
      '/none.yaml': 'shards: {}\n',
      '/bad.yaml': 'tenants: [acme, "a b", 7]\n',
      '/broken.json': '{"tenants": [',
    });
    const problems = (path: string) => refusedConfigProblems(() => loadTenantPlacement(path, read), path);
    expect(problems('/empty.yaml')).toEqual(['/empty.yaml: tenants must be a non-empty list of tenant ids']);
    expect(problems('/none.yaml')).toEqual(['/none.yaml: tenants must be a non-empty list of tenant ids']);
    expect(problems('/bad.yaml')).toEqual([
      '/bad.yaml: tenants[1] must be a tenant id (got "a b")',
      '/bad.yaml: tenants[2] must be a tenant id (got 7)',
    ]);
    expect(problems('/broken.json')).toHaveLength(1);
    expect(problems('/broken.json')[0]).toMatch(/^\/broken\.json: /);
    expect(problems('/missing.yaml')[0]).toMatch(/^\/missing\.yaml: ENOENT/);
  });

  it('refuses a file without a document (empty, or null) like one without a list', () => {
    const read = files({ '/blank.yaml': '', '/null.json': 'null' });
    for (const path of ['/blank.yaml', '/null.json']) {
      expect(refusedConfigProblems(() => loadTenantPlacement(path, read), path)).toEqual([
        `${path}: tenants must be a non-empty list of tenant ids`,
      ]);
    }
  });

  it('says it is the tenant placement that is invalid, whatever the problem', () => {
    const read = files({ '/empty.yaml': 'tenants: []\n', '/bad.yaml': 'tenants: ["a b"]\n' });
    for (const path of ['/empty.yaml', '/bad.yaml', '/missing.yaml']) {
      expect(() => loadTenantPlacement(path, read), path).toThrow(`Invalid tenant placement:\n  - ${path}: `);
    }
  });

  it('gives the bridge the file’s tenants at start, on its own durable consumer', () => {
    const read = files({ '/shard.yaml': 'tenants: [acme, globex]\n' });
    const config = loadConfig({ NATS_BRIDGE_TENANTS_FILE: '/shard.yaml', NATS_BRIDGE_DURABLE: 'shard-a' }, read);
    expect(config.nats.bridge.tenants).toEqual(['acme', 'globex']);
    expect(config.nats.bridge.tenantsFile).toBe('/shard.yaml');
    expect(loadConfig({}).nats.bridge.tenantsFile).toBeUndefined();
    expect(configProblems({ NATS_BRIDGE_TENANTS_FILE: '/shard.yaml' }, read)).toEqual([
      'NATS_BRIDGE_TENANTS needs its own NATS_BRIDGE_DURABLE per shard',
    ]);
  });

  it('refuses a placement file with NATS_BRIDGE_TENANTS, and reports the file’s problems with the others', () => {
    const read = files({ '/shard.yaml': 'tenants: [acme]\n', '/empty.yaml': 'tenants: []\n' });
    expect(
      configProblems(
        { NATS_BRIDGE_TENANTS_FILE: '/shard.yaml', NATS_BRIDGE_TENANTS: 'acme', NATS_BRIDGE_DURABLE: 'shard-a' },
        read,
      ),
    ).toEqual(['NATS_BRIDGE_TENANTS and NATS_BRIDGE_TENANTS_FILE exclude each other: set one']);
    expect(
      configProblems(
        { NATS_BRIDGE_TENANTS_FILE: '/empty.yaml', NATS_BRIDGE_DURABLE: 'shard-a', WORKER_MODE: 'x' },
        read,
      ),
    ).toEqual([
      'WORKER_MODE must be one of saga, effect, combined (got "x")',
      '/empty.yaml: tenants must be a non-empty list of tenant ids',
    ]);
  });
});
