import { asSliceId, type Ino, type SliceRef } from '../common/index.js';
import { COUNTER_USED_BYTES, ChunkCoverage, alignedBytes, coveredBytes } from './allocation.js';
import type { InodeRow, WriteTx } from './engine.js';

/**
 * Data-map changes shared by writes, truncate, fallocate, copy_file_range and compaction. Every
 * reference a current chunk list holds to a slice is counted (slice_ref); when the count
 * drops to zero the slice is logged as deleted, for the GC to remove once out of history.
 *
 * Every change of a chunk list goes through `appendToChunk` or `replaceChunk`, which move the
 * inode's allocated bytes (what its slices cover with data: st_blocks) by the difference the
 * change makes, and the volume's used bytes with them, in the same transaction.
 */

const ZERO_ID = asSliceId(0);
const LAST_CHUNK = Number.MAX_SAFE_INTEGER;

/** What a chunk change needs: its transaction and the inodes it changes (an OpContext). */
export interface ChunkContext {
  readonly tx: WriteTx;
  inode(ino: Ino): Promise<InodeRow>;
  touch(row: InodeRow): void;
}

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

/**
 * Moves the inode's allocated bytes by `deltaBytes`, and the volume's used bytes by what that
 * changes in the file's 4 KiB-aligned usage (statfs counts whole blocks per file, as du does).
 */
async function moveAllocated(ctx: ChunkContext, ino: Ino, deltaBytes: number): Promise<void> {
  if (deltaBytes === 0) return;
  const row = await ctx.inode(ino);
  const before = row.allocatedBytes;
  row.allocatedBytes = before + deltaBytes;
  ctx.touch(row);
  const usage = alignedBytes(row.allocatedBytes) - alignedBytes(before);
  if (usage !== 0) await ctx.tx.addCounter(COUNTER_USED_BYTES, usage);
}

/** Lays `added` on top of the chunk's list (writes, holes, reference copies). */
export async function appendToChunk(
  ctx: ChunkContext,
  ino: Ino,
  chunkIndex: number,
  added: readonly SliceRef[],
): Promise<void> {
  const slices = await ctx.tx.getChunk(ino, chunkIndex);
  const coverage = new ChunkCoverage(slices);
  const before = coverage.coveredBytes;
  for (const s of added) {
    coverage.lay(s);
    slices.push(s);
  }
  await addRefs(ctx.tx, added);
  await ctx.tx.putChunk(ino, chunkIndex, slices);
  await moveAllocated(ctx, ino, coverage.coveredBytes - before);
}

/**
 * Replaces a chunk's list, moving slice references from the old list to the new one. `current`
 * is the list as the caller just read it in this transaction (read here when absent).
 */
export async function replaceChunk(
  ctx: ChunkContext,
  ino: Ino,
  chunkIndex: number,
  slices: SliceRef[],
  current?: SliceRef[],
): Promise<void> {
  const old = current ?? (await ctx.tx.getChunk(ino, chunkIndex));
  await addRefs(ctx.tx, slices);
  await dropRefs(ctx.tx, old);
  await ctx.tx.putChunk(ino, chunkIndex, slices);
  await moveAllocated(ctx, ino, coveredBytes(slices) - coveredBytes(old));
}

/** Drops every chunk of the inode (final delete): its slices lose a reference each. */
export async function dropAllChunks(ctx: ChunkContext, ino: Ino): Promise<void> {
  for (const idx of await ctx.tx.listChunkIndexes(ino, 0, LAST_CHUNK)) await replaceChunk(ctx, ino, idx, []);
}

/**
 * Makes bytes [startBytes, endBytes) read as zeros: whole chunks inside the range lose their
 * slices, partly covered chunks get a hole slice (id 0) on top.
 */
export async function zeroRange(
  ctx: ChunkContext,
  ino: Ino,
  chunkSizeBytes: number,
  startBytes: number,
  endBytes: number,
): Promise<void> {
  if (endBytes <= startBytes) return;
  const first = Math.floor(startBytes / chunkSizeBytes);
  const last = Math.floor((endBytes - 1) / chunkSizeBytes);
  for (const idx of await ctx.tx.listChunkIndexes(ino, first, last)) {
    const chunkStart = idx * chunkSizeBytes;
    const from = Math.max(startBytes, chunkStart) - chunkStart;
    const to = Math.min(endBytes, chunkStart + chunkSizeBytes) - chunkStart;
    if (from === 0 && to === chunkSizeBytes) await replaceChunk(ctx, ino, idx, []);
    else await appendToChunk(ctx, ino, idx, [holeSlice(from, to - from)]);
  }
}

/** Truncating to `sizeBytes`: everything at or past it goes (so a later extension reads zeros). */
export async function truncateChunks(
  ctx: ChunkContext,
  ino: Ino,
  chunkSizeBytes: number,
  oldSizeBytes: number,
  sizeBytes: number,
): Promise<void> {
  if (sizeBytes >= oldSizeBytes) return;
  // Data may lie past the old size only through fallocate KEEP_SIZE; drop up to the last chunk.
  await zeroRange(ctx, ino, chunkSizeBytes, sizeBytes, Number.MAX_SAFE_INTEGER);
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
  ctx: ChunkContext,
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
  for (const idx of await ctx.tx.listChunkIndexes(srcIno, first, last)) {
    const chunkStart = idx * chunkSizeBytes;
    for (const s of await ctx.tx.getChunk(srcIno, idx)) {
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
  await zeroRange(ctx, dstIno, chunkSizeBytes, dstOffset, dstOffset + length);
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
  for (const [idx, added] of additions) await appendToChunk(ctx, dstIno, idx, added);
}
