import { fsError } from '../../common/index.js';
import { ObjectNotFoundError, TransientStoreError, type ObjectInfo, type ObjectStore } from '../store.js';

/**
 * The default budget outlasts a store restart or a short network outage (20 s and more): an
 * operation keeps retrying for up to a minute, at most 2 s apart so it notices the store is
 * back quickly, and only then fails with EIO. Attempts are not capped by count by default;
 * time is what the application feels.
 */
export const RETRY_DEFAULTS = {
  maxAttempts: Number.POSITIVE_INFINITY,
  baseDelayMs: 50,
  maxDelayMs: 2_000,
  maxElapsedMs: 60_000,
  attemptTimeoutMs: 60_000,
} as const;

export interface RetryOptions {
  /** Attempts per operation, the first included. Default: no limit but time. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt with full jitter. Default 50 ms. */
  baseDelayMs?: number;
  /** Cap of one backoff. Default 2 s. */
  maxDelayMs?: number;
  /**
   * An operation gives up (EIO) once this much time has passed since its first attempt and
   * its latest attempt failed too. Default 60 s (the `store-retry` setting of a mount).
   */
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
  /** Injectable for tests: the clock that measures maxElapsedMs. */
  now?: () => number;
  /**
   * Receives one line when the store starts failing (and retries begin) and one when it answers
   * again, however many operations are waiting: an outage is one log line, not thousands.
   */
  log?: (message: string) => void;
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
  private abandoned = 0;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxElapsedMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly isRetryable: (error: unknown) => boolean;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly log: ((message: string) => void) | null;
  /** Since when the store has been failing (retries in progress), null while it is healthy. */
  private failingSinceMs: number | null = null;

  constructor(
    readonly inner: ObjectStore,
    options: RetryOptions = {},
  ) {
    this.description = inner.description;
    const d = RETRY_DEFAULTS;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? d.maxAttempts);
    this.baseDelayMs = options.baseDelayMs ?? d.baseDelayMs;
    this.maxDelayMs = options.maxDelayMs ?? d.maxDelayMs;
    this.maxElapsedMs = options.maxElapsedMs ?? d.maxElapsedMs;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? d.attemptTimeoutMs;
    this.isRetryable = options.isRetryable ?? isTransient;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? null;
  }

  private noteFailure(what: string, error: unknown): void {
    if (this.failingSinceMs !== null) return;
    this.failingSinceMs = this.now();
    const cause = error instanceof Error ? error.message : String(error);
    this.log?.(
      `object store ${this.description} is failing (${what}: ${cause}); retrying each operation ` +
        `for up to ${Math.round(this.maxElapsedMs / 1000)} s before reporting EIO`,
    );
  }

  private noteSuccess(): void {
    if (this.failingSinceMs === null) return;
    const downMs = this.now() - this.failingSinceMs;
    this.failingSinceMs = null;
    this.log?.(`object store ${this.description} answers again after ${downMs} ms`);
  }

  private async run<T>(what: string, operation: () => Promise<T>, onAbandon?: () => void): Promise<T> {
    const startMs = this.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.withTimeout(what, operation, onAbandon);
        this.noteSuccess();
        return result;
      } catch (error) {
        if (error instanceof ObjectNotFoundError || !this.isRetryable(error)) throw error;
        const elapsedMs = this.now() - startMs;
        if (attempt >= this.maxAttempts || elapsedMs >= this.maxElapsedMs) {
          this.stats.gaveUp++;
          const cause = error instanceof Error ? error.message : String(error);
          throw fsError.EIO(
            `${what} on ${this.description} failed after ${attempt} attempts in ${elapsedMs} ms ` +
              `(last error: ${cause}); check that the object store is reachable and healthy`,
            error,
          );
        }
        this.noteFailure(what, error);
        this.stats.retries++;
        const capMs = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        await this.sleep(Math.floor(this.random() * capMs));
      }
    }
  }

  private withTimeout<T>(what: string, operation: () => Promise<T>, onAbandon?: () => void): Promise<T> {
    if (this.attemptTimeoutMs <= 0) return operation();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The attempt goes on without us (nothing cancels it): it may still use its arguments.
        onAbandon?.();
        reject(new TransientStoreError(`${what} got no answer within ${this.attemptTimeoutMs} ms`));
      }, this.attemptTimeoutMs);
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

  /**
   * Attempts given up on here that may still use caller memory (puts, gets with `into`), plus
   * the inner store's (ObjectStore.abandonedAttempts).
   */
  get abandonedAttempts(): number | undefined {
    const inner = this.inner.abandonedAttempts;
    return inner === undefined ? undefined : inner + this.abandoned;
  }

  put(key: string, data: Buffer): Promise<void> {
    return this.run(
      `put "${key}"`,
      () => this.inner.put(key, data),
      () => this.abandoned++,
    );
  }

  get(key: string, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    return this.run(
      `get "${key}"`,
      () => this.inner.get(key, offset, length, into),
      into === undefined ? undefined : () => this.abandoned++,
    );
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
    const startMs = this.now();
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
        const elapsedMs = this.now() - startMs;
        if (attempt >= this.maxAttempts || elapsedMs >= this.maxElapsedMs) {
          this.stats.gaveUp++;
          throw fsError.EIO(
            `list "${prefix}" on ${this.description} failed after ${attempt} attempts: ${String(error)}`,
            error,
          );
        }
        this.noteFailure(`list "${prefix}"`, error);
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
