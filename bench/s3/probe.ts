// Durability probes for bench/s3/peers.sh, through the S3 API of the benchmark store:
//   node probe.js count PREFIX     keys under PREFIX (all pages)
//   node probe.js size KEY         size of KEY, 0 when missing
// (The aws CLI takes seconds per call here and its KeyCount is per page.)
import { openS3Store } from '../../src/object/backends/s3.js';

const url = process.env.STRATA_S3_BENCH_URL;
const [command, name] = process.argv.slice(2);
if (!url || !name || (command !== 'count' && command !== 'size')) {
  console.error('usage: STRATA_S3_BENCH_URL=... probe.js count PREFIX | size KEY');
  process.exit(2);
}
const store = await openS3Store(url);
try {
  if (command === 'count') {
    let keys = 0;
    for await (const _ of store.list(name)) keys++;
    console.log(keys);
  } else {
    console.log((await store.head(name))?.sizeBytes ?? 0);
  }
} finally {
  await store.close();
}
