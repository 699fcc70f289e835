import { TransientStoreError, type ObjectInfo, type ObjectStore } from '../store.js';

export interface FaultOptions {
  /** Seed of the PRNG that decides every fault: the same seed and call order give the same faults. */
  seed?: number;
  /** Added to every request (emulates a remote store's round trip). */
  latencyMs?: number;
  /** Shared bandwidth of the emulated link, both directions together; unlimited when omitted. */
  bandwidthBytesPerSec?: number;
  /** Probability that a request fails with TransientStoreError before reaching the store. */
  errorRate?: number;
  /** Probability that a get returns a body cut short (a connection dropped mid-transfer). */
  truncateRate?: number;
  /** Probability that a get returns a body with one bit flipped. */
  corruptRate?: number;
  /** Probability that a request never answers (a stalled connection); the retry timeout must catch it. */
  hangRate?: number;
  /** Injectable for tests: how a delay is waited out. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests: the clock the bandwidth limit runs on. */
  nowMs?: () => number;
  /** Operations faults apply to; default all. */
  operations?: ReadonlyArray<'put' | 'get' | 'head' | 'delete' | 'list'>;
}

export interface FaultStats {
  requests: number;
  errors: number;
  hangs: number;
  truncated: number;
  corrupted: number;
}

/** mulberry32: tiny, fast, good enough to decide faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A store that behaves like a slow, unreliable remote one: latency, a shared bandwidth limit,
 * transient errors, truncated and corrupted bodies, all decided by a seeded PRNG. Tests use it
 * to prove the retry and checksum paths; benchmarks use it to emulate a WAN. `failNext` scripts
 * exact failures for tests that need them.
 */
export class FaultyObjectStore implements ObjectStore {
  readonly description: string;
  readonly stats: FaultStats = { requests: 0, errors: 0, hangs: 0, truncated: 0, corrupted: 0 };
  private readonly random: () => number;
  private linkFreeAtMs = 0;
  private scriptedFailures = 0;
  private scriptedHangs = 0;

  constructor(
    readonly inner: ObjectStore,
    private readonly options: FaultOptions = {},
  ) {
    this.description = `${inner.description} (fault injection)`;
    this.random = seededRandom(options.seed ?? 1);
  }

  /** Injected hangs and delays only wait: they never use `data` or `into` after the call settles. */
  get abandonedAttempts(): number | undefined {
    return this.inner.abandonedAttempts;
  }

  /** The next `count` requests never answer, whatever the rates say. */
  hangNext(count: number): void {
    this.scriptedHangs += count;
  }

  /** The next `count` requests fail with TransientStoreError, whatever the rates say. */
  failNext(count: number): void {
    this.scriptedFailures += count;
  }

  private applies(operation: string): boolean {
    const ops = this.options.operations;
    return ops === undefined || (ops as readonly string[]).includes(operation);
  }

  /** Waits for latency plus this transfer's turn on the shared link. */
  private async delay(bytes: number): Promise<void> {
    let waitMs = this.options.latencyMs ?? 0;
    const bandwidth = this.options.bandwidthBytesPerSec;
    if (bandwidth !== undefined && bytes > 0) {
      const nowMs = (this.options.nowMs ?? Date.now)();
      const startMs = Math.max(nowMs, this.linkFreeAtMs);
      this.linkFreeAtMs = startMs + (bytes / bandwidth) * 1000;
      waitMs += this.linkFreeAtMs - nowMs;
    }
    if (waitMs > 0) await (this.options.sleep ?? sleep)(waitMs);
  }

  private async before(operation: string, key: string): Promise<void> {
    this.stats.requests++;
    if (this.scriptedFailures > 0 && this.applies(operation)) {
      this.scriptedFailures--;
      this.stats.errors++;
      await this.delay(0);
      throw new TransientStoreError(`injected failure of ${operation} "${key}" (scripted)`);
    }
    // Always draw, so the fault sequence depends only on the seed and the call order.
    const draw = this.random();
    const hangDraw = this.random();
    if (this.applies(operation) && (this.scriptedHangs > 0 || hangDraw < (this.options.hangRate ?? 0))) {
      if (this.scriptedHangs > 0) this.scriptedHangs--;
      this.stats.hangs++;
      await new Promise<never>(() => undefined);
    }
    if (this.applies(operation) && draw < (this.options.errorRate ?? 0)) {
      this.stats.errors++;
      await this.delay(0);
      throw new TransientStoreError(`injected failure of ${operation} "${key}"`);
    }
  }

  async put(key: string, data: Buffer): Promise<void> {
    await this.before('put', key);
    await this.delay(data.length);
    await this.inner.put(key, data);
  }

  async get(key: string, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    await this.before('get', key);
    const body = await this.inner.get(key, offset, length, into);
    await this.delay(body.length);
    if (!this.applies('get')) return body;
    const draw = this.random();
    const truncateRate = this.options.truncateRate ?? 0;
    if (draw < truncateRate && body.length > 0) {
      this.stats.truncated++;
      return body.subarray(0, Math.floor(this.random() * body.length));
    }
    if (draw < truncateRate + (this.options.corruptRate ?? 0) && body.length > 0) {
      this.stats.corrupted++;
      const copy = Buffer.from(body);
      const bit = Math.floor(this.random() * copy.length * 8);
      copy[bit >> 3] ^= 1 << (bit & 7);
      return copy;
    }
    return body;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    await this.before('head', key);
    await this.delay(0);
    return this.inner.head(key);
  }

  async delete(key: string): Promise<void> {
    await this.before('delete', key);
    await this.delay(0);
    await this.inner.delete(key);
  }

  async *list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    await this.before('list', prefix);
    await this.delay(0);
    yield* this.inner.list(prefix, startAfter);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export function withFaults(store: ObjectStore, options: FaultOptions = {}): FaultyObjectStore {
  return new FaultyObjectStore(store, options);
}
