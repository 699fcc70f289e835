import type { SliceId } from '../common/index.js';
import type { ObjectStore } from '../object/index.js';
import { bodyBytes } from './block-format.js';
import { ownsItsMemory } from './block-memory.js';
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
 * The slice floor a mount reports when it holds no slice id: the metadata service records the
 * allocator's next id instead (src/meta/reclaim-floor.ts). Never a real slice id (0 is a hole).
 */
export const NOTHING_HELD = 0 as SliceId;

/**
 * Hands out slice ids from the metadata allocator in batches, so a slice costs no round trip,
 * and reports this mount's slice floor: the lowest id it may still commit. An id is held from
 * take() until release() (its commit succeeded, or its data was given up). The floor is the
 * least held id; with none held, the pool gives up the rest of its batch and reports
 * NOTHING_HELD, and asks for a new batch only once that report is answered: the service
 * records its allocator's next id, and every batch handed out after is above it.
 */
export class SliceIdPool {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | null = null;
  /** A NOTHING_HELD report on its way: no new batch before it is answered. */
  private reporting: Promise<void> | null = null;
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
    this.refill ??= (async () => {
      try {
        while (this.reporting !== null) await this.reporting;
        const first = await this.allocate(this.batch);
        this.next = first as number;
        this.end = this.next + this.batch;
      } finally {
        this.refill = null;
      }
    })();
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

  /** Sends this mount's slice floor with `send` (the heartbeat); see the class comment. */
  async reportFloor(send: (floor: SliceId) => Promise<void>): Promise<void> {
    // A batch on its way may come from below what the service would record for NOTHING_HELD.
    while (this.refill !== null) await this.refill.catch(() => undefined);
    let lowest = Number.POSITIVE_INFINITY;
    for (const id of this.held) if (id < lowest) lowest = id;
    if (lowest !== Number.POSITIVE_INFINITY) return send(lowest as SliceId);
    this.next = this.end;
    const report = send(NOTHING_HELD);
    // If the report fails, the service may still record it late (after a batch taken meanwhile):
    // a commit of that batch is then refused with EIO, never a hole (reclaim-floor.ts).
    const settled = report.then(
      () => undefined,
      () => undefined,
    );
    this.reporting = settled;
    void settled.then(() => {
      if (this.reporting === settled) this.reporting = null;
    });
    return report;
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
        abandonedBefore = this.store.abandonedAttempts;
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
      this.store.abandonedAttempts === abandonedBefore &&
      chargedBytes === this.pool.bufferBytes &&
      // A whole block buffer (allocBlockBuffer's start on a 4 KiB boundary inside their memory,
      // rarely at offset 0), not a view into memory something else uses.
      ownsItsMemory(body) &&
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
