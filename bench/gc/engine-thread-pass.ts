// What a background GC pass costs the engine thread of `strata meta serve` on SQLite (the
// collector runs there as an engine task: src/volume/server-gc.ts). Prepares a volume with
// --slices deleted one-block slices (a file store, history off), opens the service on its
// engine thread with a timed collector (timed-gc-task.ts), and meanwhile sends getattr calls
// to that thread back to back from the serving thread. Takes turns per round: the same probe
// with the engine thread idle (baseline), then with one pass.
// Usage: node dist/bench/gc/engine-thread-pass.js [--slices 10000] [--rate 300] [--rounds 2]
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openThreadedMetaService } from '../../src/meta/server/index.js';
import { openObjectStore } from '../../src/object/index.js';
import { sliceBlockKeys } from '../../src/ops/index.js';
import { parseFlags } from '../common/args.js';
import type { TimedPassData, TimedPassResult } from './timed-gc-task.js';

const USAGE = `Usage: node dist/bench/gc/engine-thread-pass.js [--slices 10000] [--rate 300] [--rounds 2]`;
const { values } = parseFlags(USAGE, {
  options: {
    slices: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '2' },
  },
});
const slices = Number(values.slices);
const maxDeletesPerSecond = Number(values.rate);
const rounds = Number(values.rounds);
const root: Caller = { uid: 0, gid: 0, pid: 1 };
const BLOCK_BYTES = 4 * 1024 * 1024;
const SLICE_BYTES = 4096;
const taskUrl = new URL('./timed-gc-task.js', import.meta.url).href;

/** A fresh volume whose deleted slice log holds `slices` rows, their objects in the store. */
async function prepare(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  const storageUrl = `file:${join(dir, 'objects')}`;
  await formatVolume(engineUrl, {
    name: 'gcbench',
    storageUrl,
    blockSizeBytes: BLOCK_BYTES,
    historyRetentionMs: 0,
  });
  const service = await openMetaService({ engineUrl, background: false });
  const store = await openObjectStore(storageUrl);
  const body = Buffer.alloc(SLICE_BYTES, 1);
  try {
    for (let first = 0; first < slices; first += 100) {
      const group = Array.from({ length: Math.min(100, slices - first) }, (_, i) => `f${first + i}`);
      await Promise.all(
        group.map(async (name) => {
          const ino: Ino = (await service.mknod(root, ROOT_INO, name, 0o100644, 0, 0)).ino;
          const id = await service.allocateSliceIds(1);
          for (const key of sliceBlockKeys(id, SLICE_BYTES, BLOCK_BYTES)) await store.put(key, body);
          const slice = {
            id,
            sliceSizeBytes: SLICE_BYTES,
            chunkOffsetBytes: 0,
            sliceOffsetBytes: 0,
            lengthBytes: SLICE_BYTES,
            blockSizeBytes: BLOCK_BYTES,
          };
          await service.commitWrites(root, ino, [{ chunkIndex: 0, slice }], SLICE_BYTES, { sec: 1, nsec: 0 });
          await service.unlink(root, ROOT_INO, name);
        }),
      );
    }
  } finally {
    await store.close();
    await service.close();
  }
  return engineUrl;
}

async function measure(
  engineUrl: string,
  idleMs: number,
): Promise<{ result: TimedPassResult; probeMs: number[] }> {
  let finish: (result: TimedPassResult) => void = () => undefined;
  const finished = new Promise<TimedPassResult>((resolve) => (finish = resolve));
  const data: TimedPassData = { maxDeletesPerSecond, idleMs };
  const service = await openThreadedMetaService({
    engineUrl,
    task: { moduleUrl: taskUrl, data },
    onTaskMessage: (message) => finish(message as TimedPassResult),
  });
  const probeMs: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const started = performance.now();
      await service.getattr(ROOT_INO);
      probeMs.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  try {
    return { result: await finished, probeMs };
  } finally {
    probing = false;
    await probe;
    await service.close();
  }
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const ms = (value: number): string => value.toFixed(2);

console.log(`${slices} deleted slices, ${maxDeletesPerSecond} deletes/s, ${rounds} round(s); times in ms`);
console.log(
  '| round | engine thread | pass ms | read max / p50 | write max / p50 (inside tx) | write max (whole) | loop delay max / p99 | getattr p50 / p99 / max |',
);
console.log('|---|---|---|---|---|---|---|---|');
const base = join(tmpdir(), `strata-gc-bench-${process.pid}`);
try {
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['idle', 'pass'] as const) {
      const dir = join(base, `${round}-${mode}`);
      const engineUrl = await prepare(dir);
      const idleMs = mode === 'idle' ? Math.ceil((slices / maxDeletesPerSecond) * 1000) : 0;
      const { result, probeMs } = await measure(engineUrl, idleMs);
      const reads = result.calls.filter((c) => c.kind === 'read');
      const writes = result.calls.filter((c) => c.kind === 'write');
      const pair = (values: number[]): string =>
        values.length === 0 ? '-' : `${ms(Math.max(...values))} / ${ms(quantile(values, 0.5))}`;
      if (mode === 'pass' && result.report?.objects !== slices) {
        throw new Error(`the pass deleted ${result.report?.objects ?? 0} objects, not ${slices}`);
      }
      console.log(
        `| ${round} | ${mode} | ${Math.round(result.durationMs)} | ${pair(reads.map((c) => c.insideMs))} | ` +
          `${pair(writes.map((c) => c.insideMs))} | ${writes.length ? ms(Math.max(...writes.map((c) => c.wholeMs))) : '-'} | ` +
          `${ms(result.loopDelayMaxMs)} / ${ms(result.loopDelayP99Ms)} | ` +
          `${ms(quantile(probeMs, 0.5))} / ${ms(quantile(probeMs, 0.99))} / ${ms(Math.max(...probeMs))} |`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
