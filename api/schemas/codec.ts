/**
 * Schemas of the codec endpoint (`POST /codec/decode`, `POST /codec/encode`): Temporal's `Payloads` message in proto3
 * JSON, as the Web UI and the `temporal` CLI (`--codec-endpoint`) send and expect it, with the endpoint's limits.
 * Bytes are base64 text; the schema bounds their length, the route checks that they are base64.
 */
import { Type, type Static } from '@sinclair/typebox';

/**
 * The most payloads one request may carry. The Web UI and the CLI send the payloads of one field at a time (the
 * arguments of a start, the result of an activity), rarely more than a handful.
 */
export const MAX_CODEC_PAYLOADS = 100;
/** The most metadata entries of one payload (the SDKs write one to three: encoding, message type, key id). */
export const MAX_CODEC_METADATA_ENTRIES = 32;
/** The longest metadata name. */
export const MAX_CODEC_METADATA_NAME_LENGTH = 256;
/** The longest metadata value, as base64 text (3 KiB of bytes): metadata names things, it carries no data. */
export const MAX_CODEC_METADATA_VALUE_LENGTH = 4096;
/**
 * The longest payload data, as base64 text: Temporal's default blob size limit (2 MiB) in base64, plus the codec's
 * encryption overhead, so anything the server accepts can be decoded.
 */
export const MAX_CODEC_DATA_LENGTH = 4 * Math.ceil((2 * 1024 * 1024 + 64) / 3);
/** Body limit of the codec routes: one payload of the largest size, with room for its neighbours' metadata. */
export const CODEC_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

const Base64 = (maxLength: number, description: string) => Type.String({ maxLength, description });

/** One payload: metadata values and data as base64 (proto3 JSON `bytes`); either may be absent when empty. */
export const CodecPayload = Type.Object(
  {
    metadata: Type.Optional(
      Type.Record(Type.String(), Base64(MAX_CODEC_METADATA_VALUE_LENGTH, 'Metadata value, base64'), {
        maxProperties: MAX_CODEC_METADATA_ENTRIES,
        propertyNames: { minLength: 1, maxLength: MAX_CODEC_METADATA_NAME_LENGTH },
      }),
    ),
    data: Type.Optional(Base64(MAX_CODEC_DATA_LENGTH, 'Payload data, base64')),
  },
  { additionalProperties: false },
);
export type CodecPayload = Static<typeof CodecPayload>;

/** Temporal's `Payloads` in proto3 JSON: the body of both routes and of their answers. */
export const CodecPayloads = Type.Object(
  { payloads: Type.Array(CodecPayload, { maxItems: MAX_CODEC_PAYLOADS }) },
  { additionalProperties: false },
);
export type CodecPayloads = Static<typeof CodecPayloads>;

/** Headers the Web UI and the CLI send: the namespace the payloads belong to (informational; keys are global). */
export const CodecHeaders = Type.Object({
  'x-namespace': Type.Optional(
    Type.String({ minLength: 1, maxLength: 1000, description: 'Namespace of the payloads (sent by the Web UI/CLI)' }),
  ),
});
