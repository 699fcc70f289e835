import { createHash } from 'node:crypto';
import type { BlockRef } from './layout.js';

/**
 * Every block object is its data followed by a trailer: magic "SFB1", the data length (u32 LE)
 * and the SHA-256 of the data. SHA-256 because on this machine Node's native SHA-256 (SHA-NI)
 * ran at ~1.2 GiB/s on 4 MiB buffers, faster than MD5 (~0.56), BLAKE2b (~0.55) and a
 * slice-by-8 CRC32C in JS (~0.5-0.7), while also being collision resistant (a later dedup can
 * trust it). Node 20 has no native CRC. See bench/data/checksum.ts.
 */
export const TRAILER_BYTES = 40;
const MAGIC = 0x31424653; // "SFB1" read as u32 LE

export class CorruptBlockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBlockError';
  }
}

/**
 * Writes the trailer after `dataLength` bytes of `buffer` (which must have room for it) and
 * returns the object body, without copying the data.
 */
export function sealBlock(buffer: Buffer, dataLength: number): Buffer {
  const body = buffer.subarray(0, dataLength + TRAILER_BYTES);
  body.writeUInt32LE(MAGIC, dataLength);
  body.writeUInt32LE(dataLength, dataLength + 4);
  createHash('sha256')
    .update(buffer.subarray(0, dataLength))
    .digest()
    .copy(body, dataLength + 8);
  return body;
}

/** Verifies an object body against the block it should be; returns the data without copying. */
export function openBlock(body: Buffer, block: BlockRef): Buffer {
  const dataLength = block.blockLengthBytes;
  if (body.length !== dataLength + TRAILER_BYTES) {
    throw new CorruptBlockError(
      `block has ${body.length} bytes, expected ${dataLength + TRAILER_BYTES} (truncated or wrong object)`,
    );
  }
  if (body.readUInt32LE(dataLength) !== MAGIC || body.readUInt32LE(dataLength + 4) !== dataLength) {
    throw new CorruptBlockError('block trailer is damaged');
  }
  const data = body.subarray(0, dataLength);
  const digest = createHash('sha256').update(data).digest();
  if (!digest.equals(body.subarray(dataLength + 8, dataLength + TRAILER_BYTES))) {
    throw new CorruptBlockError('block checksum mismatch');
  }
  return data;
}
