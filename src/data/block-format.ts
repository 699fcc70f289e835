import { createHash } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { loadNativeAddon } from '../common/index.js';
import type { BlockRef } from './layout.js';

/** The `native/crc32` addon: zlib's CRC-32 by carry-less multiply, where the CPU has it (crc32.c). */
interface Crc32Addon {
  crc32?: (data: Uint8Array, value: number) => number;
}

/**
 * zlib.crc32's results, ~4x faster where the addon is built and the CPU can (STRATA_NATIVE_CRC32=0
 * keeps zlib's, for comparisons).
 */
const crc32: (data: Uint8Array, value: number) => number =
  (process.env.STRATA_NATIVE_CRC32 !== '0' && loadNativeAddon<Crc32Addon>('crc32')?.crc32) || zlibCrc32;

/**
 * Every block object is its data followed by a trailer: one 16-byte check slot per 64 KiB
 * segment of the data, then a 12-byte footer: magic, data length, segment size (u32 LE each).
 * Per-segment checks let a small random read fetch and verify just the segments it needs (plus
 * the trailer) instead of a whole 4 MiB block. Both formats have the same trailer size, so a
 * reader finds the trailer from the block length alone and learns the format from its footer.
 *
 * "SFB3" (what this version writes): slot = CRC-32 (zlib's, IEEE polynomial) of the block's
 * identity (slice id, block index, segment index) followed by the segment, u32 LE, then 12 zero
 * bytes. The checks are there to catch corruption, truncation and an object that is not the
 * block it is named as (a misplaced or swapped object, a segment out of place), not an
 * adversary: volume encryption, when it exists, must authenticate each block itself (AES-GCM).
 * A random change escapes one segment's CRC with probability 2^-32 and any error burst up to
 * 32 bits is always caught. One CRC-32 and not two: two CRC-32s of the same data with different
 * seeds differ by a constant that depends only on the seeds and the length, so a second one
 * would catch nothing the first misses. zlib.crc32 ran at ~2.7 GiB/s here against ~1 GiB/s for
 * native SHA-256, which was most of the sealing thread's CPU while streaming writes.
 *
 * "SFB2" (blocks written before): slot = first 16 bytes of the segment's SHA-256, no identity.
 * Read and verified forever; never written again. See bench/data/checksum.ts.
 */
export const SEGMENT_BYTES = 64 * 1024;
const SLOT_BYTES = 16;
const FOOTER_BYTES = 12;
const MAGIC_SHA256 = 0x32424653; // "SFB2" read as u32 LE
const MAGIC_CRC32 = 0x33424653; // "SFB3" read as u32 LE

export class CorruptBlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBlockError';
  }
}

export function segmentCount(dataLength: number): number {
  return Math.max(1, Math.ceil(dataLength / SEGMENT_BYTES));
}

/** Trailer size of a block holding `dataLength` bytes (the same in every format). */
export function trailerBytes(dataLength: number): number {
  return segmentCount(dataLength) * SLOT_BYTES + FOOTER_BYTES;
}

/** Object size of a block holding `dataLength` bytes. */
export function bodyBytes(dataLength: number): number {
  return dataLength + trailerBytes(dataLength);
}

// One per thread (the sealing worker has its own module instance); never held across a call.
const identity = Buffer.alloc(16);

/** The CRC-32 that the SFB3 slot of segment `segment` of `block` holds for `data`. */
function segmentCrc(data: Buffer, block: BlockRef, segment: number): number {
  const id = block.sliceId as number;
  identity.writeUInt32LE(id % 0x1_0000_0000, 0);
  identity.writeUInt32LE(Math.floor(id / 0x1_0000_0000), 4);
  identity.writeUInt32LE(block.blockIndex, 8);
  identity.writeUInt32LE(segment, 12);
  return crc32(data, crc32(identity, 0));
}

/**
 * Writes the trailer (format SFB3) after `block.blockLengthBytes` bytes of `buffer`, which must
 * have room for it, and returns the object body, without copying the data.
 */
