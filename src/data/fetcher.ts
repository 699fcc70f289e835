import { fsError, isFsError } from '../common/index.js';
import { ObjectNotFoundError, type ObjectStore } from '../object/index.js';
import { CorruptBlockError, openBlock, TRAILER_BYTES } from './block-format.js';
import type { MemoryBudget } from './budget.js';
import type { DiskBlockCache } from './disk-cache.js';
import { blockKey, type BlockRef } from './layout.js';
import type { MemoryBlockCache } from './memory-cache.js';
import { Semaphore } from './semaphore.js';

export interface FetchStats {
  blocks: number;
  bytes: number;
  readaheadBlocks: number;
  corrupt: number;
}

/**
 * Gets verified block data: memory cache, then disk cache, then the store, with one fetch per
 * block in flight however many readers want it. Memory for a block is acquired before its bytes
 * exist, so a flood of reads waits instead of growing the heap.
 */
export class BlockFetcher {
  readonly stats: FetchStats = { blocks: 0, bytes: 0, readaheadBlocks: 0, corrupt: 0 };
  private readonly inFlight = new Map<string, Promise<Buffer | null>>();
  private readonly slots: Semaphore;

  constructor(
    private readonly store: ObjectStore,
    private readonly budget: MemoryBudget,
    private readonly memoryCache: MemoryBlockCache,
    private readonly diskCache: DiskBlockCache | null,
    maxInFlightFetches: number,
    private readonly corruptRetries: number,
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

  /** The block's data (a view into the cached body: do not modify). */
  async get(block: BlockRef): Promise<Buffer> {
    const key = blockKey(block);
    const cached = this.memoryCache.get(key);
    if (cached) return cached;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.load(key, block, false);
      this.track(key, pending);
    }
    const data = await pending;
    // A readahead load may have given up for lack of memory: fetch on demand then.
    return data ?? this.get(block);
  }

  /** Starts fetching a block into the cache if memory allows; never waits for memory. */
  prefetch(block: BlockRef): void {
    const key = blockKey(block);
    if (this.isWarm(key)) return;
    const pending = this.load(key, block, true);
    this.track(key, pending);
    pending.catch(() => undefined);
  }

  private track(key: string, pending: Promise<Buffer | null>): void {
    this.inFlight.set(key, pending);
    const forget = () => {
      if (this.inFlight.get(key) === pending) this.inFlight.delete(key);
    };
    pending.then(forget, forget);
  }

  private async load(key: string, block: BlockRef, isReadahead: boolean): Promise<Buffer | null> {
    const bodyBytes = block.blockLengthBytes + TRAILER_BYTES;
    let charged: number;
    if (isReadahead) {
      if (!this.budget.tryAcquire(bodyBytes)) return null;
      charged = bodyBytes;
    } else {
      charged = this.budget.charged(bodyBytes);
      await this.budget.acquire(bodyBytes);
    }
    try {
      const data = await this.loadBody(key, block);
      if (isReadahead) this.stats.readaheadBlocks++;
      this.memoryCache.insert(key, data, charged);
      return data;
    } catch (error) {
      this.budget.release(charged);
      throw error;
    }
  }

  private async loadBody(key: string, block: BlockRef): Promise<Buffer> {
    if (this.diskCache) {
      const body = await this.diskCache.get(key);
      if (body) {
        try {
          return openBlock(body, block);
        } catch (error) {
          if (!(error instanceof CorruptBlockError)) throw error;
          await this.diskCache.remove(key, 'corrupt');
        }
      }
    }
    let lastProblem = '';
    for (let attempt = 1; attempt <= this.corruptRetries; attempt++) {
      let body: Buffer;
      try {
        body = await this.slots.run(() => this.store.get(key));
      } catch (error) {
        if (error instanceof ObjectNotFoundError) {
          throw fsError.EIO(
            `block ${key} is missing from ${this.store.description}: the file's data was lost ` +
              `(deleted by hand or by a GC bug); restore it from a backup or snapshot`,
            error,
          );
        }
        if (isFsError(error)) throw error;
        throw fsError.EIO(
          `reading block ${key} from ${this.store.description} failed: ${String(error)}`,
          error,
        );
      }
      this.stats.blocks++;
      this.stats.bytes += body.length;
      try {
        const data = openBlock(body, block);
        this.diskCache?.put(key, body);
        return data;
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
