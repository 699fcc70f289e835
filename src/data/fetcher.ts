import { fsError, isFsError } from '../common/index.js';
import { ObjectNotFoundError, type ObjectStore } from '../object/index.js';
import {
  bodyBytes,
  CorruptBlockError,
  openBlock,
  SEGMENT_BYTES,
  trailerBytes,
  verifySegments,
} from './block-format.js';
import { allocBlockBuffer } from './block-memory.js';
import type { MemoryBudget } from './budget.js';
import type { BlockBufferPool } from './buffer-pool.js';
import type { DiskBlockCache } from './disk-cache.js';
import { blockKey, type BlockRef } from './layout.js';
import type { CacheLease, MemoryBlockCache } from './memory-cache.js';
import { Semaphore } from './semaphore.js';

export interface FetchStats {
  blocks: number;
  bytes: number;
  readaheadBlocks: number;
  /** Blocks copied into the disk cache by whole-file fetches of randomly read files. */
  diskFillBlocks: number;
  corrupt: number;
}

/**
 * Gets verified block data: memory cache, then disk cache, then the store, with one fetch per
 * block in flight however many readers want it. Memory for a block is acquired before its bytes
 * exist, so a flood of reads waits instead of growing the heap.
 */
export class BlockFetcher {
  readonly stats: FetchStats = { blocks: 0, bytes: 0, readaheadBlocks: 0, diskFillBlocks: 0, corrupt: 0 };
  private readonly inFlight = new Map<string, Promise<Buffer | null>>();
  private readonly segmentLoads = new Map<string, Promise<Buffer>>();
  private readonly diskFills = new Map<string, Promise<boolean>>();
  private readonly slots: Semaphore;

  constructor(
    private readonly store: ObjectStore,
    private readonly budget: MemoryBudget,
    private readonly memoryCache: MemoryBlockCache,
    private readonly diskCache: DiskBlockCache | null,
    maxInFlightFetches: number,
    private readonly corruptRetries: number,
    /**
     * Full-size block buffers to read blocks into (a writer's finished ones, which are the same
     * size), and the size of buffers worth reusing; null: every block read gets fresh memory.
     */
    private readonly pool: BlockBufferPool | null = null,
  ) {
    this.slots = new Semaphore(maxInFlightFetches);
  }

  get fetchesInFlight(): number {
    return this.slots.inUse;
  }

  /** Whether a block is cached in memory or already being fetched. */
  isWarm(key: string): boolean {
    return this.memoryCache.has(key) || this.inFlight.has(key);
  }

  /** What the memory cache, readahead and writers share: a file larger cannot stay cached whole. */
  get memoryBudgetBytes(): number {
    return this.budget.limitBytes;
  }

  /** How much a whole-file fetch may fill: the disk cache's capacity (0 without a disk cache). */
  get diskCacheCapacityBytes(): number {
    return this.diskCache?.capacityBytes ?? 0;
  }

  /**
   * Copies a whole block from the store into the disk cache (not into memory: the file may be
   * larger than the budget), unless the disk cache has it. A file read at random is fetched
   * this way in the background; afterwards its random reads cost a local read and the check of
   * one segment instead of a store round trip. The body goes to disk as fetched: every read of
   * it verifies the segments it uses, as for any disk-cache entry. With `onVerified`, the body is
   * also verified whole on the way and its data handed there (a view, only during the call),
   * unless it fails verification. Resolves false when there is no disk cache or the block could
   * not be stored there.
   */
  fetchToDisk(block: BlockRef, onVerified?: (data: Buffer) => Promise<void>): Promise<boolean> {
    const key = blockKey(block);
    if (!this.diskCache) return Promise.resolve(false);
    if (this.diskCache.has(key)) return Promise.resolve(true);
    // A file reopened while its copy still runs starts another: they share the block fetches.
    const disk = this.diskCache;
    return shareWhileRunning(this.diskFills, key, () => this.copyToDisk(disk, key, block, onVerified));
  }

