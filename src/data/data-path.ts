import { asIno, type Ino, type SliceId, type SliceRef } from '../common/index.js';
import type {
  ChunkSlicesFn,
  DataPath,
  DataPathOptions,
  DataPathStats,
  FileWriter,
  FillListener,
  ReadLease,
} from './api.js';
import { bodyBytes } from './block-format.js';
import { MemoryBudget } from './budget.js';
import { BlockBufferPool } from './buffer-pool.js';
import { COMPACT_MIN_SLICES, planCompaction, zeroSlice } from './compact.js';
import { DiskBlockCache } from './disk-cache.js';
import { BlockFetcher } from './fetcher.js';
import { CacheLease, MemoryBlockCache } from './memory-cache.js';
import { Reader } from './reader.js';
import { BlockSealer, SEALER_THREAD_BYTES, sealsOnThread } from './sealer.js';
import { LossLog, SliceIdPool, Uploader } from './uploader.js';
import { Writer, type WriterContext } from './writer.js';

const MiB = 1024 * 1024;

export const DATA_PATH_DEFAULTS = {
  blockSizeBytes: 4 * MiB,
  chunkSizeBytes: 64 * MiB,
  memoryBudgetBytes: 512 * MiB,
  diskCacheBytes: 1024 * MiB,
  maxInFlightUploads: 16,
  maxInFlightFetches: 32,
  corruptRetries: 3,
} as const;

/**
 * Block buffers kept for reuse after their upload: enough for a stream to never allocate while
 * its uploads keep up, little enough (16 MiB at 4 MiB blocks) to matter nowhere else.
 */
const POOLED_BLOCK_BUFFERS = 4;

