// The metadata server process of the benchmark: the real server entry, plus the probes the
// benchmark reads over IPC (event-loop delay of the serving thread, peak RSS).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runMetaServerProcess } from '../../src/meta/server/index.js';

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const server = await runMetaServerProcess(process.argv.slice(2));
let cpuAtReset = process.cpuUsage();

process.on('message', (message: string) => {
  if (message === 'reset') {
    delay.reset();
    cpuAtReset = process.cpuUsage();
    process.send?.({ reset: true });
  } else if (message === 'report') {
    const cpu = process.cpuUsage(cpuAtReset);
    process.send?.({
      cpuUs: cpu.user + cpu.system,
      p99Ms: delay.percentile(99) / 1e6,
      maxMs: delay.max / 1e6,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    });
  } else if (message === 'stop') {
    void server.stop().then(() => process.exit(0));
  }
});
