/**
 * Upper bounds of the latency buckets, in seconds: 50 µs (a cached metadata read on the
 * serving thread) to 5 s (a stalled commit). Prometheus adds `+Inf` above the last.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

const BOUNDS_MS = Float64Array.from(LATENCY_BUCKETS_SECONDS, (seconds) => seconds * 1000);
/** Slots per series: one per bound plus the `+Inf` one. */
const SLOTS = BOUNDS_MS.length + 1;

/**
 * Latency histograms of a fixed set of series (one per method or opcode, by index), kept in
 * two flat typed arrays: observing is a bucket search and two increments, with no allocation
 * and no lookup by name, so hot paths (the RPC serving loop, the FUSE request loop) can afford
 * it. The metrics layer turns it into Prometheus histograms at scrape time.
 */
export class LatencyHistograms {
  /** Per series, the count of each bucket (not cumulative), `+Inf` last. */
  readonly bucketCounts: Float64Array;
  /** Per series, the sum of the observed durations in seconds. */
  readonly sumsSeconds: Float64Array;

  constructor(readonly seriesCount: number) {
    this.bucketCounts = new Float64Array(seriesCount * SLOTS);
    this.sumsSeconds = new Float64Array(seriesCount);
  }

  /** Records one duration of series `series` (0 <= series < seriesCount). */
  observe(series: number, durationMs: number): void {
    let bucket = 0;
    // Most durations fall in the first few buckets: a linear scan beats a binary search here.
    while (bucket < BOUNDS_MS.length && durationMs > BOUNDS_MS[bucket]) bucket++;
    this.bucketCounts[series * SLOTS + bucket]++;
    this.sumsSeconds[series] += durationMs / 1000;
  }

  /** Observations of a series so far. */
  count(series: number): number {
    let total = 0;
    const base = series * SLOTS;
    for (let i = 0; i < SLOTS; i++) total += this.bucketCounts[base + i];
    return total;
  }

  /** Cumulative counts of a series, one per LATENCY_BUCKETS_SECONDS bound then `+Inf`. */
  cumulativeCounts(series: number): number[] {
    const out = new Array<number>(SLOTS);
    let running = 0;
    const base = series * SLOTS;
    for (let i = 0; i < SLOTS; i++) {
      running += this.bucketCounts[base + i];
      out[i] = running;
    }
    return out;
  }

  /**
   * Adds another set's observations (same series count): how histograms kept on another thread
   * are merged into this one from a snapshot of their arrays.
   */
  add(bucketCounts: Float64Array, sumsSeconds: Float64Array): void {
    if (bucketCounts.length !== this.bucketCounts.length || sumsSeconds.length !== this.sumsSeconds.length) {
      throw new Error(
        `latency snapshot of ${sumsSeconds.length} series cannot be added to histograms of ${this.seriesCount}`,
      );
    }
    for (let i = 0; i < bucketCounts.length; i++) this.bucketCounts[i] += bucketCounts[i];
    for (let i = 0; i < sumsSeconds.length; i++) this.sumsSeconds[i] += sumsSeconds[i];
  }
}
