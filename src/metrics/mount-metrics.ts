import type { LatencyHistograms } from '../common/index.js';
import type { LabelledHistogram, LabelledValue, MetricsRegistry } from './registry.js';
import { registerCallMetrics, type CallCounts } from './rpc-metrics.js';

/**
 * What a mount counts anyway, as the metrics read it (the shapes of the FUSE session's
 * request counts, the data path's DataPathStats and the page cache's stats, restated here
 * because this folder sits below all of them).
 */
export interface MountStats {
  fuse: {
    /**
     * Requests received and answered with an error, by opcode name; opcodes never seen may be
     * absent. Their handling times, from request decoded to reply sent, are series `series` of
     * `histograms`.
     */
    opcodes: Iterable<{
      opcode: string;
      requests: number;
      errors: number;
      histograms?: LatencyHistograms;
      series?: number;
    }>;
    /** Data bytes READ replies carried and WRITE requests stored. */
    readBytes: number;
    writtenBytes: number;
    /** Idle moments of the /dev/fuse loop that polled for a next request (found or missed it), or did not, or were preempted, as the CPU was contended. */
    pollSpins: { found: number; missed: number; contended: number };
  };
  data: {
    memory: { limitBytes: number; usedBytes: number; peakBytes: number; waitingAcquires: number };
    memoryCache: { bytes: number; hits: number; misses: number };
    diskCache: { enabled: boolean; bytes: number; capacityBytes: number; hits: number; corrupt: number };
    uploads: { inFlight: number; queued: number; blocks: number; bytes: number; errors: number };
    fetches: { inFlight: number; blocks: number; bytes: number; readaheadBlocks: number; corrupt: number };
  };
  /** Store calls the retry wrapper retried, and those it gave up on (the caller got EIO). */
  store?: { retries: number; gaveUp: number };
  pageCache: { pushes: number; pushedBytes: number; dropped: number; failed: number };
  /** The metadata calls of a mount of a remote server, timed by its RPC client (absent in-process). */
  metaCalls?: CallCounts;
}

