/** Misses in a row beyond which the gap between spins stops growing: one idle moment in 64. */
const MAX_MISS_EXPONENT = 6;
/**
 * Above this share of sampled idle moments preceded by a preemption, the CPU counts as
 * contended. One caller on an idle machine: under 0.1%; four callers on 2 vCPUs: ~30%; the same
 * with two CPU-bound processes beside them: 40-67% (bench/RESULTS.md, FUSE layer, session 13).
 */
export const CONTENDED_SHARE = 0.25;
/** Weight of the newest sample in the running share (an exponential moving average). */
const SHARE_WEIGHT = 1 / 16;
/**
 * While the CPU reads as contended, only one idle moment in this many is sampled: a sample (a
 * `getrusage` and a `setImmediate`) cost ~3 µs per request where the caller shares the server's
 * CPU and every sample said "contended" (bench/RESULTS.md, FUSE layer, session 14).
 */
export const CONTENDED_SAMPLE_EVERY = 16;

/** Why an idle moment sleeps at once without being sampled. */
export type SkipReason = 'missed' | 'contended';

/**
 * When the /dev/fuse loop polls for the next request before sleeping (`spinReadable` in
 * native/fdpoll). Spinning pays while callers answer back at once (one process statting,
 * creating or unlinking in a loop): the request is taken without the thread sleeping and
 * being woken, which on an idle VM costs more than serving it. It wastes CPU when callers do
 * not come back that fast, and takes CPU from other threads when they want it.
 *
 * At an idle moment the loop asks `skip()`; unless it says why to sleep at once, it samples its
 * thread's involuntary context switches and asks `sampled(preempted)` whether to spin, then
 * reports the spin with `spun`. After a spin that missed, the next 2^misses - 1 idle moments
 * sleep at once (a hit resets that). While more than CONTENDED_SHARE of recent samples found the
 * thread preempted since the sample before, none spins, and only every CONTENDED_SAMPLE_EVERY-th
 * idle moment is sampled.
 *
 * A spin that was itself preempted counts as a miss, whatever it found: the scheduler took the
 * CPU from it for someone who wanted it, often the very caller it waited for (a caller on the
 * same CPU can only send its next request once the spin is preempted, so such a spin "finds"
 * the request and, counted as a hit, kept every idle moment spinning; session 14).
 */
export class PollSpinPolicy {
  private misses = 0;
  /** Idle moments left that sleep at once without a sample, and why. */
  private skips = 0;
  private skipReason: SkipReason = 'missed';
  /** Running share of samples preceded by a preemption. */
  private contended = 0;

  constructor(readonly spinUs: number) {}

  /** More than CONTENDED_SHARE of recent samples followed a preemption. */
  get contendedCpu(): boolean {
    return this.contended > CONTENDED_SHARE;
  }

  /** At an idle moment: why it sleeps at once, unsampled; undefined to sample it. */
  skip(): SkipReason | undefined {
    if (this.spinUs <= 0) return 'missed';
    if (this.skips === 0) return undefined;
    this.skips--;
    return this.skipReason;
  }

  /** A sample: `preempted` if the thread was preempted since the last one. Whether to spin. */
  sampled(preempted: boolean): boolean {
    this.noteSample(preempted);
    if (!this.contendedCpu) return true;
    this.skips = CONTENDED_SAMPLE_EVERY - 1;
    this.skipReason = 'contended';
    return false;
  }

  /** The spin found a request (`found`) or gave up; `preempted`: the thread was preempted during it. */
  spun(found: boolean, preempted = false): void {
    if (preempted) this.noteSample(true);
    else if (found) {
      this.misses = 0;
      return;
    }
    this.misses = Math.min(this.misses + 1, MAX_MISS_EXPONENT);
    this.skips = (1 << this.misses) - 1;
    this.skipReason = 'missed';
  }

  private noteSample(preempted: boolean): void {
    this.contended += ((preempted ? 1 : 0) - this.contended) * SHARE_WEIGHT;
  }
}
