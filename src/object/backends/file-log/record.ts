import { crc32 } from 'node:zlib';

/**
 * One record of a small-object log segment:
 *
 *   offset  size  field
 *   0       4     magic "SLG1"
 *   4       1     format version (1)
 *   5       1     kind: 1 put, 2 tombstone
 *   6       2     reserved, zero
 *   8       4     key length in bytes (UTF-8)
 *   12      4     payload length in bytes (0 for a tombstone)
 *   16      8     stamp: wall-clock milliseconds (with fraction) when the record was made
 *   24      4     CRC-32 over bytes 0..24, the key and the payload
 *   28      4     reserved, zero
 *   32      ...   key, then payload, then zeros up to the next RECORD_ALIGN_BYTES boundary
 *
 * A segment is preallocated with zeros and records are appended back to back, so the first
 * header that does not check out (zero magic, torn write, bad CRC) is the end of the segment.
 */
export const RECORD_HEADER_BYTES = 32;
export const RECORD_ALIGN_BYTES = 8;
const MAGIC = 0x31474c53; // "SLG1" read little-endian
const FORMAT_VERSION = 1;
/** A key longer than this is not a StrataFS key: a header claiming it is garbage. */
const MAX_KEY_BYTES = 4096;

export const enum RecordKind {
  Put = 1,
  Tombstone = 2,
}

export interface DecodedRecord {
  kind: RecordKind;
  key: string;
  /** Where the payload starts, relative to the buffer the record was decoded from. */
  payloadOffset: number;
  payloadBytes: number;
  stampMs: number;
  /** Bytes the record occupies including its padding: the next record starts this far on. */
  spanBytes: number;
}

export function recordSpanBytes(keyBytes: number, payloadBytes: number): number {
  const raw = RECORD_HEADER_BYTES + keyBytes + payloadBytes;
  return Math.ceil(raw / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
}

/** Builds a record, padded to its span. */
export function encodeRecord(kind: RecordKind, key: string, payload: Buffer, stampMs: number): Buffer {
  const keyBytes = Buffer.byteLength(key);
  const span = recordSpanBytes(keyBytes, payload.length);
  const out = Buffer.alloc(span);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt8(FORMAT_VERSION, 4);
  out.writeUInt8(kind, 5);
  out.writeUInt32LE(keyBytes, 8);
  out.writeUInt32LE(payload.length, 12);
  out.writeDoubleLE(stampMs, 16);
  out.write(key, RECORD_HEADER_BYTES, 'utf8');
  payload.copy(out, RECORD_HEADER_BYTES + keyBytes);
  out.writeUInt32LE(checksum(out, keyBytes, payload.length, 0), 24);
  return out;
}

function checksum(buf: Buffer, keyBytes: number, payloadBytes: number, at: number): number {
  const head = crc32(buf.subarray(at, at + 24));
  const bodyStart = at + RECORD_HEADER_BYTES;
  return crc32(buf.subarray(bodyStart, bodyStart + keyBytes + payloadBytes), head);
}

/**
 * The header's claimed lengths, or null when the bytes at `at` cannot start a record. Lets a
 * reader learn how much to read before it can verify the whole record.
 */
export function peekRecordSpan(buf: Buffer, at: number): number | null {
  if (at + RECORD_HEADER_BYTES > buf.length) return null;
  if (buf.readUInt32LE(at) !== MAGIC || buf.readUInt8(at + 4) !== FORMAT_VERSION) return null;
  const kind = buf.readUInt8(at + 5);
  if (kind !== RecordKind.Put && kind !== RecordKind.Tombstone) return null;
  const keyBytes = buf.readUInt32LE(at + 8);
  if (keyBytes === 0 || keyBytes > MAX_KEY_BYTES) return null;
  return recordSpanBytes(keyBytes, buf.readUInt32LE(at + 12));
}

/**
 * Decodes and verifies the record at `at`, or null when there is none (zeros, a torn or
 * partial write, a checksum mismatch, or the record runs past the buffer).
 */
export function decodeRecord(buf: Buffer, at: number): DecodedRecord | null {
  const span = peekRecordSpan(buf, at);
  if (span === null || at + span > buf.length) return null;
  const keyBytes = buf.readUInt32LE(at + 8);
  const payloadBytes = buf.readUInt32LE(at + 12);
  if (checksum(buf, keyBytes, payloadBytes, at) !== buf.readUInt32LE(at + 24)) return null;
  const keyStart = at + RECORD_HEADER_BYTES;
  return {
    kind: buf.readUInt8(at + 5) as RecordKind,
    key: buf.toString('utf8', keyStart, keyStart + keyBytes),
    payloadOffset: keyStart + keyBytes,
    payloadBytes,
    stampMs: buf.readDoubleLE(at + 16),
    spanBytes: span,
  };
}
