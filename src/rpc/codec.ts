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
