// Preloaded into strata processes by the soak harness (NODE_OPTIONS="--import=.../probe.mjs"):
// every STRATA_SOAK_PROBE_MS it writes the process's own view of its memory and of its live
// libuv resources to STRATA_SOAK_PROBE_DIR/PID.json, which /proc cannot show (V8 heap,
// Buffers outside the heap, timers and handles by kind). Nothing of StrataFS itself changes.
//
// The heap is measured after a full collection (STRATA_SOAK_PROBE_GC=1, the default): without
// it, heapUsed is mostly garbage not yet collected and a slow leak hides in the noise. One
// full GC of a mount's heap every few seconds costs a few milliseconds of its main thread.
import { isMainThread } from 'node:worker_threads';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setInterval } from 'node:timers';

const dir = process.env.STRATA_SOAK_PROBE_DIR;
const periodMs = Number(process.env.STRATA_SOAK_PROBE_MS ?? '2000');

function collector() {
  if (process.env.STRATA_SOAK_PROBE_GC === '0') return undefined;
  // --expose-gc is refused in NODE_OPTIONS; turning the flag on at run time and reading `gc`
  // from a fresh context is the documented way around that.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  return typeof gc === 'function' ? gc : undefined;
}

if (dir && isMainThread) {
  const gc = collector();
  const file = join(dir, `${process.pid}.json`);
  const timer = setInterval(() => {
    try {
      gc?.();
      const memory = process.memoryUsage();
      const resources = {};
      for (const kind of process.getActiveResourcesInfo()) resources[kind] = (resources[kind] ?? 0) + 1;
      const sample = {
        atMs: Date.now(),
        argv: process.argv.slice(2, 4).join(' '),
        heapUsedBytes: memory.heapUsed,
        heapTotalBytes: memory.heapTotal,
        externalBytes: memory.external,
        arrayBuffersBytes: memory.arrayBuffers,
        rssBytes: memory.rss,
        resources,
      };
      writeFileSync(`${file}.tmp`, JSON.stringify(sample));
      renameSync(`${file}.tmp`, file);
    } catch {
      // Out of descriptors or a full disk: the harness sees a stale sample, the mount goes on.
    }
  }, periodMs);
  timer.unref();
  // STRATA_SOAK_PROBE_SNAPSHOTS=1: each SIGUSR2 writes DIR/PID-N.heapsnapshot (compare two with
  // scripts/soak/heap-diff.mjs). It stops the process for about a second per 20 MiB of heap.
  if (process.env.STRATA_SOAK_PROBE_SNAPSHOTS === '1') {
    let taken = 0;
    process.on('SIGUSR2', () => {
      gc?.();
      writeHeapSnapshot(join(dir, `${process.pid}-${++taken}.heapsnapshot`));
    });
  }
}
