import type { Ino, SliceRef } from '../common/index.js';
import type { ChunkSlicesFn, FillListener, FillSink } from './api.js';
import { SEGMENT_BYTES } from './block-format.js';
import type { BlockFetcher } from './fetcher.js';
import type { CacheLease } from './memory-cache.js';
import { blockAt, blockKey, resolvePieces, type BlockRef } from './layout.js';

/** Per open file: where the last read ended and how far ahead we fetch. */
interface ReadState {
  nextOffset: number;
  windowBytes: number;
  /** The window's current ceiling: grows while reads wait for blocks readahead already asked for. */
  limitBytes: number;
  /** Readahead has been issued up to here; do not re-issue. */
  issuedUpTo: number;
  /** Reads in a row that continued the previous one (see STREAM_EVIDENCE_READS). */
  continuedReads: number;
}

/** Blocks smaller than this are always fetched whole: a partial fetch would not save much. */
const PARTIAL_MIN_BLOCK_BYTES = 4 * SEGMENT_BYTES;

/** How far from the previous read's end a read may start and still continue the stream. */
const SEQUENTIAL_SLACK_BYTES = 1024 * 1024;

/**
 * In a file larger than the memory budget, a small read that continues the previous one makes a
 * stream only when it is the second in a row; a read this large (the kernel's own readahead
 * sends 128 KiB and more) makes one at once. Random 4 KiB reads of a 1 GiB file land within the
 * slack of the last read's end about once in 500: taken each time as a stream, they fetched
 * whole 4 MiB blocks and read 4 MiB ahead, ~20 blocks a second of bytes nobody read, evicting
 * the segments random reads had cached (bench/RESULTS.md, S3 backend, sessions 22-23). A file
 * that fits the budget keeps the eager rule: there those whole blocks stay cached and serve the
 * random reads that follow (under the stricter rule O_DIRECT random reads of a 256 MiB file fell
 * 14-25%).
 */
const STREAM_EVIDENCE_READS = 2;
const STREAM_READ_BYTES = 64 * 1024;

/**
 * A stream's window starts capped at this many blocks; enough for a local store. It grows past
 * that only while reads catch up with readahead still in flight, i.e. when blocks take longer to
 * arrive than the reader takes to consume the window (a store 40 ms away needs bandwidth x round
 * trip in flight, more than 8 blocks at a few hundred MB/s).
 */
const INITIAL_READAHEAD_BLOCKS = 8;

/** Files whose read state we remember; the oldest is forgotten beyond this. */
const MAX_TRACKED_FILES = 4096;

/**
 * Random reads of one open file after which the whole file is copied into the disk cache in the
 * background (as s3fs does on open): over a WAN each cold random read is a store round trip
 * (~45 ms at 40 ms RTT), a read from the local copy a fraction of a millisecond. A few random
 * reads first, so a program that seeks once (a file's header, then its tail) fetches no more.
 */
const RANDOM_READS_BEFORE_DISK_FILL = 8;

/** A file is copied whole only while it takes at most this share of the disk cache. */
const DISK_FILL_MAX_CACHE_SHARE = 0.5;

/**
 * Blocks one whole-file copy keeps in flight. 4 MiB GETs over a 40 ms round trip move ~50 MB/s
 * each, so 8 fill a 1 Gbit/s link; the rest of the fetch slots stay free for demand reads.
 */
const DISK_FILL_CONCURRENCY = 8;

interface Copy {
  /** null: these output bytes are zeros (a hole). */
  block: BlockRef | null;
  blockOffset: number;
  outOffset: number;
  lengthBytes: number;
}

/**
 * Byte-range reads over the overlay of a chunk's slices. Blocks are fetched in parallel;
 * a read that starts where the previous one ended is sequential (in a file larger than the memory
 * budget a small one only as the second in a row: STREAM_EVIDENCE_READS), and each sequential
 * read doubles the readahead window (from one block up to its ceiling) fetched in background. The
 * ceiling starts at 8 blocks and doubles, up to maxReadaheadBytes, each time a sequential read
 * finds its block still being fetched: the stream outruns the store's latency.
 */