export function sealBlock(buffer: Buffer, block: BlockRef): Buffer {
  const dataLength = block.blockLengthBytes;
  const body = buffer.subarray(0, bodyBytes(dataLength));
  const segments = segmentCount(dataLength);
  body.fill(0, dataLength, dataLength + segments * SLOT_BYTES);
  for (let s = 0; s < segments; s++) {
    const start = s * SEGMENT_BYTES;
    const segment = buffer.subarray(start, Math.min(dataLength, start + SEGMENT_BYTES));
    body.writeUInt32LE(segmentCrc(segment, block, s), dataLength + s * SLOT_BYTES);
  }
  const footer = dataLength + segments * SLOT_BYTES;
  body.writeUInt32LE(MAGIC_CRC32, footer);
  body.writeUInt32LE(dataLength, footer + 4);
  body.writeUInt32LE(SEGMENT_BYTES, footer + 8);
  return body;
}

/** Checks the trailer's shape and returns its format's magic. */
function checkTrailer(trailer: Buffer, dataLength: number): number {
  if (trailer.length !== trailerBytes(dataLength)) {
    throw new CorruptBlockError(
      `block trailer has ${trailer.length} bytes, expected ${trailerBytes(dataLength)}`,
    );
  }
  const footer = trailer.length - FOOTER_BYTES;
  const magic = trailer.readUInt32LE(footer);
  if (
    (magic !== MAGIC_CRC32 && magic !== MAGIC_SHA256) ||
    trailer.readUInt32LE(footer + 4) !== dataLength ||
    trailer.readUInt32LE(footer + 8) !== SEGMENT_BYTES
  ) {
    throw new CorruptBlockError('block trailer is damaged');
  }
  return magic;
}

/** Whether `segment` matches its slot (`slot` = the trailer's 16 bytes for segment `s`). */
function segmentMatches(magic: number, segment: Buffer, slot: Buffer, block: BlockRef, s: number): boolean {
  if (magic === MAGIC_CRC32) {
    // The reserved bytes are zero in every sound SFB3 trailer: anything else is damage.
    return (
      slot.readUInt32LE(0) === segmentCrc(segment, block, s) &&
      slot.readUInt32LE(4) === 0 &&
      slot.readUInt32LE(8) === 0 &&
      slot.readUInt32LE(12) === 0
    );
  }
  const digest = createHash('sha256').update(segment).digest();
  return digest.subarray(0, SLOT_BYTES).equals(slot);
}

/**
 * Verifies segments [firstSegment, firstSegment + n) of a block, given their bytes (`data`,
 * starting at the first segment's start) and the block's trailer, in whichever format it is.
 */
export function verifySegments(data: Buffer, firstSegment: number, trailer: Buffer, block: BlockRef): void {
  const dataLength = block.blockLengthBytes;
  const magic = checkTrailer(trailer, dataLength);
  for (let at = 0, s = firstSegment; at < data.length; at += SEGMENT_BYTES, s++) {
    const expectedLength = Math.min(SEGMENT_BYTES, dataLength - s * SEGMENT_BYTES);
    const segment = data.subarray(at, at + SEGMENT_BYTES);
    if (segment.length !== expectedLength) {
      throw new CorruptBlockError(`segment ${s} has ${segment.length} bytes, expected ${expectedLength}`);
    }
    if (!segmentMatches(magic, segment, trailer.subarray(s * SLOT_BYTES, (s + 1) * SLOT_BYTES), block, s)) {
      throw new CorruptBlockError(`block checksum mismatch in segment ${s}`);
    }
  }
}

/** Verifies a whole object body against the block it should be; returns the data without copying. */
export function openBlock(body: Buffer, block: BlockRef): Buffer {
  const dataLength = block.blockLengthBytes;
  if (body.length !== bodyBytes(dataLength)) {
    throw new CorruptBlockError(
      `block has ${body.length} bytes, expected ${bodyBytes(dataLength)} (truncated or wrong object)`,
    );
  }
  const data = body.subarray(0, dataLength);
  verifySegments(data, 0, body.subarray(dataLength), block);
  return data;
}
