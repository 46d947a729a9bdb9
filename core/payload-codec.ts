/**
 * Encryption of Temporal payloads: an AES-256-GCM payload codec every product client and worker installs, so workflow
 * inputs, signals, updates, queries, results, activity inputs and outputs and failures' details are ciphertext in
 * Temporal. Several keys make a rotation: the last one encrypts, each payload names the key that encrypted it.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import protos from '@temporalio/proto';
import {
  PAYLOAD_CODEC_KEY_BYTES,
  PAYLOAD_CODEC_KEY_ID_PATTERN,
  parsePayloadCodecKey,
  type AppConfig,
} from './config.js';
import { loadOrCreateSecret } from './local-secrets.js';

/** One key of the ring: a 32-byte AES-256 key and the id encrypted payloads carry (`[A-Za-z0-9._-]{1,64}`). */
export interface PayloadCodecKey {
  id: string;
  key: Buffer;
}

/** The `encoding` of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** The metadata entry naming the key that encrypted a payload. */
export const KEY_ID_METADATA = 'encryption-key-id';
/** Name of the key generated once under the data directory for local runs (`DATA_DIR/auth/payload-codec-key`). */
export const LOCAL_PAYLOAD_CODEC_KEY = 'payload-codec-key';
/**
 * The failure converter module of the product's data converter: a path, because the SDK loads it by `require` in
 * clients and workers and bundles it into the workflow sandbox (give it to `bundleWorkflows` too).
 */
export const PAYLOAD_FAILURE_CONVERTER_PATH = fileURLToPath(
  new URL('./payload-failure-converter.cjs', import.meta.url),
);

const ALGORITHM = 'aes-256-gcm';
/** GCM's recommended nonce length; a fresh random one per payload. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const { Payload: PayloadProto } = protos.temporal.api.common.v1;

/** Metadata values are bytes, as the SDK's own converters write them. */
const bytesOf = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const textOf = (bytes: Uint8Array | null | undefined): string | undefined =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/**
 * A payload codec over `keys` (oldest first): encodes with the last key, decodes with the key the payload names.
 * Payloads that are not `binary/encrypted` (histories from before the codec) decode unchanged.
 * @throws Error when the ring is empty, a key is not 32 bytes, an id is malformed or repeated.
 */
export function createPayloadCodec(keys: readonly PayloadCodecKey[]): PayloadCodec {
  const current = keys.at(-1);
  if (!current) throw new Error('A payload codec needs at least one key');
  const ring = new Map<string, Buffer>();
  for (const { id, key } of keys) {
    if (!PAYLOAD_CODEC_KEY_ID_PATTERN.test(id))
      throw new Error(`Payload codec key id ${JSON.stringify(id)} is invalid`);
    if (key.length !== PAYLOAD_CODEC_KEY_BYTES) {
      throw new Error(`Payload codec key "${id}" must be ${PAYLOAD_CODEC_KEY_BYTES} bytes (got ${key.length})`);
    }
    if (ring.has(id)) throw new Error(`Payload codec key id "${id}" is repeated`);
    ring.set(id, key);
  }
  const encrypt = (payload: Payload): Payload => {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, current.key, iv);
    // The whole payload, metadata included: its encoding and message type are nobody's business but the reader's.
    const plaintext = PayloadProto.encode(payload).finish();
    return {
      metadata: { [METADATA_ENCODING_KEY]: bytesOf(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: bytesOf(current.id) },
      data: Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]),
    };
  };
  const decrypt = (payload: Payload): Payload => {
    if (textOf(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const id = textOf(payload.metadata?.[KEY_ID_METADATA]);
    if (id === undefined) throw new Error(`Encrypted payload names no key (no ${KEY_ID_METADATA} metadata)`);
    const named = JSON.stringify(id.slice(0, 64));
    const key = ring.get(id);
    if (!key) throw new Error(`Encrypted payload names the key ${named}, which is not configured`);
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`Encrypted payload (key ${named}) is truncated`);
    const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new Error(`Encrypted payload failed authentication with the key ${named} (altered, or another key)`);
    }
    return PayloadProto.decode(plaintext);
  };
  return {
    async encode(payloads) {
      return payloads.map(encrypt);
    },
    async decode(payloads) {
      return payloads.map(decrypt);
    },
  };
}

/** A new local key entry: `local-<yyyymmdd>:<base64 of 32 random bytes>` (the date tells rotations apart). */
function generateLocalKeyEntry(): string {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return `local-${day}:${randomBytes(PAYLOAD_CODEC_KEY_BYTES).toString('base64')}`;
}

/**
 * The configured codec keys, or the one key generated once under `DATA_DIR` (local runs; production refuses to start
 * without configured keys), so the API, the workers and `npm start` of one data directory share it.
 * @throws Error when the local key file holds no valid entry (naming the file, never its content).
 */
export async function payloadCodecKeysOf(config: AppConfig): Promise<PayloadCodecKey[]> {
  if (config.payloadCodec.keys) return config.payloadCodec.keys;
  const entry = await loadOrCreateSecret(config.dataDir, LOCAL_PAYLOAD_CODEC_KEY, generateLocalKeyEntry);
  const key = parsePayloadCodecKey(entry);
  if ('problem' in key) {
    throw new Error(
      `The local payload codec key in ${config.dataDir}/auth/${LOCAL_PAYLOAD_CODEC_KEY} ${key.problem} ` +
        '(delete it only if no workflow history needs it)',
    );
  }
  return [key];
}

/** The payload codec of the configured keys (see {@link payloadCodecKeysOf}). */
export async function payloadCodecOf(config: AppConfig): Promise<PayloadCodec> {
  return createPayloadCodec(await payloadCodecKeysOf(config));
}

/**
 * The data converter of every product client and worker: the payload codec, and failures whose messages and stack
 * traces are encoded payloads, so they are encrypted too.
 */
export async function dataConverterOf(config: AppConfig): Promise<DataConverter> {
  return { payloadCodecs: [await payloadCodecOf(config)], failureConverterPath: PAYLOAD_FAILURE_CONVERTER_PATH };
}
