// The metadata server process of the benchmark: the real server entry, plus the probes the
// benchmark reads over IPC (event-loop delay of the serving thread, peak RSS).
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runMetaServerProcess } from '../../src/meta/server/index.js';

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const server = await runMetaServerProcess(process.argv.slice(2));
let cpuAtReset = process.cpuUsage();

/**
 * The serving (main) thread's time on a CPU and waiting for one (run queue), in ns, from the
 * kernel's schedstat: a loop delay the thread spent waiting for a CPU is the machine's load, not
 * the server's own work.
 */
function servingThreadSched(): { runNs: number; waitNs: number; slices: number } {
  try {
    const [run, wait, slices] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return { runNs: Number(run), waitNs: Number(wait), slices: Number(slices) };
  } catch {
    return { runNs: 0, waitNs: 0, slices: 0 };
  }
}
let schedAtReset = servingThreadSched();

process.on('message', (message: string) => {
  if (message === 'reset') {
    delay.reset();
    cpuAtReset = process.cpuUsage();
    schedAtReset = servingThreadSched();
    process.send?.({ reset: true });
  } else if (message === 'report') {
    const cpu = process.cpuUsage(cpuAtReset);
    const sched = servingThreadSched();
    process.send?.({
      servingRunMs: (sched.runNs - schedAtReset.runNs) / 1e6,
      servingWaitMs: (sched.waitNs - schedAtReset.waitNs) / 1e6,
      servingSlices: sched.slices - schedAtReset.slices,
      cpuUs: cpu.user + cpu.system,
      p99Ms: delay.percentile(99) / 1e6,
      maxMs: delay.max / 1e6,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    });
  } else if (message === 'stop') {
    void server.stop().then(() => process.exit(0));
  }
});
