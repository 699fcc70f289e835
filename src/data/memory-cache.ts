import type { MemoryBudget } from './budget.js';

interface Entry {
  data: Buffer;
  chargedBytes: number;
  /**
   * The whole buffer behind `data` while its memory may be reused for another block: only as
   * long as every view of it went out under a lease (CacheLease). A view handed out any other
   * way may be kept for any time, so the entry loses its body then and its memory is left to
   * the garbage collector.
   */
  body: Buffer | null;
  /** Leases holding views of `data` now: the body is not reused while any is held. */
  pins: number;
  /**
   * Cached in this turn of the event loop: the callers that waited for its fetch have not all
   * taken their lease (or their view) yet. They all resume before the next turn.
   */
  fresh: boolean;
}

/**
 * Views of cached blocks a reader holds, given back together once it is done with them (a READ
 * reply written): until then the blocks' memory is not reused for other blocks. Giving back
 * twice, or a lease never given back, is harmless: the latter only keeps its blocks' memory
 * from being reused.
 */
export class CacheLease {
  private readonly held: Array<{ pins: number }> = [];

  /** MemoryBlockCache's: pins `entry` until release. */
  hold(entry: { pins: number }): void {
    entry.pins++;
    this.held.push(entry);
  }

  release(): void {
    for (const entry of this.held) entry.pins--;
    this.held.length = 0;
  }
}

/**
 * An LRU of verified block data, in the memory budget. It never refuses memory to writers:
 * the budget calls `reclaim` to evict the least recently used blocks when anyone needs room.
 *
 * A block fetched into a buffer of the standard size may give that buffer to the next fetch
 * when it is the least recently used entry and the budget is full (takeOldestBody): a fresh
 * 4 MiB buffer per block costs page faults, and V8 collects garbage every few dozen megabytes
 * of new buffers (bench/RESULTS.md, `## Mounted volume`, session 20). That is safe only while
 * nothing else still reads the buffer, hence leases.
 */
export class MemoryBlockCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  /** Buffers given to a fetch through takeOldestBody (stats, tests). */
  reusedBodies = 0;
  /** Entries cached in this turn of the event loop, fresh until the next (see Entry.fresh). */
  private freshEntries: Entry[] = [];

  constructor(private readonly budget: MemoryBudget) {
    budget.addReclaimer((bytes) => this.evict(bytes));
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get blocks(): number {
    return this.entries.size;
  }

  /** The entry's data, counted as a use; the caller may keep the view for any time. */
  get(key: string): Buffer | undefined {
    const entry = this.use(key);
    if (!entry) return undefined;
    entry.body = null;
    return entry.data;
  }

  /** The entry's data, counted as a use, held by `lease` until it is released. */
  getLeased(key: string, lease: CacheLease): Buffer | undefined {
    const entry = this.use(key);
    if (!entry) return undefined;
    lease.hold(entry);
    return entry.data;
  }

  private use(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-inserting moves the key to the young end of the Map's order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  /**
   * The entry's data without counting a hit or making it younger (a look that is not a use);
   * the caller may keep the view for any time.
   */
  peek(key: string): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    entry.body = null;
    return entry.data;
  }

  /** As peek, but the view is held by `lease` until it is released (the body stays reusable). */
  peekLeased(key: string, lease: CacheLease): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    lease.hold(entry);
    return entry.data;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Takes ownership of `chargedBytes` already acquired from the budget. With `body` (the whole
   * buffer `data` is a view of, which nothing else holds), the memory may later go to another
   * block through takeOldestBody, once the callers waiting for it had their turn.
   */
  insert(key: string, data: Buffer, chargedBytes: number, body: Buffer | null = null): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.chargedBytes;
      this.budget.release(old.chargedBytes);
    }
    const entry: Entry = { data, chargedBytes, body, pins: 0, fresh: body !== null };
    if (entry.fresh) this.markFresh(entry);
    this.entries.set(key, entry);
    this.bytes += chargedBytes;
    // The bytes are reclaimable now: someone waiting for memory may proceed.
    this.budget.notify();
  }

  private markFresh(entry: Entry): void {
    if (this.freshEntries.length === 0) {
      setImmediate(() => {
        for (const fresh of this.freshEntries) fresh.fresh = false;
        this.freshEntries = [];
      });
    }
    this.freshEntries.push(entry);
  }

  /**
   * Evicts the least recently used entry and hands its buffer and its charge to the caller, if
   * that entry's buffer is reusable (every view of it went out under a lease, all given back;
   * not cached in this turn of the event loop) and exactly `bodyBytes` long; else null, and
   * nothing changes. Only the oldest entry is considered, so the LRU order is kept.
   */
  takeOldestBody(bodyBytes: number): { body: Buffer; chargedBytes: number } | null {
    const oldest = this.entries.entries().next();
    if (oldest.done === true) return null;
    const [key, entry] = oldest.value;
    const body = entry.body;
    if (body === null || entry.pins > 0 || entry.fresh || body.length !== bodyBytes) return null;
    this.entries.delete(key);
    this.bytes -= entry.chargedBytes;
    this.reusedBodies++;
    return { body, chargedBytes: entry.chargedBytes };
  }

  /** Drops one entry (e.g. a trailer that failed verification), giving its memory back. */
  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.chargedBytes;
    this.budget.release(entry.chargedBytes);
  }

  /** Evicts oldest entries until `bytes` are freed or the cache is empty; returns bytes freed. */
  private evict(bytes: number): number {
    let freed = 0;
    for (const [key, entry] of this.entries) {
      if (freed >= bytes) break;
      this.entries.delete(key);
      this.bytes -= entry.chargedBytes;
      freed += entry.chargedBytes;
    }
    return freed;
  }

  clear(): void {
    const freed = this.evict(Number.POSITIVE_INFINITY);
    if (freed > 0) this.budget.release(freed);
  }
}
