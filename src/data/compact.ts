import { asSliceId, type SliceRef } from '../common/index.js';
import { resolvePieces } from './layout.js';

/** A chunk with more slices than this reads slowly enough (one fetch per piece) to compact. */
export const COMPACT_MIN_SLICES = 16;

/**
 * Slices at least this long are left where they are (bounded by a quarter chunk for small
 * test geometries). Rewriting the whole chunk on every compaction made a database's WAL cost
 * ~16 MiB of reads, checksums and puts per 64 commits: a segment is first written whole with
 * zeros, then appended to in 8 KiB commits, so the chunk's data span is the segment however
 * few bytes the new commits added. Merging only the small slices bounds the rewrite by their
 * extent, and a merged run that reaches this size settles in turn, so an append stream
 * rewrites each byte a few times at most. 1 MiB pieces read efficiently (64 per chunk).
 */
const SETTLED_SLICE_BYTES = 1024 * 1024;

/**
 * A group is rewritten only when its extent is at most this many times the bytes of its small
 * slices, or the list's length / LIST_SLICES_PER_REWRITE_BYTE if more: scattered page writes
 * (a database's data file) leave small slices with gaps between them, and rewriting the gaps
 * of a short list cost more per commit (a 4 KiB commit paid for megabytes of rewrite) than
 * the list costs. A long list costs every commit (the service stores the chunk's list again)
 * and every read plan, so the more slices, the more rewriting pays. 4 KiB writes at random
 * over a 64 MiB chunk are merged at ~1,000 slices (sqrt(64 x chunk / write)): 64 KiB rewritten
 * per commit on average. At 16 (~500 slices) the rewrites cost 3-4 ms of mount CPU per 4 KiB
 * commit in fsync-loop, while commits on lists of ~1,000 slices cost no more than on short
 * ones. Appends and rewrites of the same pages (a WAL) have no gaps and always pass.
 */
const MIN_REWRITE_PER_SMALL_BYTE = 4;
const LIST_SLICES_PER_REWRITE_BYTE = 64;
/**
 * Settled slices are merged too once more of them show than this many times the chunk holds
 * side by side. Large slices that each still show a little (a 2 MiB record rewritten at 64 KiB
 * steps leaves 64 KiB of each showing) are neither dropped nor small: without this bound such a
 * list grew by one slice per commit, up to one per stride of the chunk, and every commit and
 * every read plan paid for all of them.
 */
const SETTLED_OVERLAP_FACTOR = 2;

/** What compaction leaves alone and what it rewrites for `chunkSizeBytes` chunks. */
export function compactionLimits(chunkSizeBytes: number): { settledSliceBytes: number; maxGapBytes: number } {
  const settledSliceBytes = Math.min(SETTLED_SLICE_BYTES, Math.floor(chunkSizeBytes / 4));
  // Small slices further apart than this are merged separately: the bytes between two of them
  // are rewritten too, and scattered page writes should not turn into a rewrite of the chunk.
  return { settledSliceBytes, maxGapBytes: Math.floor(settledSliceBytes / 4) };
}

/** One range a compaction rewrites: zero runs kept as zero slices, data as one span. */
export interface RangePlan {
  /** [start, end) in the chunk of the one new data slice; null when the range holds no data. */
  dataSpan: { start: number; end: number } | null;
  /** Runs covered only by zero slices outside the data span; they stay zero slices. */
  zeroRuns: Array<{ start: number; end: number }>;
}

/**
 * A chunk's compaction: `keep` are the slices left as they are (in their order, below all
 * that is rewritten), `ranges` the disjoint ranges rewritten from the chunk's current view and
 * laid on top. A slice is dropped only when it lies wholly inside a rewritten range, so the
 * bytes outside the ranges are those of the same slices as before, and inside them those the
 * rewrite copied: every byte reads the same.
 */
export interface CompactionPlan {
  keep: SliceRef[];
  ranges: RangePlan[];
}

