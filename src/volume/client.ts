import type { StrataConfig } from '../config/index.js';
import { createDataPath, type DataPath } from '../data/index.js';
import { mount, notificationSlots, releaseFreedMemory, type FuseSession } from '../fuse/index.js';
import type { MetaApi, VolumeSettings } from '../meta/api.js';
import type { CallCounts, GcTotals, MountStats, RpcServerCounts } from '../metrics/index.js';
import { openObjectStore, RetryingObjectStore, type ObjectStore } from '../object/index.js';
import { ROOT_INO } from '../common/index.js';
import {
  Coherence,
  PageCache,
  PastMeta,
  PushingVfs,
  type Invalidation,
  type PageCacheStats,
} from '../vfs/index.js';

/** A mounted volume as the CLI sees it. */
export interface MountedVolume {
  readonly mountpoint: string;
  readonly volume: VolumeSettings;
  /** The address other clients mount through, when this process also serves the metadata. */
  readonly metaAddress?: string;
  /** That server's RPC traffic, for --metrics. */
  readonly metaServerStats?: RpcServerCounts;
  /** Resolves when the FUSE session ends: after stop(), or when someone ran `umount`. */
  readonly ended: Promise<void>;
  /** READ requests that reached this mount and what was pushed into the kernel's page cache. */
  pageCacheStats(): PageCacheStats & { readRequests: number };
  /** What the mount has counted (FUSE requests, data path, store, page cache), for --metrics. */
  stats(): MountStats;
  /** What the background GC of this process has deleted, when this process runs one. */
  readonly gcTotals?: GcTotals;
  /** Flushes pending writes, unmounts, closes the session and everything below. Idempotent. */
  stop(): Promise<void>;
}

export interface ClientOptions {
  meta: MetaApi;
  mountpoint: string;
  config: StrataConfig;
  /** Overrides the volume's object store URL (e.g. credentials or an endpoint only this host uses). */
  storageUrl?: string;
  version: string;
  log: (message: string) => void;
  /** Runs last in stop(): closes the metadata client or the in-process service. */
  closeMeta: () => Promise<void>;
  /** Memory of this process outside the mount that its budget covers too (an engine beside it). */
  sharedMemoryBytes?: number;
  /** Subscribes to what other clients change (a metadata server's pushes), for cache coherence. */
  onInvalidation?: (listener: (invalidation: Invalidation) => void) => void;
  /** Mounts the volume as it was at this instant (µs since the epoch), read-only. */
  asOfUs?: number;
  /** The metadata client's calls timed by method (a remote mount), for --metrics. */
  metaCalls?: CallCounts;
}

/**
 * How often the mount looks at its resident size, and how far past the budget it may be. Every
 * 10 s let the volume benchmark's random reads peak at 675-701 MiB (budget 512 + 150 allowed)
 * between two looks; every second, 629 in the same run of rows. A look costs one read of
 * /proc/self/stat; a trim happens only past the bound.
 */
const TRIM_INTERVAL_MS = 1_000;
const TRIM_ABOVE_BUDGET_BYTES = 100 * 1024 * 1024;

/**
 * The client side of a mount, whatever serves the metadata: object store, data path, VFS
 * and FUSE session, stacked in that order and torn down in the reverse one.
 */
