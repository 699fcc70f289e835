import type { Ino, SliceId, SliceRef, SliceWrite } from '../common/index.js';
import type { ObjectStore } from '../object/index.js';

/**
 * The data path: file bytes as immutable slices of blocks in an object store. It never talks
 * to the metadata service: slice lists come in as SliceRef[], commits go out as SliceWrite[],
 * and slice ids come from an injected allocator. The VFS joins the two.
 */
export interface DataPathOptions {
  store: ObjectStore;
  /** Largest block object; a slice is stored as ceil(size / blockSizeBytes) blocks. Default 4 MiB. */
  blockSizeBytes?: number;
  /** The fixed chunk size of the volume; a slice never crosses a chunk boundary. Default 64 MiB. */
  chunkSizeBytes?: number;
  /**
   * One budget for write buffers, the memory block cache and readahead. When it is full,
   * writers wait (back-pressure) and the cache gives memory back. Default 512 MiB.
   */
  memoryBudgetBytes?: number;
  /**
   * Part of the budget kept free for buffers already released but not yet garbage-collected
   * (V8 frees big Buffers only at its next collection). Default min(64 MiB, budget / 8).
   */
  gcHeadroomBytes?: number;
  /**
   * Part of the budget other parts of this process hold (`strata up`: the metadata engine's page
   * caches), when the budget has room for it beside four blocks. Default 0.
   */
  sharedBytes?: number;
  /** A directory for the disk block cache; no disk cache when omitted. */
  diskCacheDir?: string;
  /** Capacity of the disk cache. Default 1 GiB. */
  diskCacheBytes?: number;
  /** Returns the first of `count` consecutive, never reused slice ids (MetaApi.allocateSliceIds). */
  allocateSliceIds: (count: number) => Promise<SliceId>;
  /** Block uploads in flight across all writers. Default 16. */
  maxInFlightUploads?: number;
  /** Block fetches in flight across all reads (demand and readahead). Default 32. */
  maxInFlightFetches?: number;
  /**
   * Largest readahead window of one sequential reader. A window starts capped at 8 blocks and
   * grows toward this only while reads wait for blocks already requested (a high-latency store).
   * Default (and upper bound): a quarter of the memory budget.
   */
  maxReadaheadBytes?: number;
  /** Fetch attempts of one block whose checksum does not match before EIO. Default 3. */
  corruptRetries?: number;
  /**
   * Where the data path reports what a user must act on (a full disk-cache disk, data a failed
   * flush lost). Default: nowhere.
   */
  log?: (message: string) => void;
}

/** Buffers one open file's writes and uploads them as slices. One per open handle. */
export interface FileWriter {
  readonly ino: Ino;
  /**
   * Buffers `data` (copied: the caller may reuse its buffer) for `offset`. Awaits when the
   * memory budget is full until uploads free room. Upload errors surface from flush().
   */
  write(offset: number, data: Buffer): Promise<void>;
  /**
   * Uploads everything buffered and returns the slices to commit, in overlay order. After it
   * resolves, the slices are durable in the store. Fails with FsError EIO (cause attached) if
   * any upload since the last flush failed; the failed data is dropped, the error reported once.
   */
  flush(): Promise<SliceWrite[]>;
  /** Bytes written but not yet returned by flush() (buffered or uploading). */
  readonly pendingBytes: number;
  /** End (offset + length) of the furthest write not yet returned by flush(), 0 if none. */
  readonly pendingEndBytes: number;
  /** Drops buffered data and waits for in-flight uploads to settle (their objects become garbage). */
  abort(): Promise<void>;
}

/**
 * Told about the bytes a whole-file copy into the disk cache verified on the way (the reader
 * copies a file read at random; see Reader). `startFill` runs when such a copy starts and
 * returns where its verified bytes go (file offset, data view), or null: do not verify them.
 * The copy keeps the block's memory (in the budget) until the returned promise settles.
 */
export interface FillListener {
  startFill(): FillSink | null;
}

export type FillSink = (fileOffsetBytes: number, data: Buffer) => Promise<void>;

/** Returns the slice list of one chunk of the file being read, in overlay order. */
export type ChunkSlicesFn = (chunkIndex: number) => Promise<SliceRef[]>;

