import type { SliceId } from '../common/index.js';
import type { ObjectStore } from '../object/index.js';
import { bodyBytes } from './block-format.js';
import type { MemoryBudget } from './budget.js';
import type { BlockBufferPool } from './buffer-pool.js';
import { blockKey } from './layout.js';
import type { BlockSealer } from './sealer.js';
import { Semaphore } from './semaphore.js';

export interface UploadStats {
  blocks: number;
  bytes: number;
  errors: number;
}

/**
 * Hands out slice ids from the metadata allocator in batches, so a slice costs no round trip,
 * and knows this mount's slice floor: the lowest id it may still commit. An id is held from
 * take() until release() (its commit succeeded, or its data was given up); the floor is the
 * least held id, else the next id of the current batch. Every later batch starts above that,
 * since the allocator only counts up (src/meta/reclaim-floor.ts relies on it).
 */
export class SliceIdPool {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | null = null;
  private readonly held = new Set<number>();

  constructor(
    private readonly allocate: (count: number) => Promise<SliceId>,
    private readonly batch = 64,
  ) {}

  async take(): Promise<SliceId> {
    while (this.next >= this.end) await this.fill();
    const id = this.next++;
    this.held.add(id);
    return id as SliceId;
  }

  private fill(): Promise<void> {
    this.refill ??= this.allocate(this.batch).then(
      (first) => {
        this.next = first as number;
        this.end = this.next + this.batch;
        this.refill = null;
      },
      (error: unknown) => {
        this.refill = null;
        throw error;
      },
    );
    return this.refill;
  }

  /** These ids will not be committed by this mount any more (committed, or given up). */
  release(ids: Iterable<SliceId>): void {
    for (const id of ids) this.held.delete(id);
  }

  /** Ids taken and not released. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * The lowest slice id this mount may still commit. Before the first batch nothing bounds the
   * ids to come, so it takes one (a mount that never writes spends one batch of ids).
   */
  async floor(): Promise<SliceId> {
    if (this.end === 0) await this.fill();
    let lowest = this.next;
    for (const id of this.held) if (id < lowest) lowest = id;
    return lowest as SliceId;
  }
}

/**
 * Logs what failed flushes lost: the first at once, then at most one line per window saying how
 * many more there were, so a full disk or a store outage under many open files is a few lines,
 * not one per file. The program learns of each from its fsync/close; the log says why.
 */
export class LossLog {
  private lastLogMs = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly log: (message: string) => void,
    private readonly windowMs = 60_000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  report(message: string): void {
    const now = this.nowMs();
    if (now - this.lastLogMs < this.windowMs) {
      this.suppressed++;
      return;
    }
    const more =
      this.suppressed > 0 ? ` (${this.suppressed} more flushes failed since the last such line)` : '';
    this.suppressed = 0;
    this.lastLogMs = now;
    this.log(`${message}${more}`);
  }
}

/**
 * Uploads sealed blocks with a bounded number of puts in flight across all writers. The block
 * buffer's memory stays charged until its put settles, so queued blocks count against the
 * budget and writers feel back-pressure while the store is slow.
 */
export class Uploader {
  readonly stats: UploadStats = { blocks: 0, bytes: 0, errors: 0 };
  private readonly slots: Semaphore;

  constructor(
    private readonly store: ObjectStore,
    private readonly budget: MemoryBudget,
    maxInFlightUploads: number,
    private readonly sealer: BlockSealer,
    private readonly keep: ((key: string, data: Buffer, chargedBytes: number) => void) | null = null,
    private readonly pool: BlockBufferPool | null = null,
  ) {
    this.slots = new Semaphore(maxInFlightUploads);
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  get queued(): number {
    return this.slots.queued;
  }

  /**
   * Deletes, in the background, the blocks of slices that will never be committed (their flush
   * failed, or the writer was aborted). Without it a write that failed on a full disk left the
   * blocks it did store behind: nothing refers to them, nothing deleted them, and the space they
   * took was what the user had to free. A failed delete only leaves the garbage there was before.
   */
  discard(
    blocks: ReadonlyArray<{ sliceId: Promise<SliceId>; blockIndex: number; blockLengthBytes: number }>,
  ): void {
    if (blocks.length === 0) return;
    void (async () => {
      for (const { sliceId, blockIndex, blockLengthBytes } of blocks) {
        // A slice whose id never came has no objects.
        const id = await sliceId.catch(() => null);
        if (id === null) continue;
        await this.store
          .delete(blockKey({ sliceId: id, blockIndex, blockLengthBytes }))
          .catch(() => undefined);
      }
    })();
  }

  /** Whether uploads will free memory soon without anyone else's help. */
  get busy(): boolean {
    return this.slots.inUse > 0 || this.slots.queued > 0;
  }

  /**
   * Seals `buffer[0, dataLength)` as block `blockIndex` of the slice whose id `sliceId` resolves
   * to, and puts it. On success a full-size block buffer goes back to the pool for the next
   * block (what was just written through a mount is in the kernel's page cache already), or,
   * when the pool is full or the store cannot promise it is done with the memory, to `keep`
   * (the memory cache) with its charge, so reading it back costs no fetch; on failure the
   * charge is released.
   */
  async upload(
    sliceId: Promise<SliceId>,
    blockIndex: number,
    buffer: Buffer,
    dataLength: number,
    chargedBytes: number,
  ): Promise<void> {
    let key: string;
    // Sealing may move the block's memory to another thread and back: from then on, only
    // `body` (same memory) is valid, never `buffer`.
    let body = buffer;
    let abandonedBefore: number | undefined;
    try {
      const block = { sliceId: await sliceId, blockIndex, blockLengthBytes: dataLength };
      key = blockKey(block);
      await this.slots.run(async () => {
        body = await this.sealer.seal(buffer, block);
        abandonedBefore = this.store.abandonedPutAttempts;
        await this.store.put(key, body);
        this.stats.blocks++;
        this.stats.bytes += body.length;
      });
    } catch (error) {
      this.stats.errors++;
      this.budget.release(chargedBytes);
      throw error;
    }
    if (
      this.pool !== null &&
      abandonedBefore !== undefined &&
      // A put attempt given up on (by a retry wrapper) may still read this memory: not reusable.
      this.store.abandonedPutAttempts === abandonedBefore &&
      chargedBytes === this.pool.bufferBytes &&
      body.byteOffset === 0 &&
      body.length === this.pool.bufferBytes &&
      this.pool.offer(body)
    ) {
      return;
    }
    if (!this.keep) {
      this.budget.release(chargedBytes);
      return;
    }
    const exactBytes = bodyBytes(dataLength);
    if (chargedBytes > 2 * exactBytes) {
      // A small block in a big buffer: keep a right-sized copy, not the whole buffer.
      this.keep(key, Buffer.from(body.subarray(0, dataLength)), exactBytes);
      this.budget.release(chargedBytes - exactBytes);
    } else {
      this.keep(key, body.subarray(0, dataLength), chargedBytes);
    }
  }
}