/** Registers the mount metrics (docs/cli.md, "Metrics"); `read` runs at every scrape. */
export function registerMountMetrics(metrics: MetricsRegistry, read: () => MountStats): void {
  // One snapshot per scrape: each metric's collect() reads the same one. (Kept for 100 ms
  // instead, a scrape less than 100 ms after the one before answered that one's counts.)
  let snapshot: MountStats | null = null;
  metrics.onScrape(() => {
    snapshot = null;
  });
  const stats = (): MountStats => (snapshot ??= read());
  const fuseOpcodes = (pick: 'requests' | 'errors'): LabelledValue<'opcode'>[] => {
    const out: LabelledValue<'opcode'>[] = [];
    for (const row of stats().fuse.opcodes) {
      if (row[pick] > 0) out.push({ labels: { opcode: row.opcode }, value: row[pick] });
    }
    return out;
  };
  metrics.labelledCounter(
    'strata_fuse_requests_total',
    'FUSE requests received from the kernel, by opcode',
    ['opcode'],
    () => fuseOpcodes('requests'),
  );
  metrics.labelledCounter(
    'strata_fuse_request_errors_total',
    'FUSE requests answered with an error (ENOENT of a LOOKUP included), by opcode',
    ['opcode'],
    () => fuseOpcodes('errors'),
  );
  metrics.latencyHistogram(
    'strata_fuse_request_duration_seconds',
    'FUSE request handling time by opcode, from the request read to its reply written (requests answered at once with an error, and FORGET, are not timed)',
    ['opcode'],
    () => {
      const out: LabelledHistogram<'opcode'>[] = [];
      for (const { opcode, histograms, series } of stats().fuse.opcodes) {
        if (histograms === undefined || series === undefined || histograms.count(series) === 0) continue;
        out.push({ labels: { opcode }, histograms, series });
      }
      return out;
    },
  );
  registerCallMetrics(
    metrics,
    'strata_meta_client',
    () => stats().metaCalls,
    'metadata call latency by method as the mount sees it, from the call to its answer (retries and waits for a connection included)',
  );
  metrics.counter('strata_fuse_read_bytes_total', 'file data bytes returned by FUSE READ replies', () => {
    return stats().fuse.readBytes;
  });
  metrics.counter(
    'strata_fuse_written_bytes_total',
    'file data bytes accepted by FUSE WRITE requests',
    () => {
      return stats().fuse.writtenBytes;
    },
  );

  metrics.labelledCounter(
    'strata_fuse_poll_spins_total',
    'idle moments of the FUSE loop by what polling for the next request did: found one, missed, or skipped or preempted as the CPU was contended (--fuse-spin-us)',
    ['outcome'],
    () => {
      const { found, missed, contended } = stats().fuse.pollSpins;
      return [
        { labels: { outcome: 'found' }, value: found },
        { labels: { outcome: 'missed' }, value: missed },
        { labels: { outcome: 'contended' }, value: contended },
      ];
    },
  );

  const cacheLookups = (): LabelledValue<'cache' | 'outcome'>[] => {
    const { memoryCache, diskCache } = stats().data;
    const rows: LabelledValue<'cache' | 'outcome'>[] = [
      { labels: { cache: 'memory', outcome: 'hit' }, value: memoryCache.hits },
      { labels: { cache: 'memory', outcome: 'miss' }, value: memoryCache.misses },
    ];
    if (diskCache.enabled) {
      // A block missing from both caches is fetched from the store: the disk cache's misses.
      rows.push({ labels: { cache: 'disk', outcome: 'hit' }, value: diskCache.hits });
    }
    return rows;
  };
  metrics.labelledCounter(
    'strata_cache_lookups_total',
    'block lookups in the memory and disk caches by outcome (a disk miss is a store get: strata_object_store_gets_total)',
    ['cache', 'outcome'],
    cacheLookups,
  );
  metrics.gauge('strata_memory_cache_bytes', 'block bytes held by the memory cache', () => {
    return stats().data.memoryCache.bytes;
  });
  metrics.gauge('strata_disk_cache_bytes', 'block bytes held by the disk cache', () => {
    return stats().data.diskCache.bytes;
  });
  metrics.gauge('strata_disk_cache_capacity_bytes', 'the disk cache limit (0: no disk cache)', () => {
    const { diskCache } = stats().data;
    return diskCache.enabled ? diskCache.capacityBytes : 0;
  });
  metrics.counter(
    'strata_cache_corrupt_blocks_total',
    'blocks that failed their checksum, cached or fetched',
    () => {
      const { diskCache, fetches } = stats().data;
      return diskCache.corrupt + fetches.corrupt;
    },
  );

  metrics.gauge(
    'strata_memory_budget_used_bytes',
    'the memory budget in use: write buffers, block cache, readahead',
    () => {
      return stats().data.memory.usedBytes;
    },
  );
  metrics.gauge(
    'strata_memory_budget_limit_bytes',
    'what the memory budget lets buffers, cache and readahead hold',
    () => {
      return stats().data.memory.limitBytes;
    },
  );
  metrics.gauge(
    'strata_memory_budget_peak_bytes',
    'the most the memory budget has held since the mount',
    () => {
      return stats().data.memory.peakBytes;
    },
  );
  metrics.gauge(
    'strata_memory_budget_waiters',
    'writers and reads waiting for room in the memory budget',
    () => {
      return stats().data.memory.waitingAcquires;
    },
  );

  metrics.gauge('strata_uploads_in_flight', 'block puts to the object store in flight', () => {
    return stats().data.uploads.inFlight;
  });
  metrics.gauge('strata_uploads_queued', 'block puts waiting for an upload slot', () => {
    return stats().data.uploads.queued;
  });
  metrics.gauge('strata_fetches_in_flight', 'block gets from the object store in flight', () => {
    return stats().data.fetches.inFlight;
  });
  metrics.counter(
    'strata_object_store_puts_total',
    'block objects stored',
    () => stats().data.uploads.blocks,
  );
  metrics.counter('strata_object_store_put_bytes_total', 'bytes of the block objects stored', () => {
    return stats().data.uploads.bytes;
  });
  metrics.counter(
    'strata_object_store_put_failures_total',
    'block puts that failed for good (the data is reported lost at fsync/close)',
    () => {
      return stats().data.uploads.errors;
    },
  );
  metrics.counter(
    'strata_object_store_gets_total',
    'block objects fetched from the store (readahead included)',
    () => {
      return stats().data.fetches.blocks;
    },
  );
  metrics.counter('strata_object_store_get_bytes_total', 'bytes of the block objects fetched', () => {
    return stats().data.fetches.bytes;
  });
  metrics.counter('strata_readahead_blocks_total', 'blocks fetched ahead of the reader', () => {
    return stats().data.fetches.readaheadBlocks;
  });
  metrics.counter(
    'strata_object_store_retries_total',
    'store calls retried after a transient failure',
    () => {
      return stats().store?.retries ?? 0;
    },
  );
  metrics.counter(
    'strata_object_store_failures_total',
    'store calls that failed after their retries (the caller got EIO)',
    () => stats().store?.gaveUp ?? 0,
  );

  metrics.counter(
    'strata_page_cache_pushed_bytes_total',
    "bytes pushed into the kernel's page cache after a read",
    () => {
      return stats().pageCache.pushedBytes;
    },
  );
  metrics.counter(
    'strata_page_cache_dropped_pushes_total',
    "windows not pushed into the kernel's page cache: changed since the read, a writer, a full queue, or no longer in memory",
    () => stats().pageCache.dropped,
  );
  metrics.counter(
    'strata_page_cache_push_failures_total',
    "pushes into the kernel's page cache that failed",
    () => {
      return stats().pageCache.failed;
    },
  );
}

/** What a background GC has done since the process started (ops/gc-background.ts reports). */
export interface GcTotals {
  passes: number;
  failedPasses: number;
  slices: number;
  objects: number;
  bytes: number;
}

export function registerGcMetrics(metrics: MetricsRegistry, totals: GcTotals): void {
  metrics.counter('strata_gc_passes_total', 'background GC passes finished', () => totals.passes);
  metrics.counter(
    'strata_gc_failed_passes_total',
    'background GC passes that failed (retried next interval)',
    () => {
      return totals.failedPasses;
    },
  );
  metrics.counter(
    'strata_gc_deleted_slices_total',
    'slices whose objects the background GC deleted',
    () => totals.slices,
  );
  metrics.counter(
    'strata_gc_deleted_objects_total',
    'objects the background GC deleted',
    () => totals.objects,
  );
  metrics.counter(
    'strata_gc_deleted_bytes_total',
    'bytes of the objects the background GC deleted',
    () => totals.bytes,
  );
}

/** A GcTotals to add pass reports to. */
export function emptyGcTotals(): GcTotals {
  return { passes: 0, failedPasses: 0, slices: 0, objects: 0, bytes: 0 };
}

/** Adds one background GC pass (its report; undefined: it failed) to `totals`. */
export function addGcPass(
  totals: GcTotals,
  report: { slices: number; objects: number; bytes: number } | undefined,
): void {
  if (report === undefined) {
    totals.failedPasses++;
    return;
  }
  totals.passes++;
  totals.slices += report.slices;
  totals.objects += report.objects;
  totals.bytes += report.bytes;
}
