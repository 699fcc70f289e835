/**
 * What the data path may ask of an object store. Objects are immutable once written:
 * StrataFS never overwrites a key with different content, so no cache ever needs invalidation.
 */
export interface ObjectStore {
  /** A human-readable description without secrets, e.g. "file:///data/objects" or "s3://bucket/prefix". */
  readonly description: string;
  /** Stores `data` under `key`; resolves only once the object is durable in the store. */
  put(key: string, data: Buffer): Promise<void>;
  /**
   * How many attempts this store (or a wrapper inside it) gave up waiting for while they may
   * still use caller memory (a put's `data`, a get's `into`); it only grows. A caller may reuse
   * the memory it gave put or get once the call settled only if this count did not change
   * meanwhile. Undefined: the store cannot say (e.g. a socket may still send from it), so that
   * memory must never be reused.
   */
  readonly abandonedAttempts?: number;
  /**
   * Reads `length` bytes at `offset` (the whole object when both are omitted).
   * Fails with ObjectNotFoundError when the key does not exist. With `into`, a store may read
   * the bytes into it (from its start) and return a view of it, which saves a fresh buffer per
   * read; it may also ignore it and return memory of its own.
   */
  get(key: string, offset?: number, length?: number, into?: Buffer): Promise<Buffer>;
  /** Size and metadata of an object, or null when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Deletes an object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Objects whose key starts with `prefix`, in key order, after `startAfter` when given. */
  list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo>;
  /** Releases connections and file handles. */
  close(): Promise<void>;
}

export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  /** Last modification time, milliseconds since the epoch. */
  modifiedMs: number;
}

export class ObjectNotFoundError extends Error {
  readonly key: string;
  constructor(key: string, where: string) {
    super(`object "${key}" not found in ${where}`);
    this.name = 'ObjectNotFoundError';
    this.key = key;
  }
}

/**
 * An error the store reported that is worth retrying (5xx, throttling, timeouts, resets).
 * Backends throw it; the retry wrapper retries it with backoff.
 */
export class TransientStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientStoreError';
  }
}
