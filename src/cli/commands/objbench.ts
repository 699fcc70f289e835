import type { Command } from 'commander';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { parseSizeBytes } from '../../common/index.js';
import { openObjectStore } from '../../object/index.js';
import { formatObjectBenchReport, runObjectBench } from '../../object/objbench.js';
import { checkStorageUrl, UsageError } from '../options.js';

export function registerObjbench(program: Command): void {
  program
    .command('objbench')
    .description(
      'check that an object store behaves as StrataFS needs, then measure its throughput and latency',
    )
    .requiredOption('--storage <URL>', 'object store, e.g. file:/tmp/objects or s3://bucket/prefix')
    .option('--sizes <LIST>', 'object sizes, comma separated', '4K,1M,4M')
    .option('--concurrency <N>', 'operations in flight', '16')
    .option('--bytes-per-size <SIZE>', 'data written per object size', '256M')
    .option('--no-progress', 'no progress bar (for logs)')
    .action(async (options: Record<string, unknown>) => {
      const storageUrl = checkStorageUrl(String(options.storage));
      const sizes = String(options.sizes)
        .split(',')
        .map((s) => parseSize(s, '--sizes'));
      const concurrency = Number(options.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
        throw new UsageError(
          `invalid --concurrency "${String(options.concurrency)}": use a whole number from 1 to 1024`,
        );
      }
      const bytesPerSize = parseSize(String(options.bytesPerSize), '--bytes-per-size');
      const store = await openObjectStore(storageUrl);
      const bars =
        options.progress === false || !process.stderr.isTTY
          ? null
          : new MultiBar(
              { format: ' {phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true },
              Presets.shades_classic,
            );
      let bar: SingleBar | null = null;
      let phase = '';
      try {
        const report = await runObjectBench({
          store,
          sizes,
          concurrency,
          bytesPerSize,
          onProgress: (p) => {
            if (bars === null) return;
            if (p.phase !== phase) {
              phase = p.phase;
              bar?.stop();
              bar = bars.create(p.total, p.done, { phase: p.phase.padEnd(24) });
            } else {
              bar?.update(p.done);
            }
          },
        });
        bars?.stop();
        process.stdout.write(`${formatObjectBenchReport(report).join('\n')}\n`);
        if (!report.ok)
          throw new Error(
            `${store.description} failed the behaviour checks above; StrataFS cannot use it as is`,
          );
      } finally {
        bars?.stop();
        await store.close();
      }
    });
}

function parseSize(text: string, what: string): number {
  try {
    return parseSizeBytes(text.trim(), what);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
