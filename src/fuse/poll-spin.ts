/** Misses in a row beyond which the gap between spins stops growing: one idle moment in 64. */
const MAX_MISS_EXPONENT = 6;
/**
 * Above this share of idle moments preceded by a preemption, the CPU counts as contended. One
 * caller on an idle machine: under 0.1%; four callers on 2 vCPUs: ~30%; the same with two
 * CPU-bound processes beside them: 40-67% (bench/RESULTS.md, FUSE layer, session 13).
 */
export const CONTENDED_SHARE = 0.25;
/** Weight of the newest idle moment in the running share (an exponential moving average). */
const SHARE_WEIGHT = 1 / 16;

/**
 * When the /dev/fuse loop polls for the next request before sleeping (`spinReadable` in
 * native/fdpoll). Spinning pays while callers answer back at once (one process statting,
 * creating or unlinking in a loop): the request is taken without the thread sleeping and
 * being woken, which on an idle VM costs more than serving it. It wastes CPU when callers do
 * not come back that fast, and takes CPU from other threads when they want it. So: after a
 * spin that missed, the next 2^misses - 1 idle moments sleep at once (a hit resets that); and
 * while more than CONTENDED_SHARE of recent idle moments found this thread preempted since
 * the one before (its involuntary context switches rose), none spins.
 */
export class PollSpinPolicy {
  private misses = 0;
  private skips = 0;
  /** Running share of idle moments preceded by a preemption. */
  private contended = 0;

  constructor(readonly spinUs: number) {}

  /** More than CONTENDED_SHARE of recent idle moments followed a preemption. */
  get contendedCpu(): boolean {
    return this.contended > CONTENDED_SHARE;
  }

  /** Whether this idle moment spins; `preempted`: the thread was preempted since the last one. */
  idle(preempted: boolean): boolean {
    this.contended += ((preempted ? 1 : 0) - this.contended) * SHARE_WEIGHT;
    if (this.spinUs <= 0 || this.contendedCpu) return false;
    if (this.skips > 0) {
      this.skips--;
      return false;
    }
    return true;
  }

  /** The spin found a request (true) or gave up (false). */
  spun(found: boolean): void {
    if (found) {
      this.misses = 0;
      return;
    }
    this.misses = Math.min(this.misses + 1, MAX_MISS_EXPONENT);
    this.skips = (1 << this.misses) - 1;
  }
}
