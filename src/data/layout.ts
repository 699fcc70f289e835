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
 * non-overlapping pieces covering the range exactly. Chunks rarely hold more than a few dozen
 * slices (compaction keeps them short), so painting each one over the list is cheap enough.
 */
export function resolvePieces(slices: readonly SliceRef[], start: number, end: number): Piece[] {
  let pieces: Piece[] = [
    { chunkOffsetBytes: start, lengthBytes: end - start, slice: null, covered: false, topIndex: -1 },
  ];
  for (let index = 0; index < slices.length; index++) {
    const slice = slices[index];
    const sliceStart = Math.max(start, slice.chunkOffsetBytes);
    const sliceEnd = Math.min(end, slice.chunkOffsetBytes + slice.lengthBytes);
    if (sliceEnd <= sliceStart) continue;
    const top: Piece = {
      chunkOffsetBytes: sliceStart,
      lengthBytes: sliceEnd - sliceStart,
      slice: (slice.id as number) === 0 ? null : slice,
      covered: true,
      topIndex: index,
    };
    const next: Piece[] = [];
    let placed = false;
    for (const piece of pieces) {
      const pieceEnd = piece.chunkOffsetBytes + piece.lengthBytes;
      if (pieceEnd <= sliceStart || piece.chunkOffsetBytes >= sliceEnd) {
        if (!placed && piece.chunkOffsetBytes >= sliceEnd) {
          next.push(top);
          placed = true;
        }
        next.push(piece);
        continue;
      }
      if (piece.chunkOffsetBytes < sliceStart) {
        next.push({ ...piece, lengthBytes: sliceStart - piece.chunkOffsetBytes });
      }
      if (!placed) {
        next.push(top);
        placed = true;
      }
      if (pieceEnd > sliceEnd) {
        next.push({ ...piece, chunkOffsetBytes: sliceEnd, lengthBytes: pieceEnd - sliceEnd });
      }
    }
    if (!placed) next.push(top);
    pieces = next;
  }
  return pieces;
}
