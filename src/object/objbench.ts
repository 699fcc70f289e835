import { randomBytes } from 'node:crypto';
import { formatBytes } from '../common/index.js';
import { ObjectNotFoundError, type ObjectStore } from './store.js';

/** What `strata objbench` runs: behaviour checks, then throughput and latency per object size. */
export interface ObjectBenchOptions {
  store: ObjectStore;
  /** Object sizes to measure. Default 4 KiB, 1 MiB, 4 MiB (metadata-sized, typical, full block). */
  sizes?: number[];
  /** Operations in flight at once. Default 16. */
  concurrency?: number;
  /** Bytes written per size, which sets the object count (clamped to 16..maxObjectsPerSize). Default 256 MiB. */
  bytesPerSize?: number;
  /** Upper bound of objects per size. Default 1000. */
  maxObjectsPerSize?: number;
  /** Size of the large-object check: above the S3 backend's default 64 MiB multipart threshold. 0 skips it. */
  largeObjectBytes?: number;
  /** Key prefix for everything the bench writes (deleted at the end). Default a random "objbench-…/". */
  prefix?: string;
  /** Called after every operation; cheap enough for a progress bar. */
  onProgress?: (progress: ObjectBenchProgress) => void;
}

export interface ObjectBenchProgress {
  /** e.g. "check: ranged get" or "put 4.0 KiB". */
  phase: string;
  done: number;
  total: number;
}

export interface ObjectBenchCheck {
  name: string;
  ok: boolean;
  /** Why it failed; empty when it passed. */
  detail: string;
  elapsedMs: number;
}

export type BenchOperation = 'put' | 'get' | 'get 4 KiB range' | 'head' | 'list' | 'delete';

export interface ObjectBenchResult {
  operation: BenchOperation;
  objectSizeBytes: number;
  operations: number;
  /** Payload bytes moved (0 for head, list, delete). */
  bytes: number;
  elapsedMs: number;
  opsPerSecond: number;
  mibPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

export interface ObjectBenchReport {
  description: string;
  checks: ObjectBenchCheck[];
  /** Empty when a basic check failed: measuring a broken store tells nothing. */
  results: ObjectBenchResult[];
  ok: boolean;
}

const KIB = 1024;
const MIB = 1024 * 1024;
const RANGE_BYTES = 4 * KIB;

function percentile(sortedMs: number[], fraction: number): number {
  if (sortedMs.length === 0) return 0;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length))];
}

/** Runs `count` operations with `concurrency` in flight, timing each one. */
async function timed(
  count: number,
  concurrency: number,
  operation: (index: number) => Promise<void>,
  onDone: (done: number) => void,
): Promise<{ latenciesMs: number[]; elapsedMs: number }> {
  const latenciesMs: number[] = new Array<number>(count);
  let next = 0;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++;
        const t0 = performance.now();
        await operation(index);
        latenciesMs[index] = performance.now() - t0;
        onDone(++done);
      }
    }),
  );
  return { latenciesMs, elapsedMs: performance.now() - start };
}

function summarize(
  operation: BenchOperation,
  objectSizeBytes: number,
  bytesPerOp: number,
  run: { latenciesMs: number[]; elapsedMs: number },
): ObjectBenchResult {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const seconds = run.elapsedMs / 1000;
  const bytes = bytesPerOp * run.latenciesMs.length;
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    operation,
    objectSizeBytes,
    operations: run.latenciesMs.length,
    bytes,
    elapsedMs: Math.round(run.elapsedMs),
    opsPerSecond: Math.round((run.latenciesMs.length / seconds) * 10) / 10,
    mibPerSecond: Math.round((bytes / MIB / seconds) * 10) / 10,
    latencyMs: {
      p50: round(percentile(sorted, 0.5)),
      p90: round(percentile(sorted, 0.9)),
      p99: round(percentile(sorted, 0.99)),
      max: round(sorted[sorted.length - 1] ?? 0),
    },
  };
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function collectKeys(store: ObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix, startAfter)) keys.push(info.key);
  return keys;
}

