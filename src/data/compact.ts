import { asSliceId, type SliceRef } from '../common/index.js';
import { resolvePieces } from './layout.js';

/** A chunk with more slices than this reads slowly enough (one fetch per piece) to compact. */
export const COMPACT_MIN_SLICES = 16;

/** The layout a compacted chunk will have: zero runs kept as zero slices, data as one span. */
export interface CompactionPlan {
  /** [start, end) in the chunk of the one new data slice; null when the chunk holds no data. */
  dataSpan: { start: number; end: number } | null;
  /** Runs covered only by zero slices outside the data span; they stay zero slices. */
  zeroRuns: Array<{ start: number; end: number }>;
}

/**
 * Plans the merge of a chunk's slices. The data span runs from the first to the last byte
 * some data slice shows; holes inside it become written zeros (reads are identical), holes
 * outside stay holes and zero-slice runs outside stay zero slices, so a truncate-then-extend
 * never turns into megabytes of stored zeros.
 */
export function planCompaction(slices: readonly SliceRef[], chunkSizeBytes: number): CompactionPlan {
  const pieces = resolvePieces(slices, 0, chunkSizeBytes);
  const withData = pieces.filter((piece) => piece.slice !== null);
  const dataSpan =
    withData.length === 0
      ? null
      : {
          start: withData[0].chunkOffsetBytes,
          end: withData[withData.length - 1].chunkOffsetBytes + withData[withData.length - 1].lengthBytes,
        };
  const zeroRuns: Array<{ start: number; end: number }> = [];
  for (const piece of pieces) {
    if (!piece.covered || piece.slice !== null) continue;
    let start = piece.chunkOffsetBytes;
    let end = start + piece.lengthBytes;
    if (dataSpan) {
      // Only the parts outside the data span survive as zero slices.
      if (start >= dataSpan.start && end <= dataSpan.end) continue;
      if (start < dataSpan.start) end = Math.min(end, dataSpan.start);
      else start = Math.max(start, dataSpan.end);
    }
    const last = zeroRuns[zeroRuns.length - 1];
    if (last && last.end === start) last.end = end;
    else zeroRuns.push({ start, end });
  }
  return { dataSpan, zeroRuns };
}

export function zeroSlice(start: number, end: number, blockSizeBytes: number): SliceRef {
  return {
    id: asSliceId(0),
    sliceSizeBytes: end - start,
    chunkOffsetBytes: start,
    sliceOffsetBytes: 0,
    lengthBytes: end - start,
    blockSizeBytes,
  };
}
