import { asSliceId, fsError, type SliceRef } from '../common/index.js';

/**
 * A chunk's slice list as one binary value (SQLite BLOB, PostgreSQL bytea): 28 bytes per
 * slice, fixed layout, little-endian: id (u64), sliceSize, chunkOffset, sliceOffset,
 * length, blockSize (u32 each). Ids stay below 2^53 (the allocator hands them out from 1).
 */
export const SLICE_RECORD_BYTES = 28;

export function encodeSlices(slices: readonly SliceRef[]): Buffer {
  const out = Buffer.allocUnsafe(slices.length * SLICE_RECORD_BYTES);
  let at = 0;
  for (const s of slices) {
    out.writeUInt32LE(s.id % 0x1_0000_0000, at);
    out.writeUInt32LE(Math.floor(s.id / 0x1_0000_0000), at + 4);
    out.writeUInt32LE(s.sliceSizeBytes, at + 8);
    out.writeUInt32LE(s.chunkOffsetBytes, at + 12);
    out.writeUInt32LE(s.sliceOffsetBytes, at + 16);
    out.writeUInt32LE(s.lengthBytes, at + 20);
    out.writeUInt32LE(s.blockSizeBytes, at + 24);
    at += SLICE_RECORD_BYTES;
  }
  return out;
}

export function decodeSlices(data: Uint8Array): SliceRef[] {
  if (data.length % SLICE_RECORD_BYTES !== 0) {
    throw fsError.EIO(
      `corrupt chunk slice list: ${data.length} bytes is not a multiple of ${SLICE_RECORD_BYTES}`,
    );
  }
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const slices: SliceRef[] = [];
  for (let at = 0; at < buf.length; at += SLICE_RECORD_BYTES) {
    slices.push({
      id: asSliceId(buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x1_0000_0000),
      sliceSizeBytes: buf.readUInt32LE(at + 8),
      chunkOffsetBytes: buf.readUInt32LE(at + 12),
      sliceOffsetBytes: buf.readUInt32LE(at + 16),
      lengthBytes: buf.readUInt32LE(at + 20),
      blockSizeBytes: buf.readUInt32LE(at + 24),
    });
  }
  return slices;
}
