import { asSliceId, type Ino, type SliceRef } from '../common/index.js';
import type { WriteTx } from './engine.js';

/**
 * Data-map changes shared by truncate, fallocate, copy_file_range and compaction. Every
 * reference a current chunk list holds to a slice is counted (slice_ref); when the count
 * drops to zero the slice is logged as deleted, for the GC to remove once out of history.
 */

const ZERO_ID = asSliceId(0);
const LAST_CHUNK = Number.MAX_SAFE_INTEGER;

export async function addRefs(tx: WriteTx, slices: readonly SliceRef[]): Promise<void> {
  for (const s of slices) if (s.id !== ZERO_ID) await tx.addSliceRefs(s.id, s.sliceSizeBytes, 1);
}

export async function dropRefs(tx: WriteTx, slices: readonly SliceRef[]): Promise<void> {
  for (const s of slices) {
    if (s.id === ZERO_ID) continue;
    if ((await tx.addSliceRefs(s.id, s.sliceSizeBytes, -1)) === 0)
      await tx.recordDeletedSlice(s.id, s.sliceSizeBytes);
  }
}

/** Replaces a chunk's list, moving slice references from the old list to the new one. */
export async function replaceChunk(
  tx: WriteTx,
  ino: Ino,
  chunkIndex: number,
  slices: SliceRef[],
): Promise<void> {
  const old = await tx.getChunk(ino, chunkIndex);
  await addRefs(tx, slices);
  await dropRefs(tx, old);
  await tx.putChunk(ino, chunkIndex, slices);
}

/** Drops every chunk of the inode (final delete): its slices lose a reference each. */
export async function dropAllChunks(tx: WriteTx, ino: Ino): Promise<void> {
  for (const idx of await tx.listChunkIndexes(ino, 0, LAST_CHUNK)) {
    await dropRefs(tx, await tx.getChunk(ino, idx));
    await tx.putChunk(ino, idx, []);
  }
}

/**
 * Makes bytes [startBytes, endBytes) read as zeros: whole chunks inside the range lose their
 * slices, partly covered chunks get a hole slice (id 0) on top.
 */
export async function zeroRange(
  tx: WriteTx,
  ino: Ino,
  chunkSizeBytes: number,
  startBytes: number,
  endBytes: number,
): Promise<void> {
  if (endBytes <= startBytes) return;
  const first = Math.floor(startBytes / chunkSizeBytes);
  const last = Math.floor((endBytes - 1) / chunkSizeBytes);
  for (const idx of await tx.listChunkIndexes(ino, first, last)) {
    const chunkStart = idx * chunkSizeBytes;
    const from = Math.max(startBytes, chunkStart) - chunkStart;
    const to = Math.min(endBytes, chunkStart + chunkSizeBytes) - chunkStart;
    if (from === 0 && to === chunkSizeBytes) {
      await replaceChunk(tx, ino, idx, []);
      continue;
    }
    const slices = await tx.getChunk(ino, idx);
    slices.push(holeSlice(from, to - from));
    await tx.putChunk(ino, idx, slices);
  }
}

/** Truncating to `sizeBytes`: everything at or past it goes (so a later extension reads zeros). */
export async function truncateChunks(
  tx: WriteTx,
  ino: Ino,
  chunkSizeBytes: number,
  oldSizeBytes: number,
  sizeBytes: number,
): Promise<void> {
  if (sizeBytes >= oldSizeBytes) return;
  // Data may lie past the old size only through fallocate KEEP_SIZE; drop up to the last chunk.
  await zeroRange(tx, ino, chunkSizeBytes, sizeBytes, Number.MAX_SAFE_INTEGER);
}

export function holeSlice(chunkOffsetBytes: number, lengthBytes: number): SliceRef {
  return {
    id: ZERO_ID,
    sliceSizeBytes: lengthBytes,
    chunkOffsetBytes,
    sliceOffsetBytes: 0,
    lengthBytes,
    blockSizeBytes: 0,
  };
}

/**
 * Copies bytes [srcOffset, srcOffset+length) of `srcIno` to `dstOffset` of `dstIno` by
 * reference: the destination range first becomes a hole (source holes must read as zeros),
 * then every source piece, clipped to the range and in overlay order, is laid on top at
 * its new place, split where it crosses a destination chunk boundary.
 */
export async function copyByReference(
  tx: WriteTx,
  chunkSizeBytes: number,
  srcIno: Ino,
  srcOffset: number,
  dstIno: Ino,
  dstOffset: number,
  length: number,
): Promise<void> {
  const srcEnd = srcOffset + length;
  const pieces: { at: number; slice: SliceRef }[] = [];
  const first = Math.floor(srcOffset / chunkSizeBytes);
  const last = Math.floor((srcEnd - 1) / chunkSizeBytes);
  for (const idx of await tx.listChunkIndexes(srcIno, first, last)) {
    const chunkStart = idx * chunkSizeBytes;
    for (const s of await tx.getChunk(srcIno, idx)) {
      const from = Math.max(chunkStart + s.chunkOffsetBytes, srcOffset);
      const to = Math.min(chunkStart + s.chunkOffsetBytes + s.lengthBytes, srcEnd);
      if (to <= from) continue;
      const skip = from - (chunkStart + s.chunkOffsetBytes);
      pieces.push({
        at: dstOffset + (from - srcOffset),
        slice: { ...s, sliceOffsetBytes: s.sliceOffsetBytes + skip, lengthBytes: to - from },
      });
    }
  }
  await zeroRange(tx, dstIno, chunkSizeBytes, dstOffset, dstOffset + length);
  const additions = new Map<number, SliceRef[]>();
  for (const { at, slice } of pieces) {
    let pos = at;
    let done = 0;
    while (done < slice.lengthBytes) {
      const idx = Math.floor(pos / chunkSizeBytes);
      const inChunk = pos - idx * chunkSizeBytes;
      const n = Math.min(slice.lengthBytes - done, chunkSizeBytes - inChunk);
      const list = additions.get(idx) ?? [];
      list.push({
        ...slice,
        chunkOffsetBytes: inChunk,
        sliceOffsetBytes: slice.sliceOffsetBytes + done,
        lengthBytes: n,
      });
      additions.set(idx, list);
      pos += n;
      done += n;
    }
  }
  for (const [idx, added] of additions) {
    const slices = await tx.getChunk(dstIno, idx);
    await addRefs(tx, added);
    await tx.putChunk(dstIno, idx, slices.concat(added));
  }
}