/** Compaction reads and rewrites a chunk in windows this large, so it never holds a whole chunk. */
const COMPACTION_WINDOW_BLOCKS = 4;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`data path option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

class StrataDataPath implements DataPath {
  readonly blockSizeBytes: number;
  readonly chunkSizeBytes: number;
  private readonly budget: MemoryBudget;
  private readonly memoryCache: MemoryBlockCache;
  private readonly bufferPool: BlockBufferPool;
  private readonly diskCache: DiskBlockCache | null;
  private readonly fetcher: BlockFetcher;
  private readonly uploader: Uploader;
  private readonly sealer = new BlockSealer();
  private readonly reader: Reader;
  private readonly writerContext: WriterContext;
  private readonly ids: SliceIdPool;
  private readonly buffering = new Set<Writer>();

  constructor(options: DataPathOptions) {
    const d = DATA_PATH_DEFAULTS;
    this.blockSizeBytes = positiveInteger('blockSizeBytes', options.blockSizeBytes ?? d.blockSizeBytes);
    this.chunkSizeBytes = positiveInteger('chunkSizeBytes', options.chunkSizeBytes ?? d.chunkSizeBytes);
    if (this.chunkSizeBytes % this.blockSizeBytes !== 0) {
      throw new Error(
        `chunk size ${this.chunkSizeBytes} must be a multiple of the block size ${this.blockSizeBytes}`,
      );
    }
    const memoryBudgetBytes = positiveInteger(
      'memoryBudgetBytes',
      options.memoryBudgetBytes ?? d.memoryBudgetBytes,
    );
    // Two blocks per upload slot would be ideal; four blocks is the least that keeps a stream moving.
    const minimumBudget = 4 * bodyBytes(this.blockSizeBytes);
    if (memoryBudgetBytes < minimumBudget) {
      throw new Error(
        `memory budget ${memoryBudgetBytes} bytes is too small for ${this.blockSizeBytes}-byte blocks: ` +
          `give at least ${minimumBudget} bytes (4 blocks)`,
      );
    }
    // The bench (bench/data/throughput.ts) measured up to ~110 MiB of RSS above budget + baseline
    // from released-but-uncollected block buffers; holding some budget back keeps the mount
    // within budget + 150 MiB.
    const gcHeadroomBytes = options.gcHeadroomBytes ?? Math.min(64 * MiB, Math.floor(memoryBudgetBytes / 8));
    if (
      !Number.isSafeInteger(gcHeadroomBytes) ||
      gcHeadroomBytes < 0 ||
      memoryBudgetBytes - gcHeadroomBytes < minimumBudget
    ) {
      throw new Error(
        `memory budget ${memoryBudgetBytes} bytes minus GC headroom ${gcHeadroomBytes} bytes leaves less than ` +
          `${minimumBudget} bytes (4 blocks of ${this.blockSizeBytes} bytes): give a larger budget`,
      );
    }
    // The sealing thread's memory and what the rest of the process holds (an engine beside the
    // mount) come out of the budget too, each when the budget has room for it.
    const sharedBytes = options.sharedBytes ?? 0;
    if (!Number.isSafeInteger(sharedBytes) || sharedBytes < 0) {
      throw new Error(`sharedBytes ${sharedBytes} must be a whole number of bytes >= 0`);
    }
    let budgetBytes = memoryBudgetBytes - gcHeadroomBytes;
    const sealerBytes = sealsOnThread(this.blockSizeBytes) ? SEALER_THREAD_BYTES : 0;
    for (const heldElsewhere of [sealerBytes, sharedBytes]) {
      if (budgetBytes - heldElsewhere >= minimumBudget) budgetBytes -= heldElsewhere;
    }
    this.budget = new MemoryBudget(budgetBytes);
    // Created first so the budget reclaims pooled (empty) buffers before cached blocks.
    this.bufferPool = new BlockBufferPool(this.budget, bodyBytes(this.blockSizeBytes), POOLED_BLOCK_BUFFERS);
    this.memoryCache = new MemoryBlockCache(this.budget);
    this.diskCache = options.diskCacheDir
      ? new DiskBlockCache(options.diskCacheDir, options.diskCacheBytes ?? d.diskCacheBytes, options.log)
      : null;
    this.fetcher = new BlockFetcher(
      options.store,
      this.budget,
      this.memoryCache,
      this.diskCache,
      positiveInteger('maxInFlightFetches', options.maxInFlightFetches ?? d.maxInFlightFetches),
      positiveInteger('corruptRetries', options.corruptRetries ?? d.corruptRetries),
      this.bufferPool,
    );
    this.uploader = new Uploader(
      options.store,
      this.budget,
      positiveInteger('maxInFlightUploads', options.maxInFlightUploads ?? d.maxInFlightUploads),
      this.sealer,
      (key, data, chargedBytes) => this.memoryCache.insert(key, data, chargedBytes),
      this.bufferPool,
    );
    // Readahead never takes more than a quarter of the budget, leaving room for writers; a
    // stream's window reaches that only against a slow store (see Reader).
    const maxReadaheadBytes = Math.min(
      options.maxReadaheadBytes ?? Math.floor(memoryBudgetBytes / 4),
      Math.floor(memoryBudgetBytes / 4),
    );
    this.reader = new Reader(this.fetcher, this.chunkSizeBytes, this.blockSizeBytes, maxReadaheadBytes);
    const lossLog = options.log === undefined ? undefined : new LossLog(options.log);
    this.ids = new SliceIdPool(options.allocateSliceIds);
    this.writerContext = {
      budget: this.budget,
      pool: this.bufferPool,
      uploader: this.uploader,
      ids: this.ids,
      blockSizeBytes: this.blockSizeBytes,
      chunkSizeBytes: this.chunkSizeBytes,
      storeDescription: options.store.description,
      holdsBuffers: (writer, holds) => {
        if (holds) this.buffering.add(writer);
        else this.buffering.delete(writer);
      },
      reportLoss: lossLog === undefined ? undefined : (message) => lossLog.report(message),
    };
    this.budget.setPressureHandler(() => this.relievePressure());
  }

  /**
   * The budget is full and someone waits. In-flight uploads will free memory by themselves; if
   * there are none, only partial blocks hold memory, so force them out, biggest first.
   */
  private relievePressure(): void {
    if (this.uploader.busy) return;
    const writers = [...this.buffering].sort((a, b) => b.bufferedBytes - a.bufferedBytes);
    for (const writer of writers) {
      writer.sealAll();
      if (this.uploader.busy) return;
    }
  }

  openWriter(ino: Ino): FileWriter {
    return new Writer(ino, this.writerContext);
  }

  read(
    ino: Ino,
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    fill?: FillListener,
    lease?: ReadLease,
  ): Promise<Buffer> {
    // Only the cache's own leases can hold its blocks; without one, the result is the caller's to keep.
    const held = lease instanceof CacheLease ? lease : undefined;
    return this.reader.read(ino, offset, length, chunkSlices, fileSizeBytes, fill, held);
  }

  newReadLease(): ReadLease {
    return new CacheLease();
  }

  readCached(
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    lease?: ReadLease,
  ): Promise<Buffer | null> {
    const held = lease instanceof CacheLease ? lease : undefined;
    return this.reader.readCached(offset, length, chunkSlices, fileSizeBytes, held);
  }

  shouldCompact(slices: SliceRef[]): boolean {
    return slices.length >= COMPACT_MIN_SLICES && planCompaction(slices, this.chunkSizeBytes) !== null;
  }

  async compactChunk(slices: SliceRef[], chunkIndex: number): Promise<SliceRef[]> {
    const plan = planCompaction(slices, this.chunkSizeBytes);
    if (plan === null) return [...slices];
    const merged = [...plan.keep];
    for (const range of plan.ranges) {
      for (const run of range.zeroRuns) merged.push(zeroSlice(run.start, run.end, this.blockSizeBytes));
    }
    const spans = plan.ranges.flatMap((range) => (range.dataSpan === null ? [] : [range.dataSpan]));
    if (spans.length === 0) return merged;
    // A writer of its own (ino 0 is never a real file) gives compaction the same budget,
    // back-pressure, checksums and parallel uploads as any write. Its disjoint spans become
    // references into one new slice, in chunk order.
    const writer = new Writer(asIno(0), this.writerContext);
    const chunkBase = chunkIndex * this.chunkSizeBytes;
    const windowBytes = COMPACTION_WINDOW_BLOCKS * this.blockSizeBytes;
    try {
      for (const span of spans) {
        for (let start = span.start; start < span.end; start += windowBytes) {
          const end = Math.min(span.end, start + windowBytes);
          const data = await this.reader.readChunkRange(slices, start, end);
          await writer.write(chunkBase + start, data);
        }
      }
      const writes = await writer.flush();
      return [...merged, ...writes.map((write) => write.slice)];
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  reportSliceFloor(send: (floor: SliceId) => Promise<void>): Promise<void> {
    return this.ids.reportFloor(send);
  }

  releaseSlices(ids: Iterable<SliceId>): void {
    this.ids.release(ids);
  }

  forget(ino: Ino): void {
    this.reader.forget(ino);
  }

  stats(): DataPathStats {
    const disk = this.diskCache;
    return {
      memory: {
        limitBytes: this.budget.limitBytes,
        usedBytes: this.budget.usedBytes,
        peakBytes: this.budget.peakBytes,
        waitingAcquires: this.budget.waitingAcquires,
      },
      bufferPool: {
        buffers: this.bufferPool.buffers,
        bytes: this.bufferPool.buffers * this.bufferPool.bufferBytes,
        reused: this.bufferPool.reused,
      },
      memoryCache: {
        blocks: this.memoryCache.blocks,
        bytes: this.memoryCache.sizeBytes,
        hits: this.memoryCache.hits,
        misses: this.memoryCache.misses,
        reusedBuffers: this.memoryCache.reusedBodies,
      },
      diskCache: {
        enabled: disk !== null,
        blocks: disk?.blocks ?? 0,
        bytes: disk?.sizeBytes ?? 0,
        capacityBytes: disk?.capacityBytes ?? 0,
        hits: disk?.hits ?? 0,
        corrupt: disk?.corrupt ?? 0,
      },
      uploads: {
        inFlight: this.uploader.inFlight,
        queued: this.uploader.queued,
        ...this.uploader.stats,
      },
      fetches: { inFlight: this.fetcher.fetchesInFlight, ...this.fetcher.stats },
      writers: this.buffering.size,
    };
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.sealer.close();
    await this.diskCache?.drain();
    this.memoryCache.clear();
    this.bufferPool.clear();
  }
}

/** Creates the data path of one mount. */
export function createDataPath(options: DataPathOptions): DataPath {
  return new StrataDataPath(options);
}