export class Reader {
  private readonly states = new Map<Ino, ReadState>();
  /** Random reads counted per file, until its whole-file copy starts. */
  private readonly randomReads = new Map<Ino, number>();
  /** Files copied (or being copied) whole into the disk cache since they were opened. */
  private readonly filledFiles = new Set<Ino>();
  /** Whole-file copies running now: close() stops them and waits for their GETs in flight. */
  private readonly fills = new Set<Promise<void>>();
  private closed = false;

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
    fillListener?: FillListener,
    lease?: CacheLease,
  ): Promise<Buffer> {
    const end = Math.min(offset + length, fileSizeBytes);
    if (end <= offset) return Buffer.alloc(0);
    const copies = await this.plan(offset, end, chunkSlices, offset);
    // A jump away from where the file's last read ended is a random read: fetch only the
    // segments it needs, as for a read that continues the last one but is no stream yet. The
    // first read at offset 0 is more likely the start of a stream.
    const run = this.readahead(ino, offset, end, chunkSlices, fileSizeBytes, copies);
    const isRandom = run !== 'stream' && offset !== 0;
    if (run === 'jump' && offset !== 0) this.countRandomRead(ino, chunkSlices, fileSizeBytes, fillListener);
    return this.fill(end - offset, copies, isRandom, lease);
  }

  /**
   * [offset, offset + length) clamped to the file size, only if every byte of it is verified in
   * memory already; null otherwise. Never fetches and leaves the read state (readahead, random
   * read counts) alone: it hands on what a read just brought, e.g. to the kernel's page cache.
   * With `lease`, the result is a view lent until the lease is released (as read's).
   */
  async readCached(
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    lease?: CacheLease,
  ): Promise<Buffer | null> {
    const end = Math.min(offset + length, fileSizeBytes);
    if (end <= offset) return null;
    const copies = await this.plan(offset, end, chunkSlices, offset);
    const only = copies.length === 1 ? copies[0] : null;
    if (only?.block) return this.fetcher.peek(only.block, only.blockOffset, only.lengthBytes, lease);
    const out = Buffer.allocUnsafe(end - offset);
    for (const copy of copies) {
      if (copy.block === null) {
        out.fill(0, copy.outOffset, copy.outOffset + copy.lengthBytes);
        continue;
      }
      const data = this.fetcher.peek(copy.block, copy.blockOffset, copy.lengthBytes, lease);
      if (data === null) return null;
      data.copy(out, copy.outOffset);
    }
    return out;
  }

  /** Starts the whole-file copy into the disk cache once a file that fits it is read at random. */
  private countRandomRead(
    ino: Ino,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    fillListener: FillListener | undefined,
  ): void {
    if (this.closed || this.filledFiles.has(ino)) return;
    if (fileSizeBytes > this.fetcher.diskCacheCapacityBytes * DISK_FILL_MAX_CACHE_SHARE) return;
    const count = (this.randomReads.get(ino) ?? 0) + 1;
    if (count < RANDOM_READS_BEFORE_DISK_FILL) {
      this.randomReads.set(ino, count);
      if (this.randomReads.size > MAX_TRACKED_FILES)
        this.randomReads.delete(this.randomReads.keys().next().value!);
      return;
    }
    this.randomReads.delete(ino);
    this.filledFiles.add(ino);
    if (this.filledFiles.size > MAX_TRACKED_FILES)
      this.filledFiles.delete(this.filledFiles.values().next().value!);
    // A hint like readahead: the demand reads report store errors, this copy only stops.
    const verified = fillListener?.startFill() ?? null;
    const fill = this.fillDiskCache(chunkSlices, fileSizeBytes, verified)
      .catch(() => undefined)
      .finally(() => this.fills.delete(fill));
    this.fills.add(fill);
  }

  /** Stops the whole-file copies (no new block GET starts) and waits for the GETs in flight. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.fills);
  }

  /**
   * Copies every block of the file into the disk cache, a chunk at a time, a few blocks in flight.
   * With `verified`, each block fetched is verified on the way and the file ranges it shows are
   * handed there (the copies of the plan: where the block is the visible layer).
   */
  private async fillDiskCache(
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    verified: FillSink | null,
  ): Promise<void> {
    for (let start = 0; start < fileSizeBytes && !this.closed; start += this.chunkSizeBytes) {
      const end = Math.min(fileSizeBytes, start + this.chunkSizeBytes);
      const blocks = new Map<string, { block: BlockRef; shows: Copy[] }>();
      for (const copy of await this.plan(start, end, chunkSlices, start)) {
        if (!copy.block) continue;
        const key = blockKey(copy.block);
        const known = blocks.get(key);
        if (known) known.shows.push(copy);
        else blocks.set(key, { block: copy.block, shows: [copy] });
      }
      const queue = [...blocks.values()];
      const worker = async (): Promise<void> => {
        for (let next = queue.shift(); next && !this.closed; next = queue.shift()) {
          const { block, shows } = next;
          const onVerified =
            verified === null
              ? undefined
              : async (data: Buffer): Promise<void> => {
                  const handed = shows.map((copy) =>
                    verified(
                      start + copy.outOffset,
                      data.subarray(copy.blockOffset, copy.blockOffset + copy.lengthBytes),
                    ),
                  );
                  await Promise.all(handed);
                };
          if (!(await this.fetcher.fetchToDisk(block, onVerified)))
            throw new Error('the disk cache took no block');
        }
      };
      await Promise.all(Array.from({ length: DISK_FILL_CONCURRENCY }, worker));
    }
  }

  /**
   * Exactly the copy's bytes, as a view (held by `lease` when given); a small part of a big
   * block alone when `partial`.
   */
  private bytesOf(
    block: BlockRef,
    blockOffset: number,
    lengthBytes: number,
    partial: boolean,
    lease: CacheLease | undefined,
  ): Promise<Buffer> {
    if (
      partial &&
      block.blockLengthBytes >= PARTIAL_MIN_BLOCK_BYTES &&
      lengthBytes * 4 <= block.blockLengthBytes
    ) {
      return this.fetcher.getPart(block, blockOffset, lengthBytes, lease);
    }
    const whole = lease ? this.fetcher.getLeased(block, lease) : this.fetcher.get(block);
    return whole.then((data) => data.subarray(blockOffset, blockOffset + lengthBytes));
  }

  /**
   * Builds the output from the planned copies. The copies cover it exactly (holes as zero
   * copies), so it need not be zeroed first: profiles showed zeroing at ~7% of a read.
   */
  private async fill(
    lengthBytes: number,
    copies: Copy[],
    partial = false,
    lease?: CacheLease,
  ): Promise<Buffer> {
    const only = copies.length === 1 ? copies[0] : null;
    if (only?.block) {
      // The usual read (128 KiB inside one block) is a view of the cached block: no copy.
      // Blocks are immutable and the cache never writes into them while a view may be in use
      // (one without a lease, ever), so the view stays valid.
      return this.bytesOf(only.block, only.blockOffset, only.lengthBytes, partial, lease);
    }
    const out = Buffer.allocUnsafe(lengthBytes);
    const fetches: Promise<void>[] = [];
    for (const copy of copies) {
      if (copy.block === null) {
        out.fill(0, copy.outOffset, copy.outOffset + copy.lengthBytes);
        continue;
      }
      fetches.push(
        this.bytesOf(copy.block, copy.blockOffset, copy.lengthBytes, partial, lease).then((data) => {
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
  ): 'jump' | 'continued' | 'stream' {
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
        continuedReads: 0,
      };
      this.states.set(ino, state);
      if (this.states.size > MAX_TRACKED_FILES) this.states.delete(this.states.keys().next().value!);
      return 'jump';
    }
    state.nextOffset = Math.max(state.nextOffset, end);
    state.continuedReads++;
    if (
      state.continuedReads < STREAM_EVIDENCE_READS &&
      end - offset < STREAM_READ_BYTES &&
      fileSizeBytes > this.fetcher.memoryBudgetBytes
    ) {
      // Maybe a random read that happened to land near the last one: not a stream yet.
      state.issuedUpTo = Math.max(state.issuedUpTo, end);
      return 'continued';
    }
    if (state.limitBytes < this.maxReadaheadBytes && this.waitsForReadahead(copies)) {
      // Concurrent streams share the readahead memory: windows that together outgrow it would
      // evict each other's blocks before they are read.
      const share = Math.floor(this.maxReadaheadBytes / this.activeStreams());
      if (share > state.limitBytes) state.limitBytes = Math.min(share, state.limitBytes * 2);
    }
    state.windowBytes = Math.min(state.limitBytes, Math.max(this.blockSizeBytes, state.windowBytes * 2));
    const from = Math.max(end, state.issuedUpTo);
    const to = Math.min(fileSizeBytes, end + state.windowBytes);
    if (to <= from) return 'stream';
    state.issuedUpTo = to;
    this.plan(from, to, chunkSlices, from).then(
      (ahead) => {
        for (const copy of ahead) if (copy.block) this.fetcher.prefetch(copy.block);
      },
      () => undefined, // readahead is a hint: the demand read reports errors
    );
    return 'stream';
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
    this.randomReads.delete(ino);
    this.filledFiles.delete(ino);
  }
}