export async function mountClient(options: ClientOptions): Promise<MountedVolume> {
  const { config, log, asOfUs } = options;
  const meta = asOfUs === undefined ? options.meta : new PastMeta(options.meta, asOfUs);
  const undo: (() => Promise<void>)[] = [options.closeMeta];
  try {
    const volume = await meta.volume();
    // An instant outside the history window fails here, with the service's explanation.
    if (asOfUs !== undefined) await meta.getattr(ROOT_INO);
    const store: ObjectStore = await openObjectStore(options.storageUrl ?? volume.storageUrl, {
      retry: { maxElapsedMs: config.storeRetryMs, log },
    });
    undo.push(() => store.close());
    const data: DataPath = createDataPath({
      store,
      blockSizeBytes: volume.blockSizeBytes,
      chunkSizeBytes: volume.chunkSizeBytes,
      memoryBudgetBytes: config.memoryBytes,
      sharedBytes: options.sharedMemoryBytes,
      diskCacheDir: config.cacheDir === '' ? undefined : config.cacheDir,
      diskCacheBytes: config.cacheSizeBytes,
      maxInFlightUploads: config.uploadsInFlight,
      allocateSliceIds: (count) => meta.allocateSliceIds(count),
      log,
    });
    undo.push(() => data.close());
    // Reads push what they verified into the kernel's page cache; the session is known only
    // after the mount, and no read can come before it.
    const pushTo: { session?: FuseSession } = {};
    const pageCache = new PageCache(
      {
        store: (ino, offsetBytes, bytes) =>
          pushTo.session ? pushTo.session.notifyStore(ino, offsetBytes, bytes) : Promise.resolve(),
      },
      log,
      // All but one of the session's notification slots: an invalidation from another mount
      // never waits behind a full set of pushes.
      Math.max(1, notificationSlots() - 1),
    );
    const vfs = new PushingVfs(
      meta,
      data,
      {
        attrTimeoutMs: config.attrTimeoutMs,
        entryTimeoutMs: config.entryTimeoutMs,
        sharedWithOtherMounts: options.onInvalidation !== undefined,
        lockRetryMaxMs: config.lockRetryMaxMs,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        compactSlicesThreshold: config.compactSlicesThreshold,
        mountpoint: options.mountpoint,
        version: options.version,
        log,
      },
      pageCache,
    );
    await vfs.start();
    undo.push(() => vfs.stop());
    const session: FuseSession = await mount({
      mountpoint: options.mountpoint,
      fs: vfs,
      options: {
        fsName: asOfUs === undefined ? `strata:${volume.name}` : `strata:${volume.name}@${isoOf(asOfUs)}`,
        readOnly: asOfUs !== undefined,
        unmountOnSignals: false,
        ioUring: config.ioUring,
        pollSpinUs: config.fuseSpinUs,
        logger: { debug: () => undefined, warn: log, error: log },
      },
    });
    pushTo.session = session;
    // The budget bounds block buffers, not the heap memory glibc keeps after they are freed
    // (docs/data-path.md): give that back whenever the process holds clearly more than the
    // budget accounts for. A trim that returns 200 MiB takes ~15 ms of this thread.
    const trimTimer = setInterval(() => {
      // rss() reads /proc/self/stat: with no descriptor left it throws EMFILE, and a throw from a
      // timer ends the process, leaving a dead mount. Skip this round instead.
      let rssBytes: number;
      try {
        rssBytes = process.memoryUsage.rss();
      } catch {
        return;
      }
      if (rssBytes > config.memoryBytes + TRIM_ABOVE_BUDGET_BYTES) releaseFreedMemory();
    }, TRIM_INTERVAL_MS);
    trimTimer.unref();
    undo.push(() => Promise.resolve(clearInterval(trimTimer)));
    // Pushes of the old content still on their way land before the kernel drops its pages.
    const kernel = Coherence.kernelCacheOf(session, pageCache);
    vfs.onStaleInode = (ino) => {
      pageCache.changed(ino);
      return kernel.invalInode(ino).catch(() => undefined);
    };
    // The past does not change: other mounts' changes are nothing to a past view.
    if (options.onInvalidation && asOfUs === undefined) {
      const coherence = new Coherence(kernel, log);
      options.onInvalidation((invalidation) => vfs.otherMountsChanged(invalidation, coherence));
    }
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        if (!session.isClosed) await session.unmount();
        await unwind(undo);
      })();
      return stopping;
    };
    const pageCacheStats = (): PageCacheStats & { readRequests: number } => ({
      ...pageCache.stats,
      readRequests: vfs.readRequests,
    });
    const retryStats = store instanceof RetryingObjectStore ? store.stats : undefined;
    const stats = (): MountStats => ({
      fuse: {
        opcodes: session.requestCountsByOpcode(),
        readBytes: session.readBytes,
        writtenBytes: session.writtenBytes,
        pollSpins: session.pollSpins,
      },
      data: data.stats(),
      store: retryStats,
      pageCache: pageCache.stats,
      metaCalls: options.metaCalls,
    });
    return { mountpoint: options.mountpoint, volume, ended: session.closed, stop, pageCacheStats, stats };
  } catch (err) {
    await unwind(undo).catch(() => undefined);
    throw err;
  }
}

function isoOf(instantUs: number): string {
  return new Date(Math.floor(instantUs / 1000)).toISOString();
}

/** Runs the teardown steps last-first; all of them run, the first failure is reported. */
async function unwind(steps: (() => Promise<void>)[]): Promise<void> {
  let first: unknown = null;
  while (steps.length > 0) {
    const step = steps.pop()!;
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== null) throw first;
}