/** The behaviour StrataFS relies on, each check independent and reported by name. */
function behaviourChecks(
  store: ObjectStore,
  base: string,
  largeObjectBytes: number,
): [string, () => Promise<void>][] {
  const small = randomBytes(100_000);
  const checks: [string, () => Promise<void>][] = [
    [
      'put then get returns the same bytes',
      async () => {
        await store.put(`${base}check/a`, small);
        expect(
          (await store.get(`${base}check/a`)).equals(small),
          'the object read back differs from what was put',
        );
      },
    ],
    [
      'ranged get returns exactly the range, clipped at the end',
      async () => {
        const mid = await store.get(`${base}check/a`, 4_000, 5_000);
        expect(mid.equals(small.subarray(4_000, 9_000)), 'bytes 4000..9000 differ');
        const tail = await store.get(`${base}check/a`, 99_990, 100);
        expect(
          tail.equals(small.subarray(99_990)),
          `a range past the end returned ${tail.length} bytes, not 10`,
        );
      },
    ],
    [
      'head reports the size, and null for a missing key',
      async () => {
        const info = await store.head(`${base}check/a`);
        expect(info?.sizeBytes === small.length, `head said ${info?.sizeBytes} bytes, not ${small.length}`);
        expect((await store.head(`${base}check/missing`)) === null, 'head of a missing key was not null');
      },
    ],
    [
      'get of a missing key fails as not found',
      async () => {
        try {
          await store.get(`${base}check/missing`);
        } catch (err) {
          expect(
            err instanceof ObjectNotFoundError,
            `failed with ${(err as Error).message} instead of "not found"`,
          );
          return;
        }
        throw new Error('get of a missing key succeeded');
      },
    ],
    [
      'list returns keys under a prefix in order, after startAfter',
      async () => {
        const names = ['b', 'a', 'c/d', 'c-e'].map((n) => `${base}list/${n}`);
        await Promise.all(names.map((key) => store.put(key, Buffer.from(key))));
        const all = await collectKeys(store, `${base}list/`);
        const expected = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(JSON.stringify(all) === JSON.stringify(expected), `listed ${JSON.stringify(all)}`);
        const after = await collectKeys(store, `${base}list/`, `${base}list/b`);
        expect(
          JSON.stringify(after) === JSON.stringify(expected.slice(2)),
          `startAfter listed ${JSON.stringify(after)}`,
        );
      },
    ],
    [
      'delete removes an object; deleting a missing key succeeds',
      async () => {
        await store.delete(`${base}check/a`);
        expect((await store.head(`${base}check/a`)) === null, 'the object is still there after delete');
        await store.delete(`${base}check/never-existed`);
      },
    ],
  ];
  if (largeObjectBytes > 0) {
    checks.push([
      `a ${formatBytes(largeObjectBytes)} object (multipart on S3) reads back whole and in ranges`,
      async () => {
        const big = randomBytes(largeObjectBytes);
        await store.put(`${base}check/large`, big);
        expect((await store.get(`${base}check/large`)).equals(big), 'the large object read back differs');
        const at = Math.floor(largeObjectBytes / 2) - 100;
        expect(
          (await store.get(`${base}check/large`, at, 200)).equals(big.subarray(at, at + 200)),
          'a range differs',
        );
        await store.delete(`${base}check/large`);
      },
    ]);
  }
  return checks;
}

/**
 * Checks that a store behaves as StrataFS needs (put/get/range/head/delete/list/large objects),
 * then measures throughput and latency of each operation per object size. Everything it writes
 * lives under a random prefix and is deleted at the end, also when a step fails.
 */
