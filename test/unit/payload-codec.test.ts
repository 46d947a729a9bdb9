/**
 * The payload codec: AES-256-GCM over the whole serialized payload, the newest key encrypting, each payload naming
 * its key, payloads from before the codec passing through, and every failure naming the key id, never the key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import {
  createPayloadCodec,
  dataConverterOf,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  payloadCodecKeysOf,
  type PayloadCodecKey,
} from '../../core/payload-codec.js';

const key = (id: string): PayloadCodecKey => ({ id, key: randomBytes(32) });
const OLD = key('2025-01');
const NEW = key('2026-01');
const SECRET = 'tenant acme: sbom-payments-api, do not leak';
const plain = (value: unknown = { note: SECRET }): Payload => defaultPayloadConverter.toPayload(value);
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');

async function encodeOne(keys: readonly PayloadCodecKey[], payload = plain()): Promise<Payload> {
  const [encoded] = await createPayloadCodec(keys).encode([payload]);
  return encoded!;
}

async function decodeOne(keys: readonly PayloadCodecKey[], payload: Payload): Promise<Payload> {
  const [decoded] = await createPayloadCodec(keys).decode([payload]);
  return decoded!;
}

describe('payload codec', () => {
  it('round-trips a payload, metadata and data', async () => {
    const original = plain({ note: SECRET, n: 42, nested: [true, null] });
    const decoded = await decodeOne([NEW], await encodeOne([NEW], original));
    expect(text(decoded.metadata?.encoding)).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(decoded)).toEqual({ note: SECRET, n: 42, nested: [true, null] });
  });

  it('leaves none of the plaintext in the ciphertext, and only the encoding and key id in the metadata', async () => {
    const original = plain();
    const encoded = await encodeOne([OLD, NEW], original);
    const data = Buffer.from(encoded.data!);
    expect(data.includes(Buffer.from(original.data!))).toBe(false);
    expect(data.includes(Buffer.from('tenant acme'))).toBe(false);
    expect(data.includes(Buffer.from('json/plain'))).toBe(false);
    expect(Object.keys(encoded.metadata!).sort()).toEqual([KEY_ID_METADATA, 'encoding'].sort());
    expect(text(encoded.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    // The newest key of the ring encrypts.
    expect(text(encoded.metadata![KEY_ID_METADATA])).toBe(NEW.id);
    // 12-byte IV, ciphertext of the serialized payload, 16-byte tag.
    expect(data.length).toBeGreaterThan(12 + 16 + original.data!.length);
  });

  it('encrypts the same payload differently each time (a fresh IV per payload)', async () => {
    const codec = createPayloadCodec([NEW]);
    const [a, b] = await codec.encode([plain(), plain()]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
  });

  it('rotates: an old key still decrypts, the new one encrypts, a ring without the old key names it', async () => {
    const before = await encodeOne([OLD]);
    expect(text(before.metadata![KEY_ID_METADATA])).toBe(OLD.id);
    expect(defaultPayloadConverter.fromPayload(await decodeOne([OLD, NEW], before))).toEqual({ note: SECRET });

    const after = await encodeOne([OLD, NEW]);
    expect(text(after.metadata![KEY_ID_METADATA])).toBe(NEW.id);
    expect(defaultPayloadConverter.fromPayload(await decodeOne([NEW], after))).toEqual({ note: SECRET });

    const error = await decodeOne([NEW], before).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`"${OLD.id}"`);
    expect((error as Error).message).toContain('not configured');
    expect((error as Error).message).not.toContain(OLD.key.toString('base64'));
  });

  it('passes payloads without the encrypted encoding through unchanged (histories from before the codec)', async () => {
    const original = plain();
    const binary: Payload = { metadata: { encoding: Buffer.from('binary/plain') }, data: Buffer.from('raw') };
    const noMetadata: Payload = { data: Buffer.from('{}') };
    const decoded = await createPayloadCodec([NEW]).decode([original, binary, noMetadata]);
    expect(decoded[0]).toBe(original);
    expect(decoded[1]).toBe(binary);
    expect(decoded[2]).toBe(noMetadata);
  });

  it('refuses altered data, a payload swapped under another key id and truncated data, naming the key id', async () => {
    const encoded = await encodeOne([NEW]);
    const tampered = Buffer.from(encoded.data!);
    tampered[20]! ^= 0x01;
    await expect(decodeOne([NEW], { ...encoded, data: tampered })).rejects.toThrow(
      `failed authentication with the key "${NEW.id}"`,
    );
    const tag = Buffer.from(encoded.data!);
    tag[tag.length - 1]! ^= 0x80;
    await expect(decodeOne([NEW], { ...encoded, data: tag })).rejects.toThrow(/failed authentication/);
    // The same id with another key (a misconfigured ring) fails authentication too, rather than yielding garbage.
    await expect(decodeOne([{ id: NEW.id, key: randomBytes(32) }], encoded)).rejects.toThrow(
      `failed authentication with the key "${NEW.id}"`,
    );
    await expect(decodeOne([NEW], { ...encoded, data: Buffer.from(encoded.data!).subarray(0, 20) })).rejects.toThrow(
      `(key "${NEW.id}") is truncated`,
    );
    const { [KEY_ID_METADATA]: _id, ...withoutId } = encoded.metadata!;
    await expect(decodeOne([NEW], { ...encoded, metadata: withoutId })).rejects.toThrow(/names no key/);
  });

  it('round-trips an empty payload, whose ciphertext is only the IV and the tag', async () => {
    const empty: Payload = { metadata: {}, data: new Uint8Array() };
    const encoded = await encodeOne([NEW], empty);
    expect(encoded.data).toHaveLength(12 + 16);
    const decoded = await decodeOne([NEW], encoded);
    expect([decoded.metadata, Buffer.from(decoded.data ?? [])]).toEqual([{}, Buffer.alloc(0)]);
  });

  it('quotes at most 64 characters of a key id it cannot use (a payload may name anything)', async () => {
    const encoded = await encodeOne([NEW]);
    const long = 'x'.repeat(200);
    const renamed = { ...encoded, metadata: { ...encoded.metadata, [KEY_ID_METADATA]: Buffer.from(long) } };
    const error = await decodeOne([NEW], renamed).catch((e: unknown) => e as Error);
    expect((error as Error).message).toContain(`"${'x'.repeat(64)}"`);
    expect((error as Error).message).not.toContain('x'.repeat(65));
  });

  it('refuses a ring that is empty, or has a key of the wrong length, a malformed or a repeated id', () => {
    expect(() => createPayloadCodec([])).toThrow(/at least one key/);
    expect(() => createPayloadCodec([{ id: 'short', key: randomBytes(16) }])).toThrow(
      'Payload codec key "short" must be 32 bytes (got 16)',
    );
    expect(() => createPayloadCodec([{ id: 'has space', key: randomBytes(32) }])).toThrow(/is invalid/);
    expect(() => createPayloadCodec([NEW, { ...OLD, id: NEW.id }])).toThrow(`"${NEW.id}" is repeated`);
  });
});

describe('payload codec keys of the configuration', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'payload-codec-'));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('generates one local key under DATA_DIR, mode 0600, and finds the same one again', async () => {
    const config = loadConfig({ DATA_DIR: dataDir });
    const [first] = await payloadCodecKeysOf(config);
    expect(first!.id).toMatch(/^local-\d{8}$/);
    expect(first!.key).toHaveLength(32);
    const file = join(dataDir, 'auth', 'payload-codec-key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).trim()).toBe(`${first!.id}:${first!.key.toString('base64')}`);
    const again = await payloadCodecKeysOf(loadConfig({ DATA_DIR: dataDir }));
    expect(again).toEqual([first]);
    // Another process of the same data directory decrypts what this one encrypted.
    const encoded = await encodeOne([first!]);
    expect(defaultPayloadConverter.fromPayload(await decodeOne(again, encoded))).toEqual({ note: SECRET });
  });

  it('refuses a local key file that holds no valid entry, naming the file and never its content', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'payload-codec-broken-'));
    try {
      await mkdir(join(broken, 'auth'), { recursive: true });
      await writeFile(join(broken, 'auth', 'payload-codec-key'), 'local-1:c2VjcmV0LWJ1dC1zaG9ydA==\n');
      const error = await payloadCodecKeysOf(loadConfig({ DATA_DIR: broken })).catch((e: unknown) => e as Error);
      expect((error as Error).message).toBe(
        `The local payload codec key in ${broken}/auth/payload-codec-key (key id "local-1") must have a key of ` +
          'exactly 32 bytes (got 16) (delete it only if no workflow history needs it)',
      );
      expect((error as Error).message).not.toContain('c2VjcmV0');
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });

  it('uses the configured keys and writes nothing then', async () => {
    const configured = await mkdtemp(join(tmpdir(), 'payload-codec-configured-'));
    try {
      const entry = `${NEW.id}:${NEW.key.toString('base64')}`;
      const config = loadConfig({ DATA_DIR: configured, PAYLOAD_CODEC_KEYS: entry });
      expect(await payloadCodecKeysOf(config)).toEqual([NEW]);
      await expect(stat(join(configured, 'auth', 'payload-codec-key'))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(configured, { recursive: true, force: true });
    }
  });

  it('builds the data converter of clients and workers: the codec and an encoding failure converter', async () => {
    const entry = `${NEW.id}:${NEW.key.toString('base64')}`;
    const converter = await dataConverterOf(loadConfig({ PAYLOAD_CODEC_KEYS: entry }));
    expect(converter.payloadCodecs).toHaveLength(1);
    const [encoded] = await converter.payloadCodecs![0]!.encode([plain()]);
    expect(text(encoded!.metadata![KEY_ID_METADATA])).toBe(NEW.id);
    expect(converter.failureConverterPath).toMatch(/payload-failure-converter\.cjs$/);
  });
});
