import type { MemoryBudget } from './budget.js';

/**
 * Full-size block buffers whose upload finished, kept for the next block a writer fills. A
 * fresh 4 MiB buffer costs 1,024 first-touch page faults, and dropping one costs the garbage
 * collector a full mark-compact every few dozen (V8 collects when external memory grows): for a
 * streaming write that was more CPU than the copy into the buffer itself (bench/RESULTS.md,
 * `## Mounted volume`, session 6). Pooled buffers stay charged to the memory budget, and the
 * pool gives them up first when anyone else needs memory.
 */
export class BlockBufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers handed out again (stats, tests). */
  reused = 0;

  constructor(
    private readonly budget: MemoryBudget,
    /** Size of every pooled buffer (a full block plus its trailer). */
    readonly bufferBytes: number,
    private readonly maxBuffers: number,
  ) {
    budget.addReclaimer((bytes) => this.drop(bytes));
  }

  get buffers(): number {
    return this.free.length;
  }

  /**
   * Offers `buffer` (charged `bufferBytes` to the budget) for reuse; false if it does not fit
   * the pool, in which case the caller still owns it and its charge. Only memory nothing else
   * can still read may be offered: it will be overwritten.
   */
  offer(buffer: Buffer): boolean {
    if (buffer.length !== this.bufferBytes || this.free.length >= this.maxBuffers) return false;
    this.free.push(buffer);
    // The charge is reclaimable now: someone waiting for memory may proceed.
    this.budget.notify();
    return true;
  }

  /** A buffer of `bufferBytes`, with its charge passing to the caller; null if none is free. */
  take(): Buffer | null {
    const buffer = this.free.pop() ?? null;
    if (buffer !== null) this.reused++;
    return buffer;
  }

  /** Gives every pooled buffer and its charge back. */
  clear(): void {
    const freed = this.drop(Number.POSITIVE_INFINITY);
    if (freed > 0) this.budget.release(freed);
  }

  private drop(bytes: number): number {
    let freed = 0;
    while (freed < bytes && this.free.length > 0) {
      this.free.pop();
      freed += this.bufferBytes;
    }
    return freed;
  }
}
