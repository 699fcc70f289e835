// Serial small puts into the file store, as a mount's closes of small files issue them (untar,
// `write 500 x 4 KiB files`): each put waits for the previous one, so its latency is the
// figure, and the event-loop hops a put takes add up under load.
//
//   node DIST/bench/data/small-puts.js [--puts 400] [--size-bytes 4096] [--dir /tmp/strata-data-puts]
//
// Keys spread over fan-out directories the way block keys do; every directory exists before the
// timed part (a volume that has been written to for a while), so the figure is the steady cost.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { FileObjectStore } from '../../src/object/backends/file.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/data/small-puts.js [--puts 400] [--size-bytes 4096] [--dir /tmp/strata-data-puts]`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    puts: { type: 'string', default: '400' },
    'size-bytes': { type: 'string', default: '4096' },
    dir: { type: 'string', default: '/tmp/strata-data-puts' },
  },
});
const puts = Number(flags.puts);
const sizeBytes = Number(flags['size-bytes']);
const dir = flags.dir;
const fanout = 64;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const store = new FileObjectStore(dir);
  const body = randomBytes(sizeBytes);
  try {
    for (let d = 0; d < fanout; d++) await store.put(`chunks/${d}/warm`, body);
    const latenciesUs: number[] = [];
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < puts; i++) {
      const t = process.hrtime.bigint();
      await store.put(`chunks/${i % fanout}/o${i}`, body);
      latenciesUs.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    const wallUs = Number(process.hrtime.bigint() - start) / 1000;
    const used = process.cpuUsage(cpu);
    console.log(
      `${puts} serial puts of ${sizeBytes} B: median ${median(latenciesUs).toFixed(0)} µs, ` +
        `mean ${(wallUs / puts).toFixed(0)} µs, CPU ${((used.user + used.system) / puts).toFixed(0)} µs/put`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
