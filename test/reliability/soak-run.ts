// The soak harness from the command line (scripts/soak/run.sh builds and runs it):
//
//   node DIST/test/reliability/soak-run.js --minutes 10 [--setup up|serve] [--engine sqlite|postgres]
//        [--storage URL] [--sample-every 10] [--out DIR]
//
// Prints the report (phase throughput, each resource's trend) and writes it with the raw
// samples (JSON lines) into --out. Exit 1 when a resource grew without bound or the workload
// found wrong data. Runs under ~5 minutes end while the mounts' memory budget is still filling
// (the first 1-2 minutes), which the trend reports as growth.
import { parseArgs } from 'node:util';
import { runSoak } from './soak.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      setup: { type: 'string', default: 'up' },
      engine: { type: 'string', default: 'sqlite' },
      storage: { type: 'string' },
      'sample-every': { type: 'string', default: '10' },
      out: { type: 'string' },
    },
  });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) throw new Error(`--minutes wants a positive number, got ${values.minutes}`);
  if (values.setup !== 'up' && values.setup !== 'serve')
    throw new Error(`--setup is up or serve, got ${values.setup}`);
  if (values.engine !== 'sqlite' && values.engine !== 'postgres') {
    throw new Error(`--engine is sqlite or postgres, got ${values.engine}`);
  }
  const result = await runSoak({
    setup: values.setup,
    engine: values.setup === 'serve' ? values.engine : undefined,
    storage: values.storage,
    durationMs: minutes * 60_000,
    sampleEveryMs: Number(values['sample-every']) * 1000,
    outDir: values.out,
  });
  console.log(result.report);
  return result.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(2);
  },
);
