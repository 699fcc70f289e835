/**
 * One memory budget per mount, shared by write buffers, the block cache and readahead.
 * Writers and demand reads `acquire` (waiting when it is full: back-pressure), readahead only
 * `tryAcquire` (it is optional work), and the cache is a reclaimer that gives memory back on
 * demand. `peakBytes` is the instrument tests use to prove the bound holds.
 */
export class MemoryBudget {
  private used = 0;
  private peak = 0;
  private readonly waiters: Array<{ bytes: number; resolve: () => void }> = [];
  private readonly reclaimers: Array<(bytes: number) => number> = [];
  private pressureHandler: (() => void) | null = null;

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** What may still be acquired without reclaiming anything. */
  get freeBytes(): number {
    return this.limitBytes - this.used;
  }

  get peakBytes(): number {
    return this.peak;
  }

  get waitingAcquires(): number {
    return this.waiters.length;
  }

  /**
   * A reclaimer frees at least `bytes` if it can, synchronously, and returns how many it freed;
   * the budget accounts for them (the reclaimer must not call release for them).
   */
  addReclaimer(reclaim: (bytes: number) => number): void {
    this.reclaimers.push(reclaim);
  }

  /** Called when an acquire must wait and reclaiming was not enough (e.g. seal partial writes). */
  setPressureHandler(handler: () => void): void {
    this.pressureHandler = handler;
  }

  private fits(bytes: number): boolean {
    if (this.used + bytes <= this.limitBytes) return true;
    for (const reclaim of this.reclaimers) {
      this.used -= reclaim(this.used + bytes - this.limitBytes);
      if (this.used + bytes <= this.limitBytes) return true;
    }
    return false;
  }

  private grant(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
  }

  /** Takes `bytes` if they fit now (after reclaiming); never waits. */
  tryAcquire(bytes: number): boolean {
    if (this.waiters.length > 0 || !this.fits(bytes)) return false;
    this.grant(bytes);
    return true;
  }

  /** Takes `bytes`, waiting in FIFO order until they fit. Requests above the limit are clamped. */
  acquire(bytes: number): Promise<void> {
    const wanted = Math.min(bytes, this.limitBytes);
    if (this.waiters.length === 0 && this.fits(wanted)) {
      this.grant(wanted);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiters.push({ bytes: wanted, resolve });
      this.pressureHandler?.();
    });
  }

  /** The bytes a caller of acquire(bytes) must later release (acquire clamps to the limit). */
  charged(bytes: number): number {
    return Math.min(bytes, this.limitBytes);
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`memory budget released ${-this.used} bytes more than acquired`);
    this.wake();
  }

  /** Re-checks waiters after memory became reclaimable (e.g. a fetched block entered the cache). */
  notify(): void {
    if (this.waiters.length > 0) this.wake();
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0].bytes)) {
      const waiter = this.waiters.shift()!;
      this.grant(waiter.bytes);
      waiter.resolve();
    }
    if (this.waiters.length > 0) this.pressureHandler?.();
  }
}
