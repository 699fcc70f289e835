// Data path alone against the file backend: sequential write/read throughput (optionally
// through the fault wrapper emulating a remote store's per-request latency), and peak RSS
// against the memory budget while writing a big file and while 8 readers stream.
//
//   node DIST/bench/data/throughput.js [--size-mib 1024] [--big-mib 4096] [--readers 8]
//        [--reader-mib 512] [--memory-mib 512] [--dir /tmp/strata-data-bench]
//
// Each scenario runs in a child process of its own so its peak RSS (getrusage maxrss) is its own:
// this script again, with --child SCENARIO [--latency-ms 0] [--random-reads 2000] added.
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asIno, asSliceId, type SliceRef, type SliceWrite } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { FileObjectStore } from '../../src/object/backends/file.js';
import { withFaults, type ObjectStore } from '../../src/object/index.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/data/throughput.js [--size-mib 1024] [--big-mib 4096] [--readers 8]
       [--reader-mib 512] [--memory-mib 512] [--dir /tmp/strata-data-bench]

Each scenario runs in a child process of its own so its peak RSS (getrusage maxrss) is its own:
this script again, with --child SCENARIO [--latency-ms 0] [--random-reads 2000] added.`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'big-mib': { type: 'string', default: '4096' },
    readers: { type: 'string', default: '8' },
    'reader-mib': { type: 'string', default: '512' },
    'memory-mib': { type: 'string', default: '512' },
    dir: { type: 'string', default: '/tmp/strata-data-bench' },
    // The scenario child process's own flags (see run).
    child: { type: 'string' },
    'latency-ms': { type: 'string', default: '0' },
    'random-reads': { type: 'string', default: '2000' },
  },
});

const MiB = 1024 * 1024;

const dir = flags.dir;
const memoryBudgetBytes = Number(flags['memory-mib']) * MiB;

interface FileMap {
  sizeBytes: number;
  chunks: Record<number, SliceRef[]>;
}

let nextSliceId = 1;
function openDataPath(store: ObjectStore): DataPath {
  return createDataPath({
    store,
    memoryBudgetBytes,
    allocateSliceIds: async (count) => {
      const first = nextSliceId;
      nextSliceId += count;
      return asSliceId(first);
    },
  });
}

function storeFor(latencyMs: number): ObjectStore {
  const base = new FileObjectStore(join(dir, 'objects'));
  return latencyMs > 0 ? withFaults(base, { latencyMs }) : base;
}

/** Writes `sizeBytes` sequentially in 1 MiB writes; returns the file's map. */
async function writeFile(data: DataPath, ino: number, sizeBytes: number): Promise<FileMap> {
  const writer = data.openWriter(asIno(ino));
  const buffer = Buffer.alloc(MiB);
  randomFillSync(buffer);
  for (let offset = 0; offset < sizeBytes; offset += MiB) {
    buffer.writeUInt32LE(offset / MiB, 0);
    await writer.write(offset, buffer.subarray(0, Math.min(MiB, sizeBytes - offset)));
  }
  const writes: SliceWrite[] = await writer.flush();
  const map: FileMap = { sizeBytes, chunks: {} };
  for (const write of writes) (map.chunks[write.chunkIndex] ??= []).push(write.slice);
  return map;
}

async function readFile(data: DataPath, ino: number, map: FileMap, readBytes = MiB): Promise<void> {
  const chunkSlices = async (chunkIndex: number) => map.chunks[chunkIndex] ?? [];
  for (let offset = 0; offset < map.sizeBytes; offset += readBytes) {
    const got = await data.read(asIno(ino), offset, readBytes, chunkSlices, map.sizeBytes);
    if (offset % MiB === 0 && got.readUInt32LE(0) !== offset / MiB)
      throw new Error(`wrong data at ${offset}`);
  }
}

/** Samples RSS while `work` runs; returns seconds taken and peak RSS in MiB. */
async function measured(work: () => Promise<void>): Promise<{ seconds: number; peakRssMiB: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const start = process.hrtime.bigint();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024);
  return { seconds, peakRssMiB: peak / MiB };
}

async function child(scenario: string): Promise<void> {
  const latencyMs = Number(flags['latency-ms']);
  const sizeBytes = Number(flags['size-mib']) * MiB;
  const baseRssMiB = process.memoryUsage.rss() / MiB;
  let result: Record<string, number | string> = { scenario, latencyMs };
  if (scenario === 'write') {
    const data = openDataPath(storeFor(latencyMs));
    let map: FileMap | undefined;
    const m = await measured(async () => {
      map = await writeFile(data, 1, sizeBytes);
    });
    writeFileSync(join(dir, 'map-1.json'), JSON.stringify(map));
    const s = data.stats();
    result = {
      ...result,
      MiB: sizeBytes / MiB,
      MiBps: sizeBytes / MiB / m.seconds,
      ...rss(m, baseRssMiB),
      budgetPeakMiB: s.memory.peakBytes / MiB,
    };
  } else if (scenario === 'read') {
    const map = JSON.parse(readFileSync(join(dir, 'map-1.json'), 'utf8')) as FileMap;
    const data = openDataPath(storeFor(latencyMs));
    const m = await measured(() => readFile(data, 1, map));
    const s = data.stats();
    result = {
      ...result,
      MiB: map.sizeBytes / MiB,
      MiBps: map.sizeBytes / MiB / m.seconds,
      ...rss(m, baseRssMiB),
      budgetPeakMiB: s.memory.peakBytes / MiB,
      readaheadBlocks: s.fetches.readaheadBlocks,
    };
  } else if (scenario === 'random') {
    // 4 KiB reads at random offsets, 16 at a time, cold: partial (segment) fetches.
    const map = JSON.parse(readFileSync(join(dir, 'map-1.json'), 'utf8')) as FileMap;
    const data = openDataPath(storeFor(latencyMs));
    const reads = Number(flags['random-reads']);
    const chunkSlices = async (chunkIndex: number) => map.chunks[chunkIndex] ?? [];
    let state = 12345;
    const nextOffset = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return Math.floor((state / 2 ** 32) * (map.sizeBytes / 4096)) * 4096;
    };
    let done = 0;
    const m = await measured(async () => {
      await Promise.all(
        Array.from({ length: 16 }, async (_, worker) => {
          while (done < reads) {
            done++;
            await data.read(asIno(100 + worker), nextOffset(), 4096, chunkSlices, map.sizeBytes);
          }
        }),
      );
    });
    const s = data.stats();
    result = { ...result, reads, iops: reads / m.seconds, fetchedMiB: s.fetches.bytes / MiB };
  } else if (scenario === 'raw') {
    // The baseline: the same bytes as 4 MiB objects straight through the store, 16 at a time.
    const store = storeFor(latencyMs);
    const blockBytes = 4 * MiB;
    const body = Buffer.alloc(blockBytes);
    randomFillSync(body);
    const count = Math.ceil(sizeBytes / blockBytes);
    const inParallel = async (work: (index: number) => Promise<void>) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < count) await work(next++);
        }),
      );
    };
    const w = await measured(() => inParallel((i) => store.put(`raw/${i}`, body)));
    const r = await measured(() => inParallel(async (i) => void (await store.get(`raw/${i}`))));
    result = {
      ...result,
      MiB: sizeBytes / MiB,
      writeMiBps: sizeBytes / MiB / w.seconds,
      readMiBps: sizeBytes / MiB / r.seconds,
    };
  } else if (scenario === 'write-files') {
    const readers = Number(flags.readers);
    const readerBytes = Number(flags['reader-mib']) * MiB;
    const data = openDataPath(storeFor(0));
    for (let i = 0; i < readers; i++) {
      writeFileSync(join(dir, `map-r${i}.json`), JSON.stringify(await writeFile(data, 10 + i, readerBytes)));
    }
    return;
  } else if (scenario === 'readers') {
    const readers = Number(flags.readers);
    const maps = Array.from(
      { length: readers },
      (_, i) => JSON.parse(readFileSync(join(dir, `map-r${i}.json`), 'utf8')) as FileMap,
    );
    const data = openDataPath(storeFor(latencyMs));
    // 128 KiB reads, as the kernel sends buffered reads.
    const m = await measured(async () => {
      await Promise.all(maps.map((map, i) => readFile(data, 10 + i, map, 128 * 1024)));
    });
    const totalMiB = maps.reduce((sum, map) => sum + map.sizeBytes, 0) / MiB;
    const s = data.stats();
    result = {
      ...result,
      readers,
      MiB: totalMiB,
      MiBps: totalMiB / m.seconds,
      ...rss(m, baseRssMiB),
      budgetPeakMiB: s.memory.peakBytes / MiB,
      fetchedMiB: s.fetches.bytes / MiB,
      readaheadBlocks: s.fetches.readaheadBlocks,
    };
  }
  console.log(JSON.stringify(result));
}

function rss(m: { peakRssMiB: number }, baseRssMiB: number): Record<string, number> {
  return { peakRssMiB: m.peakRssMiB, baseRssMiB };
}

function run(args: string[]): Record<string, number | string> | null {
  const self = fileURLToPath(import.meta.url);
  const out = spawnSync(
    process.execPath,
    [self, '--child', ...args, '--dir', dir, '--memory-mib', String(memoryBudgetBytes / MiB)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (out.status !== 0) throw new Error(`scenario ${args.join(' ')} failed with ${out.status}`);
  const line = out.stdout.trim().split('\n').pop();
  return line ? (JSON.parse(line) as Record<string, number | string>) : null;
}

function show(result: Record<string, number | string> | null): void {
  if (!result) return;
  console.log(
    Object.entries(result)
      .map(([key, value]) => `${key}=${typeof value === 'number' ? Math.round(value * 10) / 10 : value}`)
      .join(' '),
  );
}

async function main(): Promise<void> {
  if (flags.child !== undefined) return child(flags.child);
  const sizeMiB = flags['size-mib'];
  const fresh = () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  };
  try {
    for (const latencyMs of ['0', '10']) {
      fresh();
      show(run(['raw', '--size-mib', sizeMiB, '--latency-ms', latencyMs]));
      fresh();
      show(run(['write', '--size-mib', sizeMiB, '--latency-ms', latencyMs]));
      show(run(['read', '--latency-ms', latencyMs]));
      show(run(['random', '--latency-ms', latencyMs]));
    }
    fresh();
    show(run(['write', '--size-mib', flags['big-mib']]));
    fresh();
    const readerArgs = ['--readers', flags.readers, '--reader-mib', flags['reader-mib']];
    run(['write-files', ...readerArgs]);
    show(run(['readers', ...readerArgs]));
    show(run(['readers', ...readerArgs, '--latency-ms', '10']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
