import { Packr, RESERVE_START_SPACE } from 'msgpackr';

/**
 * Wire messages. Every frame is a 4-byte big-endian payload length followed by one
 * msgpack array whose first element is the message type:
 *
 *   HELLO     [1, protocolVersion, clientId, clientNonce, wantsPushes?]  client -> server, first frame
 *   CHALLENGE [2, protocolVersion, serverNonce]                  server -> client
 *   AUTH      [3, clientProof]                                   client -> server
 *   AUTH_OK   [4, serverProof]                                   server -> client; requests may follow
 *   REJECT    [5, errno, message]                                either way; the sender then closes
 *   REQUEST   [6, id, method, args]                              idempotent call
 *             [6, id, method, args, seq, ackBelowSeq, isRetry]   call applied at most once
 *   RESULT    [7, id, value]
 *   ERROR     [8, id, errno, message]
 *   PUSH      [9, topic, value]                                  server -> client, unasked (version 2)
 */
export const MessageType = {
  HELLO: 1,
  CHALLENGE: 2,
  AUTH: 3,
  AUTH_OK: 4,
  REJECT: 5,
  REQUEST: 6,
  RESULT: 7,
  ERROR: 8,
  PUSH: 9,
} as const;

/** Version 2 added PUSH; a server still serves version 1 clients (it never pushes to them). */
export const PROTOCOL_VERSION = 2;
export const OLDEST_PROTOCOL_VERSION = 1;
export const FIRST_PUSH_VERSION = 2;
export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Before authentication nothing but the tiny handshake frames is accepted. */
export const MAX_HANDSHAKE_FRAME_BYTES = 1024;

// One codec per process: msgpackr packs into a shared buffer and hands out subarrays of it
// (never overwritten later), so a framed message costs no copy. copyBuffers: decoded binary
// values must not alias the frame decoder's pooled buffer, which is reused for the next frame.
const packr = new Packr({ useRecords: false, copyBuffers: true, moreTypes: false });

/** Encodes one message as a complete frame (header included) in a single buffer. */
export function encodeFrame(message: unknown[]): Buffer {
  const frame = packr.pack(message, RESERVE_START_SPACE | FRAME_HEADER_BYTES);
  frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
  return frame;
}

/** Decodes one frame payload. Throws on anything that is not exactly one msgpack value. */
export function decodePayload(payload: Buffer): unknown {
  return packr.unpack(payload);
}

/**
 * Values whose msgpack bytes already exist (the engine thread packs each recorded change's reply
 * to store it, and hands those bytes over): their RESULT frame reuses the bytes instead of
 * packing the value again. The bytes ride on the decoded value (which nobody changes after) as a
 * hidden symbol property: a WeakMap entry per reply cost more in GC than it saved.
 */
const ENCODED = Symbol('strata.rpc.encoded');
type WithEncoding = { [ENCODED]?: Buffer };

/** Decodes bytes packed elsewhere (same msgpack settings) and remembers them for encodeResultFrame. */
export function adoptEncodedValue(encoded: Buffer): unknown {
  const value: unknown = packr.unpack(encoded);
  if (typeof value === 'object' && value !== null) {
    Object.defineProperty(value, ENCODED, { value: encoded });
  }
  return value;
}

/**
 * A value known only by its msgpack bytes (same settings), never decoded here: for a serving
 * thread that passes an engine thread's packed replies straight into RESULT frames. Decoding each
 * reply only to send its bytes cost a 16-key object per create in allocation and GC.
 */
export class EncodedValue {
  constructor(readonly bytes: Buffer) {}
}

/** `value`'s msgpack bytes as a RESULT frame would carry them: for an EncodedValue made elsewhere. */
export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

/** A RESULT frame `[7, id, value]`; for an adopted or encoded value, its bytes copied in behind a hand-made header. */
export function encodeResultFrame(id: number, value: unknown): Buffer {
  const encoded =
    value instanceof EncodedValue
      ? value.bytes
      : typeof value === 'object' && value !== null
        ? (value as WithEncoding)[ENCODED]
        : undefined;
  if (encoded === undefined) return encodeFrame([MessageType.RESULT, id, value]);
  // msgpack: fixarray of 3, positive fixint type, then the id as the smallest unsigned integer.
  const idBytes = id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 2 + idBytes + encoded.length);
  frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
  frame[4] = 0x93;
  frame[5] = MessageType.RESULT;
  let at = 6;
  if (idBytes === 1) {
    frame[at++] = id;
  } else if (idBytes === 2) {
    frame[at++] = 0xcc;
    frame[at++] = id;
  } else if (idBytes === 3) {
    frame[at++] = 0xcd;
    at = frame.writeUInt16BE(id, at);
  } else {
    frame[at++] = 0xce;
    at = frame.writeUInt32BE(id, at);
  }
  encoded.copy(frame, at);
  return frame;
}