export async function runObjectBench(options: ObjectBenchOptions): Promise<ObjectBenchReport> {
  const { store } = options;
  const sizes = options.sizes ?? [4 * KIB, MIB, 4 * MIB];
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const bytesPerSize = options.bytesPerSize ?? 256 * MIB;
  const maxObjects = options.maxObjectsPerSize ?? 1000;
  const base = options.prefix ?? `objbench-${randomBytes(4).toString('hex')}/`;
  const progress = options.onProgress ?? (() => undefined);
  const report: ObjectBenchReport = { description: store.description, checks: [], results: [], ok: true };

  try {
    const checks = behaviourChecks(store, base, options.largeObjectBytes ?? 80 * MIB);
    for (const [index, [name, check]] of checks.entries()) {
      progress({ phase: `check: ${name}`, done: index, total: checks.length });
      const t0 = performance.now();
      let detail = '';
      try {
        await check();
      } catch (err) {
        detail = err instanceof Error ? err.message : String(err);
      }
      report.checks.push({ name, ok: detail === '', detail, elapsedMs: Math.round(performance.now() - t0) });
    }
    report.ok = report.checks.every((c) => c.ok);
    if (!report.ok) return report;

    for (const size of sizes) {
      const count = Math.max(16, Math.min(maxObjects, Math.floor(bytesPerSize / size)));
      const label = formatBytes(size);
      const dir = `${base}bench-${size}/`;
      const keyOf = (i: number) => `${dir}${String(i).padStart(6, '0')}`;
      // One random payload per size, sliced per object: the bench measures the store, not randomBytes.
      const payload = randomBytes(size + 64);
      const phase = async (
        operation: BenchOperation,
        bytesPerOp: number,
        op: (i: number) => Promise<void>,
      ) => {
        const run = await timed(count, concurrency, op, (done) =>
          progress({ phase: `${operation} ${label}`, done, total: count }),
        );
        report.results.push(summarize(operation, size, bytesPerOp, run));
      };
      await phase('put', size, (i) => store.put(keyOf(i), payload.subarray(i % 64, (i % 64) + size)));
      await phase('get', size, async (i) => {
        const data = await store.get(keyOf(i));
        if (data.length !== size)
          throw new Error(`get ${keyOf(i)} returned ${data.length} bytes, not ${size}`);
      });
      const rangeBytes = Math.min(RANGE_BYTES, size);
      await phase('get 4 KiB range', rangeBytes, async (i) => {
        const offset = Math.floor(Math.random() * (size - rangeBytes + 1));
        const data = await store.get(keyOf(i), offset, rangeBytes);
        if (data.length !== rangeBytes)
          throw new Error(`ranged get of ${keyOf(i)} returned ${data.length} bytes`);
      });
      await phase('head', 0, async (i) => {
        if ((await store.head(keyOf(i)))?.sizeBytes !== size) throw new Error(`head ${keyOf(i)}: wrong size`);
      });
      const listRun = { latenciesMs: [] as number[], elapsedMs: 0 };
      const t0 = performance.now();
      let listed = 0;
      for await (const _ of store.list(dir)) {
        listed++;
        progress({ phase: `list ${label}`, done: listed, total: count });
      }
      listRun.elapsedMs = performance.now() - t0;
      if (listed !== count) throw new Error(`list of ${dir} returned ${listed} keys, not ${count}`);
      // List throughput is keys per second; its "latency" is the whole listing.
      listRun.latenciesMs = new Array<number>(count).fill(listRun.elapsedMs / count);
      report.results.push(summarize('list', size, 0, listRun));
      await phase('delete', 0, (i) => store.delete(keyOf(i)));
    }
    return report;
  } finally {
    // Leave nothing behind, even after a failure half-way.
    const leftovers = await collectKeys(store, base).catch(() => [] as string[]);
    await timed(
      leftovers.length,
      concurrency,
      (i) => store.delete(leftovers[i]).catch(() => undefined),
      () => undefined,
    );
  }
}

/** The report as aligned text lines, for the CLI. */
export function formatObjectBenchReport(report: ObjectBenchReport): string[] {
  const lines = [`object store: ${report.description}`];
  for (const check of report.checks) {
    lines.push(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.ok ? '' : `: ${check.detail}`}`);
  }
  if (report.results.length > 0) {
    lines.push(
      `${'operation'.padEnd(16)} ${'size'.padStart(9)} ${'ops'.padStart(6)} ${'ops/s'.padStart(9)} ${'MiB/s'.padStart(8)}` +
        `  ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`,
    );
    for (const r of report.results) {
      lines.push(
        `${r.operation.padEnd(16)} ${formatBytes(r.objectSizeBytes).padStart(9)} ${String(r.operations).padStart(6)} ` +
          `${r.opsPerSecond.toFixed(1).padStart(9)} ${r.mibPerSecond.toFixed(1).padStart(8)}  ` +
          `${r.latencyMs.p50.toFixed(2).padStart(8)} ${r.latencyMs.p90.toFixed(2).padStart(8)} ${r.latencyMs.p99.toFixed(2).padStart(8)}`,
      );
    }
  }
  return lines;
}
