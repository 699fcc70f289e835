import type { Ino, SliceRef } from '../common/index.js';
import type { ChunkSlicesFn } from './api.js';
import { SEGMENT_BYTES } from './block-format.js';
import type { BlockFetcher } from './fetcher.js';
import { blockAt, resolvePieces, type BlockRef } from './layout.js';

/** Per open file: where the last read ended and how far ahead we fetch. */
interface ReadState {
  nextOffset: number;
  windowBytes: number;
  /** The window's current ceiling: grows while reads wait for blocks readahead already asked for. */
  limitBytes: number;
  /** Readahead has been issued up to here; do not re-issue. */
  issuedUpTo: number;
}

/** Blocks smaller than this are always fetched whole: a partial fetch would not save much. */
const PARTIAL_MIN_BLOCK_BYTES = 4 * SEGMENT_BYTES;

/** How far from the previous read's end a read may start and still continue the stream. */
const SEQUENTIAL_SLACK_BYTES = 1024 * 1024;

/**
 * A stream's window starts capped at this many blocks; enough for a local store. It grows past
 * that only while reads catch up with readahead still in flight, i.e. when blocks take longer to
 * arrive than the reader takes to consume the window (a store 40 ms away needs bandwidth x round
 * trip in flight, more than 8 blocks at a few hundred MB/s).
 */
const INITIAL_READAHEAD_BLOCKS = 8;

/** Files whose read state we remember; the oldest is forgotten beyond this. */
const MAX_TRACKED_FILES = 4096;

interface Copy {
  /** null: these output bytes are zeros (a hole). */
  block: BlockRef | null;
  blockOffset: number;
  outOffset: number;
  lengthBytes: number;
}

/**
 * Byte-range reads over the overlay of a chunk's slices. Blocks are fetched in parallel;
 * a read that starts where the previous one ended is sequential, and each sequential read
 * doubles the readahead window (from one block up to its ceiling) fetched in background. The
 * ceiling starts at 8 blocks and doubles, up to maxReadaheadBytes, each time a sequential read
 * finds its block still being fetched: the stream outruns the store's latency.
 */
export class Reader {
  private readonly states = new Map<Ino, ReadState>();

  constructor(
    private readonly fetcher: BlockFetcher,
    private readonly chunkSizeBytes: number,
    private readonly blockSizeBytes: number,
    private readonly maxReadaheadBytes: number,
  ) {}

  async read(
    ino: Ino,
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
  ): Promise<Buffer> {
    const end = Math.min(offset + length, fileSizeBytes);
    if (end <= offset) return Buffer.alloc(0);
    const copies = await this.plan(offset, end, chunkSlices, offset);
    // A jump away from where the file's last read ended is a random read: fetch only the
    // segments it needs. The first read at offset 0 is more likely the start of a stream.
    const isRandom = !this.readahead(ino, offset, end, chunkSlices, fileSizeBytes, copies) && offset !== 0;
    return this.fill(end - offset, copies, isRandom);
  }

  /** Exactly the copy's bytes, as a view; a small part of a big block alone when `partial`. */
  private bytesOf(
    block: BlockRef,
    blockOffset: number,
    lengthBytes: number,
    partial: boolean,
  ): Promise<Buffer> {
    if (
      partial &&
      block.blockLengthBytes >= PARTIAL_MIN_BLOCK_BYTES &&
      lengthBytes * 4 <= block.blockLengthBytes
    ) {
      return this.fetcher.getPart(block, blockOffset, lengthBytes);
    }
    return this.fetcher.get(block).then((data) => data.subarray(blockOffset, blockOffset + lengthBytes));
  }

  /**
   * Builds the output from the planned copies. The copies cover it exactly (holes as zero
   * copies), so it need not be zeroed first: profiles showed zeroing at ~7% of a read.
   */
  private async fill(lengthBytes: number, copies: Copy[], partial = false): Promise<Buffer> {
    const only = copies.length === 1 ? copies[0] : null;
    if (only?.block) {
      // The usual read (128 KiB inside one block) is a view of the cached block: no copy.
      // Blocks are immutable and the cache never writes into them, so the view stays valid.
      return this.bytesOf(only.block, only.blockOffset, only.lengthBytes, partial);
    }
    const out = Buffer.allocUnsafe(lengthBytes);
    const fetches: Promise<void>[] = [];
    for (const copy of copies) {
      if (copy.block === null) {
        out.fill(0, copy.outOffset, copy.outOffset + copy.lengthBytes);
        continue;
      }
      fetches.push(
        this.bytesOf(copy.block, copy.blockOffset, copy.lengthBytes, partial).then((data) => {
          data.copy(out, copy.outOffset);
        }),
      );
    }
    await Promise.all(fetches);
    return out;
  }

  /** Reads a chunk range regardless of file size (compaction reads what the slices hold). */
  async readChunkRange(slices: SliceRef[], start: number, end: number): Promise<Buffer> {
    return this.fill(end - start, this.planChunk(slices, start, end, -start));
  }

