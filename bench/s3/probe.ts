// Probes of the benchmark store through its S3 API:
//   node probe.js count PREFIX     keys under PREFIX (all pages), for bench/s3/peers.sh
//   node probe.js size KEY         size of KEY, 0 when missing, for bench/s3/peers.sh
//   node probe.js gets KEY [N]     puts 4 KiB at KEY, then N (default 6) GETs of it one after
//                                  another on one kept-alive connection: milliseconds each
//                                  (STRATA_TCP_QUICKACK=0 to compare without quick ACKs)
// (The aws CLI takes seconds per call here and its KeyCount is per page.)
import { openS3Store } from '../../src/object/backends/s3.js';

const url = process.env.STRATA_S3_BENCH_URL;
const [command, name, countArg] = process.argv.slice(2);
const gets = Number(countArg ?? 6);
if (
  !url ||
  !name ||
  !['count', 'size', 'gets'].includes(command ?? '') ||
  !Number.isSafeInteger(gets) ||
  gets < 1
) {
  console.error('usage: STRATA_S3_BENCH_URL=... probe.js count PREFIX | size KEY | gets KEY [N]');
  process.exit(2);
}
const store = await openS3Store(url);
try {
  if (command === 'count') {
    let keys = 0;
    for await (const _ of store.list(name)) keys++;
    console.log(keys);
  } else if (command === 'size') {
    console.log((await store.head(name))?.sizeBytes ?? 0);
  } else {
    await store.put(name, Buffer.alloc(4096, 7));
    const times: string[] = [];
    for (let i = 0; i < gets; i++) {
      const start = process.hrtime.bigint();
      await store.get(name);
      times.push((Number(process.hrtime.bigint() - start) / 1e6).toFixed(1));
    }
    await store.delete(name);
    console.log(`GET ms: ${times.join(' ')}`);
  }
} finally {
  await store.close();
}