export interface DataPathStats {
  /** limitBytes is the budget minus the GC headroom: what buffers, cache and readahead may hold. */
  memory: { limitBytes: number; usedBytes: number; peakBytes: number; waitingAcquires: number };
  /** Full-size block buffers kept for reuse after their upload (charged to the budget). */
  bufferPool: { buffers: number; bytes: number; reused: number };
  /** reusedBuffers: cached blocks whose memory a block read went into (MemoryBlockCache). */
  memoryCache: { blocks: number; bytes: number; hits: number; misses: number; reusedBuffers: number };
  diskCache: {
    enabled: boolean;
    blocks: number;
    bytes: number;
    capacityBytes: number;
    hits: number;
    corrupt: number;
  };
  uploads: { inFlight: number; queued: number; blocks: number; bytes: number; errors: number };
  fetches: {
    inFlight: number;
    blocks: number;
    bytes: number;
    readaheadBlocks: number;
    /** Blocks copied into the disk cache by whole-file copies of files read at random. */
    diskFillBlocks: number;
    corrupt: number;
  };
  /** Writers holding partial blocks in memory right now. */
  writers: number;
}

/** Cached memory a read's result may be a view of, lent until release (DataPath.newReadLease). */
export interface ReadLease {
  /** The reader is done with the result: its memory may hold other blocks from now on. */
  release(): void;
}

export interface DataPath {
  readonly blockSizeBytes: number;
  readonly chunkSizeBytes: number;
  openWriter(ino: Ino): FileWriter;
  /**
   * Reads [offset, offset + length) clamped to `fileSizeBytes`. Bytes no slice covers read as
   * zeros. Sees only committed slices: flush a file's writers (and commit) before reading it.
   * The result may be a view of a cached block: read it, send it, never modify it. Without
   * `lease` the caller may keep it for any time; with one (from newReadLease), only until the
   * lease is released, which lets the block's memory be reused for other blocks afterwards
   * (release it also when the read fails).
   * `fill`, when given, hears of the bytes a whole-file copy this read starts has verified.
   */
  read(
    ino: Ino,
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    fill?: FillListener,
    lease?: ReadLease,
  ): Promise<Buffer>;
  /** A lease for one read's result (see read). */
  newReadLease(): ReadLease;
  /**
   * Like read, but only from data verified in memory already (null if any byte of the range is
   * not), never fetching and without touching read state (readahead, random-read detection).
   * `lease` as read's: without one, the cached memory behind the result is never reused.
   */
  readCached(
    offset: number,
    length: number,
    chunkSlices: ChunkSlicesFn,
    fileSizeBytes: number,
    lease?: ReadLease,
  ): Promise<Buffer | null>;
  /** Whether a chunk is fragmented enough that compactChunk pays. */
  shouldCompact(slices: SliceRef[]): boolean;
  /**
   * Rewrites the chunk's groups of small slices (see planCompaction) into one new slice,
   * leaving large slices in place; returns the new list to commit with
   * MetaApi.replaceChunkSlices (the same list when nothing is worth rewriting). Old objects
   * stay (history) until GC removes them.
   */
  compactChunk(slices: SliceRef[], chunkIndex: number): Promise<SliceRef[]>;
  /**
   * Sends with `send` (the heartbeat) the lowest slice id this mount may still commit: the least
   * id taken for writes or compaction and not released, or NOTHING_HELD (0), for which the
   * metadata service records its allocator's next id; no new ids are taken until `send` settles
   * (src/meta/reclaim-floor.ts).
   */
  reportSliceFloor(send: (floor: SliceId) => Promise<void>): Promise<void>;
  /**
   * The slices of these ids were committed, or their commit was given up for good: they no
   * longer hold the floor down. Whoever commits what flush() or compactChunk() returned calls it.
   */
  releaseSlices(ids: Iterable<SliceId>): void;
  /** Forgets per-file read state (sequential detection) when a file is no longer open. */
  forget(ino: Ino): void;
  stats(): DataPathStats;
  /** Waits for uploads in flight and releases caches. Does not close the store. */
  close(): Promise<void>;
}
