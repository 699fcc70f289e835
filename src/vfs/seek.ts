import { Errno, FsError, fsError, type Ino, type SliceRef } from '../common/index.js';
import { SeekWhence } from '../fuse/index.js';
import type { MetaApi } from '../meta/api.js';
import type { OpenFile } from './open-files.js';

/** Reads the slice lists of the chunks in [firstChunk, lastChunk]; chunks never written are absent. */
export type ChunkSlicesLoader = (firstChunk: number, lastChunk: number) => Promise<Map<number, SliceRef[]>>;

/** A byte range [startBytes, endBytes) of a chunk that holds data (not a hole). */
export interface DataRange {
  startBytes: number;
  endBytes: number;
}

/**
 * Chunks asked of the metadata service per call while scanning: a 1 TiB sparse file with
 * 64 MiB chunks has 16384 chunk indexes, but only written chunks come back, so the batch
 * bounds one answer's size, not the number of calls for a mostly empty file.
 */
const CHUNKS_PER_LOAD = 256;

/**
 * The data ranges of one chunk, sorted and merged, from its slices (later ones on top).
 * A hole is any byte no slice covers or whose top slice is a zero slice (id 0: punch hole,
 * truncate then extend, the hole a reference copy makes).
 */
export function chunkDataRanges(slices: readonly SliceRef[]): DataRange[] {
  if (slices.length === 0) return [];
  const edges = new Set<number>();
  for (const s of slices) {
    edges.add(s.chunkOffsetBytes);
    edges.add(s.chunkOffsetBytes + s.lengthBytes);
  }
  const sorted = [...edges].sort((a, b) => a - b);
  const ranges: DataRange[] = [];
  // Between two consecutive edges the same slice is on top everywhere: look it up once.
  for (let i = 0; i + 1 < sorted.length; i++) {
    const from = sorted[i];
    const to = sorted[i + 1];
    if (!isDataAt(slices, from)) continue;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.endBytes === from) last.endBytes = to;
    else ranges.push({ startBytes: from, endBytes: to });
  }
  return ranges;
}

function isDataAt(slices: readonly SliceRef[], chunkOffsetBytes: number): boolean {
  for (let i = slices.length - 1; i >= 0; i--) {
    const s = slices[i];
    if (chunkOffsetBytes >= s.chunkOffsetBytes && chunkOffsetBytes < s.chunkOffsetBytes + s.lengthBytes) {
      return (s.id as number) !== 0;
    }
  }
  return false;
}

/**
 * lseek(2) on a file whose data map is reached through `load`, as Linux answers it:
 * SEEK_DATA gives the first data byte at or after `offset` (ENXIO when there is none before
 * the end of file), SEEK_HOLE the first hole byte at or after it, counting the virtual hole
 * at the end of file; both fail with ENXIO when `offset` is at or past the end of file.
 * SEEK_SET and SEEK_END are answered too, though the kernel keeps those to itself.
 */
export async function seekFile(
  ino: Ino,
  sizeBytes: number,
  chunkSizeBytes: number,
  offset: number,
  whence: number,
  load: ChunkSlicesLoader,
): Promise<number> {
  switch (whence) {
    case SeekWhence.SEEK_SET:
      return offset;
    case SeekWhence.SEEK_END:
      return checkedPosition(ino, sizeBytes + offset);
    case SeekWhence.SEEK_DATA:
    case SeekWhence.SEEK_HOLE:
      break;
    default:
      // SEEK_CUR needs the file position, which only the kernel has.
      throw fsError.EINVAL(`lseek whence ${whence} on inode ${ino} is not answered by the file system`);
  }
  if (offset >= sizeBytes) {
    throw new FsError(
      Errno.ENXIO,
      `lseek to ${offset} on inode ${ino}: at or past its end (${sizeBytes} bytes)`,
    );
  }
  const wantData = whence === SeekWhence.SEEK_DATA;
  const lastChunk = Math.floor((sizeBytes - 1) / chunkSizeBytes);
  let position = offset;
  for (let first = Math.floor(offset / chunkSizeBytes); first <= lastChunk; first += CHUNKS_PER_LOAD) {
    const last = Math.min(lastChunk, first + CHUNKS_PER_LOAD - 1);
    const chunks = await load(first, last);
    for (let idx = first; idx <= last; idx++) {
      const chunkStart = idx * chunkSizeBytes;
      const slices = chunks.get(idx);
      const ranges = slices === undefined ? [] : chunkDataRanges(slices);
      for (const r of ranges) {
        const start = chunkStart + r.startBytes;
        const end = chunkStart + r.endBytes;
        if (end <= position) continue;
        if (wantData) {
          if (start >= sizeBytes) break;
          return Math.max(start, position);
        }
        if (start > position) return Math.min(position, sizeBytes);
        position = end;
      }
      if (!wantData && position < chunkStart + chunkSizeBytes) return Math.min(position, sizeBytes);
    }
    if (!wantData && position >= sizeBytes) return sizeBytes;
  }
  if (wantData) {
    throw new FsError(
      Errno.ENXIO,
      `lseek SEEK_DATA from ${offset} on inode ${ino}: only holes up to the end of file`,
    );
  }
  return Math.min(position, sizeBytes);
}

function checkedPosition(ino: Ino, position: number): number {
  if (position < 0 || !Number.isSafeInteger(position)) {
    throw fsError.EINVAL(`lseek on inode ${ino} to ${position}: not a valid file position`);
  }
  return position;
}

/**
 * lseek on an open file of this mount. Its pending writes are data too: they are committed
 * first (as a read of pending bytes does), so the data map answers for them.
 */
export async function seekOpenFile(
  file: OpenFile,
  meta: MetaApi,
  chunkSizeBytes: number,
  offset: number,
  whence: number,
): Promise<number> {
  if (whence === SeekWhence.SEEK_DATA || whence === SeekWhence.SEEK_HOLE) {
    await file.flush(file.lastWriter);
  }
  const ino = file.ino;
  return seekFile(ino, file.sizeBytes, chunkSizeBytes, offset, whence, (first, last) =>
    meta.readSlices(ino, first, last),
  );
}
