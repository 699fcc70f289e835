import { fsError } from '../../common/index.js';
import { ObjectNotFoundError, TransientStoreError, type ObjectInfo, type ObjectStore } from '../store.js';

export interface RetryOptions {
  /** Attempts per operation, the first included. Default 8. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt with full jitter. Default 50 ms. */
  baseDelayMs?: number;
  /** Cap of one backoff. Default 5 s. */
  maxDelayMs?: number;
  /** An operation gives up once this much time has passed since its first attempt. Default 60 s. */
  maxElapsedMs?: number;
  /**
   * One attempt that has not settled after this long counts as a transient failure and is
   * retried (a stalled connection must not block the file system forever). The stalled request
   * is abandoned, not cancelled; that is safe because objects are immutable. Default 60 s; 0 = none.
   */
  attemptTimeoutMs?: number;
  /** Decides what is worth retrying; default: TransientStoreError and network resets/timeouts. */
  isRetryable?: (error: unknown) => boolean;
  /** Injectable for tests: a number in [0, 1). */
  random?: () => number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTCONN']);

export function isTransient(error: unknown): boolean {
  if (error instanceof TransientStoreError) return true;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/** Counts of what the retry wrapper did, for stats and tests. */
export interface RetryStats {
  retries: number;
  gaveUp: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Retries transient failures with jittered exponential backoff ("full jitter": a random delay
 * in [0, min(cap, base * 2^n)]), so many clients hitting a throttled store spread out instead of
 * retrying in lockstep. After the attempt or time budget it fails with EIO naming the operation,
 * the store, the attempts and the last cause. ObjectNotFoundError and other permanent errors
 * pass through at once.
 */
export class RetryingObjectStore implements ObjectStore {
  readonly description: string;
  readonly stats: RetryStats = { retries: 0, gaveUp: 0 };
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxElapsedMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly isRetryable: (error: unknown) => boolean;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly inner: ObjectStore,
    options: RetryOptions = {},
  ) {
    this.description = inner.description;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 8);
    this.baseDelayMs = options.baseDelayMs ?? 50;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.maxElapsedMs = options.maxElapsedMs ?? 60_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 60_000;
    this.isRetryable = options.isRetryable ?? isTransient;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
  }

  private async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    const startMs = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withTimeout(what, operation);
      } catch (error) {
        if (error instanceof ObjectNotFoundError || !this.isRetryable(error)) throw error;
        const elapsedMs = Date.now() - startMs;
        if (attempt >= this.maxAttempts || elapsedMs >= this.maxElapsedMs) {
          this.stats.gaveUp++;
          const cause = error instanceof Error ? error.message : String(error);
          throw fsError.EIO(
            `${what} on ${this.description} failed after ${attempt} attempts in ${elapsedMs} ms ` +
              `(last error: ${cause}); check that the object store is reachable and healthy`,
            error,
          );
        }
        this.stats.retries++;
        const capMs = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        await this.sleep(Math.floor(this.random() * capMs));
      }
    }
  }

  private withTimeout<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.attemptTimeoutMs <= 0) return operation();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TransientStoreError(`${what} got no answer within ${this.attemptTimeoutMs} ms`)),
        this.attemptTimeoutMs,
      );
      operation().then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  put(key: string, data: Buffer): Promise<void> {
    return this.run(`put "${key}"`, () => this.inner.put(key, data));
  }

  get(key: string, offset?: number, length?: number): Promise<Buffer> {
    return this.run(`get "${key}"`, () => this.inner.get(key, offset, length));
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.run(`head "${key}"`, () => this.inner.head(key));
  }

  delete(key: string): Promise<void> {
    return this.run(`delete "${key}"`, () => this.inner.delete(key));
  }

  /** Retries a failed page by resuming after the last key already delivered. */
  async *list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    let last = startAfter;
    let attempt = 0;
    const startMs = Date.now();
    for (;;) {
      try {
        for await (const info of this.inner.list(prefix, last)) {
          last = info.key;
          attempt = 0;
          yield info;
        }
        return;
      } catch (error) {
        attempt++;
        if (!this.isRetryable(error)) throw error;
        const elapsedMs = Date.now() - startMs;
        if (attempt >= this.maxAttempts || elapsedMs >= this.maxElapsedMs) {
          this.stats.gaveUp++;
          throw fsError.EIO(
            `list "${prefix}" on ${this.description} failed after ${attempt} attempts: ${String(error)}`,
            error,
          );
        }
        this.stats.retries++;
        const capMs = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        await this.sleep(Math.floor(this.random() * capMs));
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export function withRetry(store: ObjectStore, options: RetryOptions = {}): RetryingObjectStore {
  return new RetryingObjectStore(store, options);
}