  /** The block copies that fill [start, end) of the file into a buffer starting at `outBase`. */
  private async plan(
    start: number,
    end: number,
    chunkSlices: ChunkSlicesFn,
    outBase: number,
  ): Promise<Copy[]> {
    const firstChunk = Math.floor(start / this.chunkSizeBytes);
    const lastChunk = Math.floor((end - 1) / this.chunkSizeBytes);
    const lists: Promise<SliceRef[]>[] = [];
    for (let chunk = firstChunk; chunk <= lastChunk; chunk++) lists.push(chunkSlices(chunk));
    const resolved = await Promise.all(lists);
    const copies: Copy[] = [];
    for (let chunk = firstChunk; chunk <= lastChunk; chunk++) {
      const chunkBase = chunk * this.chunkSizeBytes;
      const from = Math.max(start, chunkBase) - chunkBase;
      const to = Math.min(end, chunkBase + this.chunkSizeBytes) - chunkBase;
      copies.push(...this.planChunk(resolved[chunk - firstChunk], from, to, chunkBase - outBase));
    }
    return copies;
  }

  /** Copies for [from, to) of one chunk; `outShift` maps a chunk offset to an output offset. */
  private planChunk(slices: SliceRef[], from: number, to: number, outShift: number): Copy[] {
    const copies: Copy[] = [];
    for (const piece of resolvePieces(slices, from, to)) {
      const slice = piece.slice;
      if (!slice) {
        copies.push({
          block: null,
          blockOffset: 0,
          outOffset: piece.chunkOffsetBytes + outShift,
          lengthBytes: piece.lengthBytes,
        });
        continue;
      }
      let done = 0;
      while (done < piece.lengthBytes) {
        const sliceOffset = slice.sliceOffsetBytes + piece.chunkOffsetBytes - slice.chunkOffsetBytes + done;
        const block = blockAt(slice, sliceOffset);
        const blockOffset = sliceOffset - block.blockIndex * slice.blockSizeBytes;
        const count = Math.min(piece.lengthBytes - done, block.blockLengthBytes - blockOffset);
        copies.push({
          block,
          blockOffset,
          outOffset: piece.chunkOffsetBytes + done + outShift,
          lengthBytes: count,
        });
        done += count;
      }
    }
    return copies;
  }

  private readahead(
    ino: Ino,
    offset: number,
    end: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    copies: readonly Copy[],
  ): boolean {
    let state = this.states.get(ino);
    // Near where the last read ended counts as sequential: the kernel may deliver a stream's
    // reads slightly out of order. The slack stays small so random reads rarely look like one.
    const slack = Math.min(this.blockSizeBytes, SEQUENTIAL_SLACK_BYTES);
    const sequential =
      state !== undefined && offset >= state.nextOffset - slack && offset <= state.nextOffset + slack;
    if (!state || !sequential) {
      if (state) this.states.delete(ino);
      state = {
        nextOffset: end,
        windowBytes: 0,
        limitBytes: Math.min(this.maxReadaheadBytes, INITIAL_READAHEAD_BLOCKS * this.blockSizeBytes),
        issuedUpTo: end,
      };
      this.states.set(ino, state);
      if (this.states.size > MAX_TRACKED_FILES) this.states.delete(this.states.keys().next().value!);
      return false;
    }
    state.nextOffset = Math.max(state.nextOffset, end);
    if (state.limitBytes < this.maxReadaheadBytes && this.waitsForReadahead(copies)) {
      // Concurrent streams share the readahead memory: windows that together outgrow it would
      // evict each other's blocks before they are read.
      const share = Math.floor(this.maxReadaheadBytes / this.activeStreams());
      if (share > state.limitBytes) state.limitBytes = Math.min(share, state.limitBytes * 2);
    }
    state.windowBytes = Math.min(state.limitBytes, Math.max(this.blockSizeBytes, state.windowBytes * 2));
    const from = Math.max(end, state.issuedUpTo);
    const to = Math.min(fileSizeBytes, end + state.windowBytes);
    if (to <= from) return true;
    state.issuedUpTo = to;
    this.plan(from, to, chunkSlices, from).then(
      (ahead) => {
        for (const copy of ahead) if (copy.block) this.fetcher.prefetch(copy.block);
      },
      () => undefined, // readahead is a hint: the demand read reports errors
    );
    return true;
  }

  /** Files being read sequentially (with a readahead window) right now. */
  private activeStreams(): number {
    let streams = 0;
    for (const state of this.states.values()) if (state.windowBytes > 0) streams++;
    return Math.max(1, streams);
  }

  /** Whether this read needs a block that is on its way but not here yet. */
  private waitsForReadahead(copies: readonly Copy[]): boolean {
    for (const copy of copies) if (copy.block && this.fetcher.isFetching(copy.block)) return true;
    return false;
  }

  forget(ino: Ino): void {
    this.states.delete(ino);
  }
}
