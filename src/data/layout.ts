import type { SliceId, SliceRef } from '../common/index.js';

/** One block object of a slice: blocks are full-size except possibly the last. */
export interface BlockRef {
  sliceId: SliceId;
  blockIndex: number;
  blockLengthBytes: number;
}

/**
 * The object key of a block. It never changes meaning (slices are immutable, ids never reused),
 * which is why no cache of blocks ever needs invalidation. The 3-hex-digit fan-out comes from
 * a hash of the slice id so consecutive ids land under different prefixes: object stores limit
 * request rates per prefix.
 */
export function blockKey(block: BlockRef): string {
  const id = block.sliceId as number;
  const mixed = Math.imul((id % 0x1_0000_0000) ^ Math.floor(id / 0x1_0000_0000), 0x9e3779b1) >>> 0;
  const fanout = (mixed >>> 20).toString(16).padStart(3, '0');
  return `chunks/${fanout}/${id}_${block.blockIndex}_${block.blockLengthBytes}`;
}

/** The block holding byte `sliceOffset` of a slice. */
export function blockAt(slice: SliceRef, sliceOffset: number): BlockRef {
  const blockIndex = Math.floor(sliceOffset / slice.blockSizeBytes);
  const blockStart = blockIndex * slice.blockSizeBytes;
  return {
    sliceId: slice.id,
    blockIndex,
    blockLengthBytes: Math.min(slice.blockSizeBytes, slice.sliceSizeBytes - blockStart),
  };
}

/** A run of a chunk's visible bytes: from one slice, or zeros. */
export interface Piece {
  chunkOffsetBytes: number;
  lengthBytes: number;
  /** The slice on top here; null for zeros (id 0 or nothing written). */
  slice: SliceRef | null;
  /** Whether some slice (possibly a zero slice) covers these bytes. */
  covered: boolean;
  /** Index in the resolved list of the slice on top here (zero slices too); -1 when uncovered. */
  topIndex: number;
}

/**
 * Resolves the overlay of `slices` (bottom first) over [start, end) of a chunk into ordered,
 * non-overlapping pieces covering the range exactly. A sweep over the slices' edges with the
 * topmost live slice kept in a heap: O(n log n). Painting each slice over the piece list was
 * O(n^2), 35 ms for a 1,000-slice chunk (scattered page writes), paid by every compaction plan.
 */
export function resolvePieces(slices: readonly SliceRef[], start: number, end: number): Piece[] {
  const starts: number[] = [];
  const edges: number[] = [start, end];
  for (let index = 0; index < slices.length; index++) {
    const slice = slices[index];
    const sliceStart = Math.max(start, slice.chunkOffsetBytes);
    const sliceEnd = Math.min(end, slice.chunkOffsetBytes + slice.lengthBytes);
    if (sliceEnd <= sliceStart) continue;
    starts.push(index);
    edges.push(sliceStart, sliceEnd);
  }
  if (starts.length === 0 || end <= start) {
    return [{ chunkOffsetBytes: start, lengthBytes: end - start, slice: null, covered: false, topIndex: -1 }];
  }
  const startOf = (index: number): number => Math.max(start, slices[index].chunkOffsetBytes);
  const endOf = (index: number): number =>
    Math.min(end, slices[index].chunkOffsetBytes + slices[index].lengthBytes);
  starts.sort((a, b) => startOf(a) - startOf(b));
  edges.sort((a, b) => a - b);
  const live = new MaxHeap();
  const pieces: Piece[] = [];
  let next = 0;
  for (let e = 0; e < edges.length - 1; e++) {
    const from = edges[e];
    const to = edges[e + 1];
    if (to === from) continue;
    while (next < starts.length && startOf(starts[next]) <= from) live.push(starts[next++]);
    // Slices that ended at or before here leave lazily, when they surface.
    while (live.size > 0 && endOf(live.top) <= from) live.pop();
    const topIndex = live.size > 0 ? live.top : -1;
    const last = pieces[pieces.length - 1];
    if (last !== undefined && last.topIndex === topIndex) {
      last.lengthBytes += to - from;
      continue;
    }
    const slice = topIndex < 0 || (slices[topIndex].id as number) === 0 ? null : slices[topIndex];
    pieces.push({ chunkOffsetBytes: from, lengthBytes: to - from, slice, covered: topIndex >= 0, topIndex });
  }
  return pieces;
}

/** A binary max-heap of slice indexes: the topmost live slice is the highest index. */
class MaxHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  get top(): number {
    return this.items[0];
  }

  push(value: number): void {
    const items = this.items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] >= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  pop(): void {
    const items = this.items;
    const last = items.pop()!;
    if (items.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const child = left + 1 < items.length && items[left + 1] > items[left] ? left + 1 : left;
      if (items[child] <= last) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
  }
}