  private async copyToDisk(
    disk: DiskBlockCache,
    key: string,
    block: BlockRef,
    onVerified: ((data: Buffer) => Promise<void>) | undefined,
  ): Promise<boolean> {
    const wanted = bodyBytes(block.blockLengthBytes);
    // Background work: take memory only when it is free, so writers and demand reads never wait.
    while (!this.budget.tryAcquire(wanted)) await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      const body = await this.fetch(key);
      this.stats.blocks++;
      this.stats.bytes += body.length;
      this.stats.diskFillBlocks++;
      let handed: Promise<void> = Promise.resolve();
      if (onVerified && body.length === wanted) {
        try {
          // The body's memory stays charged until whoever took its data is done with it.
          handed = onVerified(openBlock(body, block)).catch(() => undefined);
        } catch (error) {
          // Damaged in transit or in the store: stored all the same, the reads that use it
          // find out, drop it and fetch again, as for any damaged cache entry.
          if (!(error instanceof CorruptBlockError)) throw error;
        }
      }
      // A body of the wrong size is not worth a disk write; the reads that need it fetch it.
      const stored = body.length === wanted && (await disk.store(key, body));
      await handed;
      return stored;
    } finally {
      this.budget.release(wanted);
    }
  }

  /** Whether a block is being fetched and not yet cached: a read of it would wait. */
  isFetching(block: BlockRef): boolean {
    const key = blockKey(block);
    return this.inFlight.has(key) && !this.memoryCache.has(key);
  }

  /** The block's data (a view into the cached body: do not modify), which the caller may keep. */
  async get(block: BlockRef): Promise<Buffer> {
    const key = blockKey(block);
    const cached = this.memoryCache.get(key);
    if (cached) return cached;
    const data = await shareWhileRunning(this.inFlight, key, () => this.load(key, block, false));
    // A readahead load may have given up for lack of memory: fetch on demand then.
    if (data === null) return this.get(block);
    // In the turn it was cached in (MemoryBlockCache: fresh): this view may live on, so the
    // block's memory must never be reused.
    this.memoryCache.peek(key);
    return data;
  }

  /**
   * The block's data (a view into the cached body: do not modify), held by `lease`: the memory
   * is not reused for another block before the lease is released, and the view must not be
   * used after that.
   */
  async getLeased(block: BlockRef, lease: CacheLease): Promise<Buffer> {
    const key = blockKey(block);
    const cached = this.memoryCache.getLeased(key, lease);
    if (cached) return cached;
    const data = await shareWhileRunning(this.inFlight, key, () => this.load(key, block, false));
    if (data === null) return this.getLeased(block, lease);
    // Still in the turn it was cached in, so its memory was not reused; gone already means
    // evicted, and then left to the garbage collector: the load's view is safe either way.
    return this.memoryCache.getLeased(key, lease) ?? data;
  }

  /** Starts fetching a block into the cache if memory allows; never waits for memory. */
  prefetch(block: BlockRef): void {
    const key = blockKey(block);
    if (this.isWarm(key)) return;
    shareWhileRunning(this.inFlight, key, () => this.load(key, block, true)).catch(() => undefined);
  }

  private async load(key: string, block: BlockRef, isReadahead: boolean): Promise<Buffer | null> {
    const wanted = bodyBytes(block.blockLengthBytes);
    // A full-size block is read into reused memory when the store can say that nothing it gave
    // up on still writes there (ObjectStore.abandonedAttempts).
    const abandonedBefore = wanted === this.pool?.bufferBytes ? this.store.abandonedAttempts : undefined;
    let into: Buffer | undefined;
    let charged: number;
    const reused = abandonedBefore === undefined ? null : this.reusableBuffer(wanted, isReadahead);
    if (reused !== null) {
      into = reused.body;
      charged = reused.chargedBytes;
    } else if (isReadahead) {
      if (!this.budget.tryAcquire(wanted)) return null;
      charged = wanted;
    } else {
      charged = this.budget.charged(wanted);
      await this.budget.acquire(wanted);
    }
    if (abandonedBefore !== undefined) into ??= allocBlockBuffer(wanted);
    try {
      const { data, body } = await this.loadBody(key, block, into);
      if (isReadahead) this.stats.readaheadBlocks++;
      const reusable =
        into !== undefined && body === into && this.store.abandonedAttempts === abandonedBefore;
      this.memoryCache.insert(key, data, charged, reusable ? into : null);
      return data;
    } catch (error) {
      this.budget.release(charged);
      throw error;
    }
  }

  /**
   * A full-size buffer nothing uses, with its charge: an idle pooled one, or, when the budget
   * is full, the least recently used cached block's (which reclaiming would evict anyway).
   * Readahead takes a cached block's only while nobody waits for memory, as it would not get
   * memory then either.
   */
  private reusableBuffer(
    wanted: number,
    isReadahead: boolean,
  ): { body: Buffer; chargedBytes: number } | null {
    const pooled = this.pool?.take() ?? null;
    if (pooled !== null) return { body: pooled, chargedBytes: wanted };
    if (this.budget.freeBytes >= wanted || (isReadahead && this.budget.waitingAcquires > 0)) return null;
    return this.memoryCache.takeOldestBody(wanted);
  }

  /** One GET, whole or ranged, with store errors turned into EIO a person can act on. */
  private async fetch(key: string, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    try {
      return await this.slots.run(() => this.store.get(key, offset, length, into));
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        throw fsError.EIO(
          `block ${key} is missing from ${this.store.description}. If another mount changed or ` +
            `removed this file since it was opened here, the old data was collected after the ` +
            `retention window: reopen the file. Otherwise the data was lost (objects deleted ` +
            `by hand?); check the volume with strata fsck`,
          error,
        );
      }
      if (isFsError(error)) throw error;
      throw fsError.EIO(
        `reading block ${key} from ${this.store.description} failed: ${String(error)}`,
        error,
      );
    }
  }

  /**
   * Bytes [offset, offset + length) of a block's data (a view: do not modify). When the block is
   * not in memory, reads and verifies only the 64 KiB segments covering the range plus the
   * block's trailer (cached too), from the disk cache or else the store, instead of the whole
   * block: small random reads stay small.
   */
  async getPart(block: BlockRef, offset: number, length: number, lease?: CacheLease): Promise<Buffer> {
    const key = blockKey(block);
    if (this.memoryCache.has(key) || this.inFlight.has(key)) {
      const data = await (lease ? this.getLeased(block, lease) : this.get(block));
      return data.subarray(offset, offset + length);
    }
    const first = Math.floor(offset / SEGMENT_BYTES);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    const segmentKey = (s: number): string => `${key}@${s}`;
    let cached = true;
    for (let s = first; s <= last && cached; s++) cached = this.memoryCache.has(segmentKey(s));
    if (!cached) {
      // Parallel reads of neighbouring pages (the kernel sends them at once) share one fetch.
      const data = await shareWhileRunning(this.segmentLoads, `${key}@${first}-${last}`, () =>
        this.loadSegments(key, block, first, last),
      );
      // As in getLeased: the segments were cached in this turn; hold them or mark them kept.
      for (let s = first; s <= last; s++) {
        if (lease) this.memoryCache.getLeased(segmentKey(s), lease);
        else this.memoryCache.peek(segmentKey(s));
      }
      return data.subarray(offset - first * SEGMENT_BYTES, offset - first * SEGMENT_BYTES + length);
    }
    const segment = (s: number): Buffer =>
      lease ? this.memoryCache.getLeased(segmentKey(s), lease)! : this.memoryCache.get(segmentKey(s))!;
    if (first === last) {
      return segment(first).subarray(offset - first * SEGMENT_BYTES, offset - first * SEGMENT_BYTES + length);
    }
    const out = Buffer.allocUnsafe(length);
    for (let s = first; s <= last; s++) {
      const from = Math.max(offset, s * SEGMENT_BYTES);
      const to = Math.min(offset + length, (s + 1) * SEGMENT_BYTES);
      segment(s).copy(out, from - offset, from - s * SEGMENT_BYTES, to - s * SEGMENT_BYTES);
    }
    return out;
  }

  /**
   * Bytes [offset, offset + length) of a block if they are verified in memory already (the
   * whole block, or every 64 KiB segment covering them), else null. Never fetches, never waits.
   * With `lease`, the view is valid until the lease is released and the memory stays reusable;
   * without, the caller may keep it for any time.
   */
  peek(block: BlockRef, offset: number, length: number, lease?: CacheLease): Buffer | null {
    const key = blockKey(block);
    const look = (entryKey: string): Buffer | undefined =>
      lease ? this.memoryCache.peekLeased(entryKey, lease) : this.memoryCache.peek(entryKey);
    const whole = look(key);
    if (whole) return whole.subarray(offset, offset + length);
    const first = Math.floor(offset / SEGMENT_BYTES);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    if (first === last) {
      const segment = look(`${key}@${first}`);
      const at = offset - first * SEGMENT_BYTES;
      return segment ? segment.subarray(at, at + length) : null;
    }
    for (let s = first; s <= last; s++) if (!this.memoryCache.has(`${key}@${s}`)) return null;
    const out = Buffer.allocUnsafe(length);
    for (let s = first; s <= last; s++) {
      const segment = look(`${key}@${s}`)!;
      const from = Math.max(offset, s * SEGMENT_BYTES);
      const to = Math.min(offset + length, (s + 1) * SEGMENT_BYTES);
      segment.copy(out, from - offset, from - s * SEGMENT_BYTES, to - s * SEGMENT_BYTES);
    }
    return out;
  }

  private async loadSegments(key: string, block: BlockRef, first: number, last: number): Promise<Buffer> {
    const dataLength = block.blockLengthBytes;
    const start = first * SEGMENT_BYTES;
    const end = Math.min(dataLength, (last + 1) * SEGMENT_BYTES);
    const trailerKey = `${key}@t`;
    const trailerLength = trailerBytes(dataLength);
    const wanted = end - start + trailerLength;
    // One whole segment (the usual random read) is read into reused memory, as whole blocks are
    // (see load), from the disk cache, or from a store that can say no abandoned attempt still
    // writes there; the trailer always takes memory of its own.
    const abandonedBefore = this.store.abandonedAttempts;
    const mayReuse =
      first === last &&
      end - start === SEGMENT_BYTES &&
      (abandonedBefore !== undefined || (this.diskCache?.has(key) ?? false));
    const reused =
      !mayReuse || this.budget.freeBytes >= wanted ? null : this.memoryCache.takeOldestBody(SEGMENT_BYTES);
    const into = reused?.body ?? (mayReuse ? Buffer.allocUnsafe(SEGMENT_BYTES) : undefined);
    const acquired = reused === null ? wanted : trailerLength;
    const charged = (reused?.chargedBytes ?? 0) + this.budget.charged(acquired);
    await this.budget.acquire(acquired);
    let kept = 0;
    try {
      let lastProblem = '';
      // The disk cache first (once): a damaged copy there is dropped and the store asked.
      let fromDisk = this.diskCache?.has(key) ?? false;
      for (let attempt = 1; attempt <= this.corruptRetries;) {
        const cachedTrailer = this.memoryCache.has(trailerKey) ? this.memoryCache.get(trailerKey)! : null;
        let parts: Buffer[] | null = null;
        if (fromDisk) {
          const ranges: Array<[number, number]> = [[start, end - start]];
          if (!cachedTrailer) ranges.push([dataLength, trailerLength]);
          parts = await this.diskCache!.getRanges(key, ranges, into);
          if (!parts) fromDisk = false;
        }
        if (!parts) {
          parts = await Promise.all([
            this.fetch(key, start, end - start, abandonedBefore === undefined ? undefined : into),
            cachedTrailer ?? this.fetch(key, dataLength, trailerLength),
          ]);
          this.stats.blocks++;
          this.stats.bytes += parts[0].length + (cachedTrailer ? 0 : parts[1].length);
          attempt++;
        }
        const data = parts[0];
        const trailer = cachedTrailer ?? parts[1];
        try {
          verifySegments(data, first, trailer, block);
        } catch (error) {
          if (!(error instanceof CorruptBlockError)) throw error;
          // Either part may be the damaged one: fetch both again.
          this.memoryCache.delete(trailerKey);
          if (fromDisk) {
            fromDisk = false;
            await this.diskCache!.remove(key, 'corrupt');
          } else {
            this.stats.corrupt++;
            lastProblem = error.message;
          }
          continue;
        }
        if (!cachedTrailer) {
          this.memoryCache.insert(trailerKey, trailer, trailerLength);
          kept += trailerLength;
        }
        const reusable =
          into !== undefined &&
          isAllOf(data, into) &&
          (fromDisk || (abandonedBefore !== undefined && this.store.abandonedAttempts === abandonedBefore));
        for (let s = first; s <= last; s++) {
          const segment = data.subarray((s - first) * SEGMENT_BYTES, (s - first + 1) * SEGMENT_BYTES);
          this.memoryCache.insert(`${key}@${s}`, segment, segment.length, reusable ? into : null);
          kept += segment.length;
        }
        return data;
      }
      throw fsError.EIO(
        `block ${key} in ${this.store.description} failed verification ${this.corruptRetries} times ` +
          `(${lastProblem}): the stored object is damaged; restore it from a replica or backup`,
      );
    } finally {
      if (charged > kept) this.budget.release(charged - kept);
    }
  }

  /**
   * The block's verified data, and the whole buffer it is a view of when that is `into` and
   * nothing else holds it (null otherwise: a disk cache's copy, or one it is still writing).
   */
  private async loadBody(
    key: string,
    block: BlockRef,
    into: Buffer | undefined,
  ): Promise<{ data: Buffer; body: Buffer | null }> {
    if (this.diskCache) {
      const body = await this.diskCache.get(key);
      if (body) {
        try {
          return { data: openBlock(body, block), body: null };
        } catch (error) {
          if (!(error instanceof CorruptBlockError)) throw error;
          await this.diskCache.remove(key, 'corrupt');
        }
      }
    }
    let lastProblem = '';
    for (let attempt = 1; attempt <= this.corruptRetries; attempt++) {
      const body = await this.fetch(key, undefined, undefined, into);
      this.stats.blocks++;
      this.stats.bytes += body.length;
      try {
        const data = openBlock(body, block);
        if (this.diskCache) {
          this.diskCache.put(key, body);
          return { data, body: null };
        }
        return { data, body: into !== undefined && isAllOf(body, into) ? into : null };
      } catch (error) {
        if (!(error instanceof CorruptBlockError)) throw error;
        this.stats.corrupt++;
        lastProblem = error.message;
      }
    }
    throw fsError.EIO(
      `block ${key} in ${this.store.description} failed verification ${this.corruptRetries} times ` +
        `(${lastProblem}): the stored object is damaged; restore it from a replica or backup`,
    );
  }
}

/**
 * The promise running for `key` in `running`, or the one `start()` begins: callers asking while
 * it runs share it, and it leaves the map once settled (a later call starts afresh).
 */
function shareWhileRunning<T>(
  running: Map<string, Promise<T>>,
  key: string,
  start: () => Promise<T>,
): Promise<T> {
  const current = running.get(key);
  if (current) return current;
  const pending = start();
  running.set(key, pending);
  const forget = (): void => {
    if (running.get(key) === pending) running.delete(key);
  };
  pending.then(forget, forget);
  return pending;
}

/** Whether `data` is exactly the memory of `buffer`: a store read into all of it, not elsewhere. */
function isAllOf(data: Buffer, buffer: Buffer): boolean {
  return (
    data.buffer === buffer.buffer && data.byteOffset === buffer.byteOffset && data.length === buffer.length
  );
}
