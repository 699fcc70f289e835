// The metadata server process of the benchmark: the real server entry, plus the probes the
// benchmark reads over IPC (event-loop delay of the serving thread, peak RSS).
import { readFileSync } from 'node:fs';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { isMainThread, workerData } from 'node:worker_threads';
import { runOnServingThread, sendToParentProcess, takeRelayedEvents } from '../../src/common/index.js';
import { runMetaServerProcess } from '../../src/meta/server/index.js';
import { AllocationSampler } from '../common/allocation-sampler.js';
import { LoopDelayProbe } from '../common/loop-delay.js';

// On a serving thread, as `strata meta serve` runs; the probes below measure that thread.
if (isMainThread) process.exit(await runOnServingThread(new URL(import.meta.url), process.argv.slice(2)));
takeRelayedEvents();

const delay = new LoopDelayProbe();
delay.enable();
const server = await runMetaServerProcess(workerData as string[]);
/** `run.js --allocations`: what the serving thread allocates per measurement, by call site. */
const allocations = process.env.STRATA_BENCH_ALLOCATIONS === '1' ? new AllocationSampler() : null;
let cpuAtReset = process.cpuUsage();

/** The serving thread's GC pauses since the last reset: a pause delays every timer of the loop. */
const gc = { count: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries() as PerformanceEntry[]) {
    gc.count++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

/**
 * The serving thread's time on a CPU and waiting for one (run queue), in ns, from the
 * kernel's schedstat: a loop delay the thread spent waiting for a CPU is the machine's load, not
 * the server's own work.
 */
function servingThreadSched(): { runNs: number; waitNs: number; slices: number } {
  try {
    const [run, wait, slices] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    return { runNs: Number(run), waitNs: Number(wait), slices: Number(slices) };
  } catch {
    return { runNs: 0, waitNs: 0, slices: 0 };
  }
}
let schedAtReset = servingThreadSched();

process.on('message', (message: string) => {
  void answer(message);
});

async function answer(message: string): Promise<void> {
  if (message === 'reset') {
    await allocations?.start();
    delay.reset();
    cpuAtReset = process.cpuUsage();
    schedAtReset = servingThreadSched();
    Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0 });
    sendToParentProcess({ reset: true });
  } else if (message === 'report') {
    const cpu = process.cpuUsage(cpuAtReset);
    const allocated = await allocations?.stop();
    const sched = servingThreadSched();
    sendToParentProcess({
      servingRunMs: (sched.runNs - schedAtReset.runNs) / 1e6,
      servingWaitMs: (sched.waitNs - schedAtReset.waitNs) / 1e6,
      servingSlices: sched.slices - schedAtReset.slices,
      cpuUs: cpu.user + cpu.system,
      p50Ms: delay.percentileMs(50),
      p99Ms: delay.percentileMs(99),
      maxMs: delay.maxMs,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      gcCount: gc.count,
      gcTotalMs: gc.totalMs,
      gcMaxMs: gc.maxMs,
      allocatedBytes: allocated?.totalBytes,
      allocationSites: allocated?.sites,
    });
  } else if (message === 'stop') {
    await server.stop();
    process.exit(0);
  }
}
