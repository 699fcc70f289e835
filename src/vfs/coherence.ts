import { Errno, ROOT_INO, isFsError, type Ino } from '../common/index.js';
import type { PageCache } from './page-cache.js';

/** What another client's change made stale here (as the metadata server pushes it). */
export interface Invalidation {
  inos: readonly Ino[];
  entries: readonly { parent: Ino; name: string }[];
  /** Some changes were missed (lost connection, failover): everything cached is suspect. */
  all: boolean;
}

/** The kernel cache as a FUSE session reaches it. */
export interface KernelCache {
  /** True when the kernel holds `ino` (an entry it accepted and has not forgotten, or the root). */
  holds(ino: Ino): boolean;
  /** Drops the attributes and cached pages of `ino`. */
  invalInode(ino: Ino): Promise<void>;
  /** Drops the cached name `name` in directory `parent`. */
  invalEntry(parent: Ino, name: string): Promise<void>;
}

/** What a FUSE session offers for the kernel cache (FuseSession). */
export interface NotifyingSession {
  /** Lookups of `ino` the kernel has not forgotten. */
  lookupCount(ino: Ino): number;
  notifyInvalInode(ino: Ino): Promise<void>;
  notifyInvalEntry(parent: Ino, name: string): Promise<void>;
}

/** Notifications in flight at once: each one takes a libuv pool thread until the kernel takes it. */
const MAX_IN_FLIGHT = 2;

/**
 * Cache coherence across mounts: turns the invalidations other clients' changes cause into
 * FUSE notifications, so this mount's kernel stops serving stale names, attributes and pages
 * well before its entry/attribute timeouts run out.
 *
 * Notifications queue here, deduplicated, with a small bound in flight: a burst of changes
 * elsewhere (an untar in a shared directory) must not occupy the libuv pool that the data path
 * also uses, and the same name changed a hundred times needs one notification.
 */
export class Coherence {
  private readonly queue = new Map<string, () => Promise<void>>();
  private inFlight = 0;
  /** Notifications sent (for tests and metrics). */
  sent = 0;
  /** Invalidations that said some changes were missed (lost connection, failover). */
  gaps = 0;

  constructor(
    private readonly kernel: KernelCache,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * The kernel cache of a FUSE session whose reads push into the page cache: the pushes of an
   * inode already handed to the kernel land before its pages are dropped, never after.
   */
  static kernelCacheOf(session: NotifyingSession, pageCache: PageCache): KernelCache {
    return {
      holds: (ino) => ino === ROOT_INO || session.lookupCount(ino) > 0,
      invalInode: (ino) => pageCache.settle(ino).then(() => session.notifyInvalInode(ino)),
      invalEntry: (parent, name) => session.notifyInvalEntry(parent, name),
    };
  }

  apply(invalidation: Invalidation): void {
    const { kernel } = this;
    // Names first: a lookup racing with the notifications then finds fresh attributes too.
    for (const { parent, name } of invalidation.entries) {
      if (kernel.holds(parent)) this.enqueue(`e${parent}/${name}`, () => kernel.invalEntry(parent, name));
    }
    for (const ino of invalidation.inos) {
      if (kernel.holds(ino)) this.enqueue(`i${ino}`, () => kernel.invalInode(ino));
    }
    if (invalidation.all) {
      // The kernel's inodes cannot be listed from here: the root's listing and attributes go at
      // once, everything else it caches within the entry/attribute timeouts (docs/rpc.md).
      this.gaps++;
      this.enqueue(`i${ROOT_INO}`, () => kernel.invalInode(ROOT_INO));
    }
  }

  private enqueue(key: string, send: () => Promise<void>): void {
    if (this.queue.has(key)) return;
    this.queue.set(key, send);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.size > 0) {
      const [key, send] = this.queue.entries().next().value as [string, () => Promise<void>];
      this.queue.delete(key);
      this.inFlight++;
      this.sent++;
      send()
        .catch((error: unknown) => {
          // ENOTCONN: the session ended (unmount); nothing is cached any more.
          if (!isFsError(error) || error.errno !== Errno.ENOTCONN)
            this.log(`cache invalidation ${key} failed: ${String(error)}`);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