/**
 * Plans a chunk's compaction: slices no byte of which shows any more (overwritten whole) are
 * dropped, which costs no rewrite; the small slices are grouped by nearness, and each group of
 * two or more is rewritten over its extent (see SETTLED_SLICE_BYTES). Null when neither
 * applies: nothing would get shorter.
 */
export function planCompaction(slices: readonly SliceRef[], chunkSizeBytes: number): CompactionPlan | null {
  const shown = new Uint8Array(slices.length);
  for (const piece of resolvePieces(slices, 0, chunkSizeBytes)) {
    if (piece.topIndex >= 0) shown[piece.topIndex] = 1;
  }
  const visible = slices.filter((_, index) => shown[index] === 1);
  const maxRewritePerSmallByte = Math.max(
    MIN_REWRITE_PER_SMALL_BYTE,
    slices.length / LIST_SLICES_PER_REWRITE_BYTE,
  );
  const { settledSliceBytes } = compactionLimits(chunkSizeBytes);
  let settled = 0;
  for (const slice of visible) if (slice.lengthBytes >= settledSliceBytes) settled++;
  const extents = groupSmallSlices(
    visible,
    chunkSizeBytes,
    maxRewritePerSmallByte,
    settled > (SETTLED_OVERLAP_FACTOR * chunkSizeBytes) / settledSliceBytes,
  );
  if (extents.length === 0 && visible.length === slices.length) return null;
  const keep = visible.filter((slice) => {
    const end = slice.chunkOffsetBytes + slice.lengthBytes;
    return !extents.some((range) => slice.chunkOffsetBytes >= range.start && end <= range.end);
  });
  return { keep, ranges: extents.map((range) => planRange(slices, range.start, range.end)) };
}

/** Extents of the groups of at least two small slices (of any slices if `allSmall`), in chunk order. */
function groupSmallSlices(
  slices: readonly SliceRef[],
  chunkSizeBytes: number,
  maxRewritePerSmallByte: number,
  allSmall: boolean,
): Array<{ start: number; end: number }> {
  const { settledSliceBytes, maxGapBytes } = compactionLimits(chunkSizeBytes);
  const small = slices
    .filter((slice) => allSmall || slice.lengthBytes < settledSliceBytes)
    .map((slice) => ({ start: slice.chunkOffsetBytes, end: slice.chunkOffsetBytes + slice.lengthBytes }))
    .sort((a, b) => a.start - b.start);
  const groups: Array<{ start: number; end: number; members: number; smallBytes: number }> = [];
  for (const extent of small) {
    const last = groups[groups.length - 1];
    const lengthBytes = extent.end - extent.start;
    if (last !== undefined && extent.start <= last.end + maxGapBytes) {
      last.end = Math.max(last.end, extent.end);
      last.members++;
      last.smallBytes += lengthBytes;
    } else {
      groups.push({ ...extent, members: 1, smallBytes: lengthBytes });
    }
  }
  return groups
    .filter(
      (group) => group.members >= 2 && group.end - group.start <= maxRewritePerSmallByte * group.smallBytes,
    )
    .map(({ start, end }) => ({ start, end }));
}

/**
 * Plans the rewrite of [start, end). The data span runs from the first to the last byte some
 * data slice shows; holes inside it become written zeros (reads are identical), holes outside
 * stay holes and zero-slice runs outside stay zero slices, so a truncate-then-extend never
 * turns into megabytes of stored zeros.
 */
export function planRange(slices: readonly SliceRef[], start: number, end: number): RangePlan {
  const pieces = resolvePieces(slices, start, end);
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
    let runStart = piece.chunkOffsetBytes;
    let runEnd = runStart + piece.lengthBytes;
    if (dataSpan) {
      // Only the parts outside the data span survive as zero slices.
      if (runStart >= dataSpan.start && runEnd <= dataSpan.end) continue;
      if (runStart < dataSpan.start) runEnd = Math.min(runEnd, dataSpan.start);
      else runStart = Math.max(runStart, dataSpan.end);
    }
    const last = zeroRuns[zeroRuns.length - 1];
    if (last && last.end === runStart) last.end = runEnd;
    else zeroRuns.push({ start: runStart, end: runEnd });
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
