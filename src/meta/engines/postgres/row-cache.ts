import type { DentryRow, InodeRow } from '../../engine.js';

/**
 * This server's memory of rows it recently read or wrote (inodes, directory entries, xattrs),
 * so that a write transaction can run its service logic without waiting for PostgreSQL and
 * send everything in one round trip (`PgTx`, cached reads). Nothing here is trusted: every
 * value a transaction takes from the cache is checked again, under the row's lock, in the
 * transaction's own batch (`SQL.expect*`), and a mismatch fails the attempt, which then runs
 * again reading PostgreSQL. Other servers' changes therefore cost a retry, never a wrong answer;
 * the change feed (when the server listens) drops their rows early to make such retries rare.
 *
 * Keys: `i<ino>` inodes, `d<parent>/<name>` entries, `x<ino>/<name>` xattrs. `null` = known absent.
 */
export type CachedValue = InodeRow | DentryRow | Buffer | null;

export const inodeKey = (ino: number): string => `i${ino}`;
export const dentryKey = (parent: number, name: string): string => `d${parent}/${name}`;
export const xattrKey = (ino: number, name: string): string => `x${ino}/${name}`;
/** The directory and name of a dentryKey. */
export function entryOfKey(key: string): [parent: number, name: string] {
  const slash = key.indexOf('/');
  return [Number(key.slice(1, slash)), key.slice(slash + 1)];
}

/** Bounds memory: ~200 bytes per inode row, so about 50 MiB at the limit with every kind. */
export const DEFAULT_CACHE_ENTRIES = 200_000;

export class RowCache {
  private readonly values = new Map<string, CachedValue>();
  /** Xattr keys per inode, so that dropping an inode drops its xattrs. */
  private readonly xattrsOf = new Map<number, Set<string>>();
  /**
   * Keys read or written by this server's write transactions in flight, with how many use
   * each. A second transaction on a busy key reads PostgreSQL under the row lock instead of
   * the cache: it then queues behind the first one's commit instead of failing its check.
   */
  private readonly busy = new Map<string, number>();
  /** Transactions waiting for a busy key to become free (whenFree), in arrival order. */
  private readonly waiters = new Map<string, Array<() => void>>();
  /**
   * Keys whose value a transaction published when it reached its commit (publish) and that it
   * has not settled yet: key -> that transaction. A later transaction may have published over it.
   */
  private readonly publishers = new Map<string, object>();
  /** Cached reads whose check failed at commit (another server, or a stale read): metrics, tests. */
  staleReads = 0;

  constructor(private readonly maxEntries = DEFAULT_CACHE_ENTRIES) {}

  get size(): number {
    return this.values.size;
  }

  /** The cached value; undefined = unknown (never seen, evicted or dropped). */
  get(key: string): CachedValue | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /**
   * Remembers `value` (the newest known), evicting the entries first cached longest ago beyond
   * the bound. A known key keeps its place: deleting and inserting it again to keep the order
   * by last use cost 3-4 µs per call on a cache of ~100,000 rows (Map.delete), ~7 calls per
   * create; an evicted row still in use is read again once.
   */
  set(key: string, value: CachedValue): void {
    this.values.set(key, value);
    if (key.charCodeAt(0) === 0x78 /* x */) {
      const ino = Number(key.slice(1, key.indexOf('/')));
      let keys = this.xattrsOf.get(ino);
      if (!keys) this.xattrsOf.set(ino, (keys = new Set()));
      keys.add(key);
    }
    if (this.values.size > this.maxEntries) {
      const oldest = this.values.keys().next().value;
      if (oldest !== undefined) this.drop(oldest);
    }
  }

  /** Remembers a value read from a snapshot, unless something newer is known already. */
  offer(key: string, value: CachedValue): void {
    if (!this.values.has(key) && !this.busy.has(key)) this.set(key, value);
  }

  drop(key: string): void {
    this.values.delete(key);
    const kind = key.charCodeAt(0);
    if (kind === 0x69 /* i */) this.dropXattrs(Number(key.slice(1)));
    else if (kind === 0x78 /* x */) this.xattrsOf.get(Number(key.slice(1, key.indexOf('/'))))?.delete(key);
  }

  /** Forgets an inode and everything cached about it (row and xattrs). */
  dropInode(ino: number): void {
    this.values.delete(inodeKey(ino));
    this.dropXattrs(ino);
  }

  private dropXattrs(ino: number): void {
    const keys = this.xattrsOf.get(ino);
    if (!keys) return;
    for (const key of keys) this.values.delete(key);
    this.xattrsOf.delete(ino);
  }

  clear(): void {
    this.values.clear();
    this.xattrsOf.clear();
  }

  /** True when a write transaction other than the caller (who holds it `own` times) uses `key`. */
  busyElsewhere(key: string, own: boolean): boolean {
    return (this.busy.get(key) ?? 0) > (own ? 1 : 0);
  }

  hold(key: string): void {
    this.busy.set(key, (this.busy.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const n = (this.busy.get(key) ?? 0) - 1;
    if (n > 0) {
      this.busy.set(key, n);
      return;
    }
    this.busy.delete(key);
    const waiting = this.waiters.get(key);
    if (waiting) {
      // All of them: the first to run takes the key again, the others find it busy and wait on.
      this.waiters.delete(key);
      for (const wake of waiting) wake();
    }
  }

  /**
   * Resolves once no transaction holds `key`. Only for a transaction that holds no key itself
   * (PgTxReads.getInode): a waiter holding nothing cannot be part of a cycle of waiters.
   */
  whenFree(key: string): Promise<void> {
    if (!this.busy.has(key)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.waiters.get(key);
      if (waiting) waiting.push(resolve);
      else this.waiters.set(key, [resolve]);
    });
  }

  /**
   * What a transaction read and wrote, remembered when it reaches its commit (before the commit
   * returns), so that the next transaction on the same rows decides from it and commits after
   * it, in the same group or the next, instead of reading PostgreSQL under the row lock and
   * committing alone. Its checks make that safe: if this transaction does not commit, they fail
   * and it runs again reading PostgreSQL. A null inode (deleted) is dropped instead.
   */
  publish(key: string, value: CachedValue, publisher: object): void {
    if (value === null && key.charCodeAt(0) === 0x69 /* i */) {
      this.dropInode(Number(key.slice(1)));
      this.publishers.delete(key);
      return;
    }
    this.set(key, value);
    this.publishers.set(key, publisher);
  }

  /** The transaction whose uncommitted value of `key` the cache holds, if any. */
  publisherOf(key: string): object | undefined {
    return this.publishers.get(key);
  }

  /**
   * The publisher of `key` ended: a committed value stays; a failed one is dropped, unless a
   * later transaction published over it (that one's own end decides).
   */
  settle(key: string, publisher: object, committed: boolean): void {
    const current = this.publishers.get(key);
    if (current !== undefined && current !== publisher) return;
    this.publishers.delete(key);
    if (!committed) this.drop(key);
  }
}
