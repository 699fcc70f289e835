import { asSliceId, type Ino, type SliceRef } from '../../../src/common/index.js';
import type { MetaService } from '../../../src/meta/index.js';
import { root } from './fixture.js';

// The data-map cases' geometry and helpers: 1 MiB chunks of 64 KiB blocks, so a few slices
// cross chunk and block boundaries without megabytes of test data.
export const CHUNK = 1024 * 1024;
export const BLOCK = 64 * 1024;
export const smallChunks = { chunkSizeBytes: CHUNK, blockSizeBytes: BLOCK };

export function slice(
  id: number,
  chunkOffsetBytes: number,
  lengthBytes: number,
  sliceOffsetBytes = 0,
): SliceRef {
  return {
    id: asSliceId(id),
    sliceSizeBytes: sliceOffsetBytes + lengthBytes,
    chunkOffsetBytes,
    sliceOffsetBytes,
    lengthBytes,
    blockSizeBytes: BLOCK,
  };
}

/** Commits one slice into chunk `chunkIndex` of `ino`, growing the file to its end. */
export async function write(svc: MetaService, ino: Ino, chunkIndex: number, s: SliceRef) {
  const end = chunkIndex * CHUNK + s.chunkOffsetBytes + s.lengthBytes;
  return svc.commitWrites(root, ino, [{ chunkIndex, slice: s }], end, { sec: 1, nsec: 0 });
}
