import type { MemoryBudget } from './budget.js';

interface Entry {
  data: Buffer;
  chargedBytes: number;
}

/**
 * An LRU of verified block data, in the memory budget. It never refuses memory to writers:
 * the budget calls `reclaim` to evict the least recently used blocks when anyone needs room.
 */
export class MemoryBlockCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly budget: MemoryBudget) {
    budget.addReclaimer((bytes) => this.evict(bytes));
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get blocks(): number {
    return this.entries.size;
  }

  get(key: string): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-inserting moves the key to the young end of the Map's order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.data;
  }

  /** The entry's data without counting a hit or making it younger (a look that is not a use). */
  peek(key: string): Buffer | undefined {
    return this.entries.get(key)?.data;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Takes ownership of `chargedBytes` already acquired from the budget. */
  insert(key: string, data: Buffer, chargedBytes: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.chargedBytes;
      this.budget.release(old.chargedBytes);
    }
    this.entries.set(key, { data, chargedBytes });
    this.bytes += chargedBytes;
    // The bytes are reclaimable now: someone waiting for memory may proceed.
    this.budget.notify();
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
