/**
 * The Temporal connection read from Temporal's environment configuration: variables over a `temporal.toml` profile,
 * certificate and key files read and parsed at start-up, a bad one refused by the variable and the file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, temporalConnectionOf } from '../../core/config.js';
import { configProblems } from '../support/config.js';
import { createTestPki, type TestPki } from '../support/tls.js';

let dir: string;
let pki: TestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'config-temporal-'));
  pki = await createTestPki(join(dir, 'pki'));
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const mtls = () => ({
  TEMPORAL_ADDRESS: 'temporal.example:7233',
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
  TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
  TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
});

describe('Temporal connection', () => {
  it('connects in plaintext to the embedded dev server when nothing is configured', () => {
    const config = loadConfig({});
    expect(config.temporal.tls).toBeUndefined();
    expect(temporalConnectionOf(config)).toEqual({ address: '127.0.0.1:7233' });
  });

  it('reads the server CA, the client certificate pair and the server name from TEMPORAL_TLS_* files', () => {
    const options = temporalConnectionOf(loadConfig({ ...mtls(), TEMPORAL_TLS_SERVER_NAME: 'frontend.internal' }));
    expect(options.address).toBe('temporal.example:7233');
    expect(options.tls?.serverNameOverride).toBe('frontend.internal');
    expect(Buffer.from(options.tls!.serverRootCACertificate!).toString()).toContain('BEGIN CERTIFICATE');
    expect(Buffer.from(options.tls!.clientCertPair!.crt).toString()).toContain('BEGIN CERTIFICATE');
    expect(Buffer.from(options.tls!.clientCertPair!.key).toString()).toContain('PRIVATE KEY');
  });

  it('turns TLS on with the system roots for an API key, and off when TEMPORAL_TLS=false says so', () => {
    const cloud = temporalConnectionOf(
      loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' }),
    );
    expect(cloud).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'k' });
    const plain = temporalConnectionOf(
      loadConfig({ TEMPORAL_ADDRESS: 'proxy:7233', TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }),
    );
    expect(plain).toEqual({ address: 'proxy:7233', apiKey: 'k' });
  });

  it('sends TEMPORAL_GRPC_META_* as gRPC metadata', () => {
    const options = temporalConnectionOf(loadConfig({ TEMPORAL_ADDRESS: 'h:1', TEMPORAL_GRPC_META_X_TEAM: 'ops' }));
    expect(options.metadata).toEqual({ 'x-team': 'ops' });
  });

  it('reads a temporal.toml profile, which TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE override', async () => {
    const file = join(dir, 'temporal.toml');
    await writeFile(
      file,
      [
        '[profile.default]',
        'address = "localhost:7233"',
        '[profile.prod]',
        'address = "prod.example:7233"',
        'namespace = "stellaops.acct"',
        'api_key = "secret"',
        '[profile.prod.tls]',
        `server_ca_cert_path = "${pki.caCert}"`,
        'server_name = "prod.internal"',
        '',
      ].join('\n'),
    );
    const prod = loadConfig({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    expect(prod.temporal).toMatchObject({
      address: 'prod.example:7233',
      namespace: 'stellaops.acct',
      apiKey: 'secret',
    });
    expect(temporalConnectionOf(prod).tls?.serverNameOverride).toBe('prod.internal');
    const overridden = loadConfig({
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_ADDRESS: 'other:7233',
      TEMPORAL_NAMESPACE: 'other',
    });
    expect(overridden.temporal).toMatchObject({ address: 'other:7233', namespace: 'other' });
    expect(loadConfig({ TEMPORAL_CONFIG_FILE: file }).temporal.address).toBe('localhost:7233');
    expect(configProblems({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })).toEqual([
      expect.stringMatching(/TEMPORAL_PROFILE.*profile "staging".*not found/),
    ]);
  });

  it('refuses a missing or unparseable configuration file, naming it', async () => {
    const missing = join(dir, 'absent.toml');
    expect(configProblems({ TEMPORAL_CONFIG_FILE: missing })).toEqual([
      `TEMPORAL_CONFIG_FILE: cannot read ${missing} (ENOENT)`,
    ]);
    const broken = join(dir, 'broken.toml');
    await writeFile(broken, '[profile.default]\napi_key = "s3cret-key"\naddress = \n');
    const problems = configProblems({ TEMPORAL_CONFIG_FILE: broken });
    expect(problems).toEqual([expect.stringContaining(`cannot load profile "default" of ${broken}`)]);
    expect(problems.join('\n')).not.toContain('s3cret-key');
  });

  it('refuses a missing certificate file, naming the variable and the file', () => {
    const missing = join(dir, 'nowhere', 'ca.pem');
    expect(configProblems({ ...mtls(), TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing })).toEqual([
      `TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${missing}: ENOENT`,
    ]);
  });

  it('refuses a file that is not a PEM certificate or key, naming the variable and the file', async () => {
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate\n');
    expect(configProblems({ ...mtls(), TEMPORAL_TLS_CLIENT_CERT_PATH: junk })).toEqual([
      `TEMPORAL_TLS_CLIENT_CERT_PATH (${junk}) is not a PEM-encoded certificate`,
    ]);
    // A certificate where the key belongs is no key.
    expect(configProblems({ ...mtls(), TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientCert })).toEqual([
      `TEMPORAL_TLS_CLIENT_KEY_PATH (${pki.clientCert}) is not a PEM-encoded private key`,
    ]);
  });

  it('refuses a client certificate without its key', () => {
    const problems = configProblems({ ...mtls(), TEMPORAL_TLS_CLIENT_KEY_PATH: '' });
    expect(problems).toEqual([expect.stringContaining('mTLS needs both the certificate and its key')]);
  });

  it('refuses an address that is not host:port, from a variable or a profile', async () => {
    expect(configProblems({ TEMPORAL_ADDRESS: 'http://temporal' })).toEqual([
      'TEMPORAL_ADDRESS must be host:port (got "http://temporal")',
    ]);
    const file = join(dir, 'bad-address.toml');
    await writeFile(file, '[profile.default]\naddress = "temporal"\n');
    expect(configProblems({ TEMPORAL_CONFIG_FILE: file })).toEqual([
      `TEMPORAL_ADDRESS must be host:port (got "temporal" from profile "default" of ${file})`,
    ]);
  });
});

describe('Postgres TLS files in the connection string', () => {
  it('accepts the CA and client files of sslrootcert, sslcert and sslkey', () => {
    const url = `postgres://app@db.internal/stellaops?sslmode=verify-full&sslrootcert=${pki.caCert}&sslcert=${pki.clientCert}&sslkey=${pki.clientKey}`;
    expect(loadConfig({ DATABASE_URL: url }).database.url).toBe(url);
  });

  it('refuses a CA file it cannot read or that is no PEM, naming the variable and the file', async () => {
    const missing = join(dir, 'absent-ca.pem');
    expect(configProblems({ DATABASE_URL: `postgres://app@db/s?sslmode=verify-full&sslrootcert=${missing}` })).toEqual([
      `DATABASE_URL: cannot read sslrootcert ${missing} (ENOENT)`,
    ]);
    const junk = join(dir, 'junk-ca.pem');
    await writeFile(junk, 'nothing\n');
    expect(
      configProblems({
        DATABASE_URL: 'postgres://app@db/s',
        DATABASE_MIGRATION_URL: `postgres://owner@db/s?sslrootcert=${junk}`,
      }),
    ).toEqual([`DATABASE_MIGRATION_URL: sslrootcert ${junk} is not a PEM file`]);
  });
});
