import type { SliceRef } from '../common/index.js';

/** The volume's used bytes (statfs): each regular file's allocated bytes, rounded up to 4 KiB. */
export const COUNTER_USED_BYTES = 'used_bytes';
export const USAGE_ALIGN_BYTES = 4096;

export const alignedBytes = (bytes: number): number =>
  Math.ceil(bytes / USAGE_ALIGN_BYTES) * USAGE_ALIGN_BYTES;

/**
 * How many bytes of a chunk its slice list covers with data: what st_blocks counts. Slices are
 * laid in list order, later ones on top; a hole slice (id 0: punch hole, zero range, truncate)
 * hides whatever lies under it, a data slice covers it. Exact, not estimated: the metadata
 * service keeps each file's sum (InodeRow.allocatedBytes) by moving it with the difference every
 * time a chunk list changes (chunks.ts).
 *
 * Kept as the sorted, disjoint data ranges of the chunk. Appends extend the last range, so a
 * chunk written front to back stays one range however many slices it holds: laying a slice
 * costs a scan of the ranges, not of the slices.
 */
export class ChunkCoverage {
  /** [start0, end0, start1, end1, ...]: disjoint, sorted, not touching, offsets in the chunk. */
  private readonly edges: number[] = [];
  /** Sum of the ranges' lengths. */
  coveredBytes = 0;

  constructor(slices: readonly SliceRef[] = []) {
    for (const s of slices) this.lay(s);
  }

  lay(slice: SliceRef): void {
    const from = slice.chunkOffsetBytes;
    const to = from + slice.lengthBytes;
    if (to <= from) return;
    if ((slice.id as number) === 0) this.clear(from, to);
    else this.fill(from, to);
  }

  private fill(from: number, to: number): void {
    const edges = this.edges;
    // The common cases, without a splice: past the last range, or from inside or at its end.
    const last = edges.length - 2;
    if (last < 0 || edges[last + 1] < from) {
      edges.push(from, to);
      this.coveredBytes += to - from;
      return;
    }
    if (from >= edges[last]) {
      if (to > edges[last + 1]) {
        this.coveredBytes += to - edges[last + 1];
        edges[last + 1] = to;
      }
      return;
    }
    // First range that ends at or after `from` (touching ranges merge), last that starts at or before `to`.
    let i = 0;
    while (edges[i + 1] < from) i += 2;
    let j = i;
    let start = from;
    let end = to;
    let removed = 0;
    while (j < edges.length && edges[j] <= to) {
      start = Math.min(start, edges[j]);
      end = Math.max(end, edges[j + 1]);
      removed += edges[j + 1] - edges[j];
      j += 2;
    }
    edges.splice(i, j - i, start, end);
    this.coveredBytes += end - start - removed;
  }

  private clear(from: number, to: number): void {
    const edges = this.edges;
    const kept: number[] = [];
    let i = 0;
    while (i < edges.length && edges[i + 1] <= from) i += 2;
    let j = i;
    while (j < edges.length && edges[j] < to) {
      const start = edges[j];
      const end = edges[j + 1];
      if (start < from) kept.push(start, from);
      if (end > to) kept.push(to, end);
      this.coveredBytes -= Math.min(end, to) - Math.max(start, from);
      j += 2;
    }
    if (j > i) edges.splice(i, j - i, ...kept);
  }
}

/** The bytes `slices` (one chunk's list, in overlay order) cover with data. */
export function coveredBytes(slices: readonly SliceRef[]): number {
  return new ChunkCoverage(slices).coveredBytes;
}

/** A file's allocated bytes from its chunks ([index, slice list] pairs, as a dump carries them). */
export function fileCoveredBytes(chunks: Iterable<readonly [number, readonly SliceRef[]]>): number {
  let total = 0;
  for (const [, slices] of chunks) total += coveredBytes(slices);
  return total;
}
