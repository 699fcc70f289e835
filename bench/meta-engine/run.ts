// Metadata engine benchmark (SQLite, in-process MetaService, no RPC).
//   node /tmp/dist-meta/bench/meta-engine/run.js [--files N] [--history-rows N,N] [--prune-rows N]
//     [--skip creates,reads,asof,prune,size] [--creates N] [--rounds N]
// Phases: creates/s with history on and off (taking turns), getattr/lookup latency, as-of
// lookup at large history sizes vs current lookup, pruning cost, engine bytes per file.
// WAL frames and CPU per change by kind: frames.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type MetaService } from '../../src/meta/index.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/meta-engine/run.js [--files N] [--history-rows N,N] [--prune-rows N]
    [--skip creates,reads,asof,prune,size] [--creates N] [--rounds N]
Phases: creates/s with history on and off (taking turns), getattr/lookup latency, as-of
lookup at large history sizes vs current lookup, pruning cost, engine bytes per file.
WAL frames and CPU per change by kind: frames.ts.`;
const root = { uid: 0, gid: 0, pid: 1 };
const ROOT = 1 as Ino;
const { values } = parseFlags(USAGE, {
  options: {
    creates: { type: 'string', default: '100000' },
    files: { type: 'string', default: '1000000' },
    'history-rows': { type: 'string', default: '1000000,10000000' },
    'prune-rows': { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    skip: { type: 'string', default: '' },
  },
});
const skip = new Set(values.skip.split(',').filter(Boolean));
const base = mkdtempSync(join(tmpdir(), 'strata-meta-bench-'));
let volumes = 0;

async function volume(history: boolean): Promise<{ svc: MetaService; path: string }> {
  const path = join(base, `v${++volumes}.db`);
  await formatVolume(`sqlite:${path}`, { name: 'bench' });
  return { svc: await openMetaService({ engineUrl: `sqlite:${path}`, history }), path };
}

/** CPU µs (user + system, all threads) per operation of the last drive(): steadier than wall time on a busy machine. */
let lastCpuUsPerOp = 0;

/** Runs `total` operations with `inFlight` concurrent callers; returns ops/s (wall clock). */
async function drive(total: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await op(next++);
    }),
  );
  const used = process.cpuUsage(cpu);
  lastCpuUsPerOp = (used.user + used.system) / total;
  return total / ((performance.now() - start) / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function createRate(history: boolean, count: number): Promise<[number, number]> {
  const { svc } = await volume(history);
  try {
    const dirs: Ino[] = [];
    for (let d = 0; d < 100; d++) dirs.push((await svc.mkdir(root, ROOT, `d${d}`, 0o755, 0)).ino);
    const rate = await drive(count, 64, (i) => svc.mknod(root, dirs[i % 100], `f${i}`, 0o100644, 0, 0o022));
    return [rate, lastCpuUsPerOp];
  } finally {
    await svc.close();
  }
}

async function benchCreates(): Promise<void> {
  const count = Number(values.creates);
  const on: number[] = [];
  const off: number[] = [];
  const cpuOn: number[] = [];
  const cpuOff: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const [a, ca] = await createRate(true, count);
    const [b, cb] = await createRate(false, count);
    on.push(a);
    cpuOn.push(ca);
    off.push(b);
    cpuOff.push(cb);
  }
  const m = { on: median(on), off: median(off), cpuOn: median(cpuOn), cpuOff: median(cpuOff) };
  console.log(
    `creates/s (64 in flight, ${fmt(count)} files in 100 dirs, group commit, default durability: WAL synchronous=NORMAL, no sync() calls):`,
  );
  console.log(
    `  history on ${fmt(m.on)}  off ${fmt(m.off)}  history cost ${((1 - m.on / m.off) * 100).toFixed(0)}%`,
  );
  console.log(`  rounds on [${on.map(fmt).join(', ')}] off [${off.map(fmt).join(', ')}]`);
  console.log(
    `  CPU per create: history on ${m.cpuOn.toFixed(1)} µs, off ${m.cpuOff.toFixed(1)} µs ` +
      `(cost ${((m.cpuOn / m.cpuOff - 1) * 100).toFixed(0)}%; 1e6/µs = ${fmt(1e6 / m.cpuOn)}/s on one idle core)`,
  );
}

/** Sequential latency; returns CPU µs per op (steadier than wall time on a shared machine). */
async function latency(label: string, n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(n, 2000); i++) await op(i); // warm
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  const used = process.cpuUsage(cpu);
  const us = ((performance.now() - start) * 1000) / n;
  const cpuUs = (used.user + used.system) / n;
  console.log(`  ${label}: ${us.toFixed(1)} µs/op wall, ${cpuUs.toFixed(1)} µs/op CPU (one at a time)`);
  return cpuUs;
}

async function benchReads(): Promise<void> {
  const { svc } = await volume(true);
  try {
    const d = await svc.mkdir(root, ROOT, 'd', 0o755, 0);
    const inos: Ino[] = [];
    await drive(20_000, 64, async (i) =>
      inos.push((await svc.mknod(root, d.ino, `f${i}`, 0o100644, 0, 0)).ino),
    );
    console.log('reads, 20,000 files, in-process service:');
    await latency('getattr', 50_000, (i) => svc.getattr(inos[i % inos.length]));
    await latency('lookup', 50_000, (i) => svc.lookup(root, d.ino, `f${i % 20_000}`));
    // What compilers and interpreters probing paths send most: names that are not there.
    await latency('lookup of a missing name', 50_000, (i) =>
      svc.lookup(root, d.ino, `m${i % 20_000}`).then(
        () => assert.fail('found a name never created'),
        () => undefined,
      ),
    );
    const rate = await drive(200_000, 64, (i) => svc.getattr(inos[i % inos.length]));
    console.log(
      `  getattr throughput, 64 in flight: ${fmt(rate)}/s (${lastCpuUsPerOp.toFixed(1)} CPU µs/op)`,
    );
    await drive(50_000, 64, (i) => svc.lookup(root, d.ino, `f${i % 20_000}`));
    console.log(`  lookup, 64 in flight: ${lastCpuUsPerOp.toFixed(1)} CPU µs/op`);
    const start = performance.now();
    let entries = 0;
    for (let r = 0; r < 5; r++) {
      let cursor = 0;
      for (;;) {
        const page = await svc.readdir(root, d.ino, cursor, 1000, false);
        if (page.length === 0) break;
        entries += page.length;
        cursor = page[page.length - 1].cursor;
      }
    }
    console.log(
      `  readdir: ${fmt(entries / ((performance.now() - start) / 1000))} entries/s (pages of 1,000)`,
    );
  } finally {
    await svc.close();
  }
}

/**
 * As-of lookups at large history sizes. 20,000 files are created, then (after instant T0)
 * renamed, so as of T0 each old name is found only through the history tables (dentry and
 * inode). The history tables are then padded with `rows` synthetic old images (10M through
 * the service would take many minutes), spread over other names and the same inodes, and
 * as-of lookups are timed against current-state lookups.
 */
async function benchAsOf(rows: number): Promise<void> {
  const { svc, path } = await volume(true);
  const names = 20_000;
  let d: Ino;
  let t0Us: number;
  try {
    d = (await svc.mkdir(root, ROOT, 'd', 0o755, 0)).ino;
    await drive(names, 64, (i) => svc.mknod(root, d, `f${i}`, 0o100644, 0, 0));
    await new Promise((resolve) => setTimeout(resolve, 20));
    t0Us = Date.now() * 1000;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await drive(names, 64, (i) => svc.rename(root, d, `f${i}`, d, `g${i}`, 0));
  } finally {
    await svc.close();
  }
  const db = new BetterSqlite3(path);
  const span = 3600 * 1_000_000; // synthetic history spread over the hour before T0
  const from = t0Us - span - 1_000_000;
  const half = Math.floor(rows / 2);
  db.exec('BEGIN');
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
     SELECT 1000 + (i % 5000), 'h' || i, ? + (i * ?) / ?, ? + ((i + 1) * ?) / ?, 2000000 + i, 32768, 1 FROM n`,
  ).run(half - 1, from, span, half, from, span, half);
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO inode_hist (ino, from_us, to_us, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns,
       mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
     SELECT 3 + (i % ${names}), ? + (i * ?) / ?, ? + ((i + 1) * ?) / ?, 33188, i % 1000, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, NULL
     FROM n`,
  ).run(rows - half - 1, from - span, span, rows - half, from - span, span, rows - half);
  db.exec('COMMIT');
  // Move the bulk insert into the database file now: a checkpoint of it running on the engine's
  // checkpoint thread during the timed lookups would be counted as their CPU.
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const again = await openMetaService({ engineUrl: `sqlite:${path}` });
  try {
    const hist = (await again.engine.stats()).historyRows;
    console.log(
      `as-of lookup with ${fmt(hist)} history rows (20,000 names, found through history as of T0):`,
    );
    const cur = await latency('current lookup', 30_000, (i) => again.lookup(root, d, `g${i % names}`));
    const past = await latency('as-of lookup', 30_000, (i) =>
      again.lookup(root, d, `f${i % names}`, { asOfUs: t0Us }),
    );
    const gone = await again.lookup(root, d, 'f0').catch(() => 'ENOENT');
    if (gone !== 'ENOENT') throw new Error('benchmark setup: the old names should be gone now');
    console.log(`  as-of / current lookup (CPU): ${(past / cur).toFixed(2)}x`);
  } finally {
    await again.close();
  }
}

/**
 * Pruning: `rows` synthetic inode images over 50,000 inodes and as many entry images over 50,000
 * directories, ending in insertion (commit) order, the older half past retention. Times each `pruneHistory(cut, 2000)` call as the service runs
 * them (again while a call deletes its full quota), then one more call over what is left.
 */
async function benchPrune(rows: number): Promise<void> {
  const { svc, path } = await volume(true);
  await svc.close();
  const db = new BetterSqlite3(path);
  const t0 = 1_700_000_000_000_000;
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO inode_hist (ino, from_us, to_us, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns,
       mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
     SELECT 100 + (i % 50000), ? + i, ? + i + 1, 33188, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, NULL FROM n`,
  ).run(rows - 1, t0, t0);
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
     SELECT 100 + (i % 50000), 'n' || (i / 50000), ? + i, ? + i + 1, 200 + i, 32768, i FROM n`,
  ).run(rows - 1, t0, t0);
  db.close();
  const again = await openMetaService({ engineUrl: `sqlite:${path}` });
  try {
    const cut = t0 + rows / 2;
    const times: number[] = [];
    let deleted = 0;
    for (;;) {
      const start = performance.now();
      const n = await again.engine.pruneHistory(cut, 2000);
      times.push(performance.now() - start);
      deleted += n;
      if (n < 2000) break;
    }
    const start = performance.now();
    const extra = await again.engine.pruneHistory(cut, 2000);
    const lastMs = performance.now() - start;
    const sorted = [...times].sort((a, b) => a - b);
    console.log(
      `prune, ${fmt(rows)} rows in each of inode_hist and dentry_hist, older half expired, calls of 2,000: ${fmt(deleted)} deleted in ` +
        `${times.length} calls, ${(times.reduce((a, b) => a + b, 0) / 1000).toFixed(2)} s, per call median ` +
        `${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms; ` +
        `next call ${extra} rows in ${lastMs.toFixed(1)} ms`,
    );
  } finally {
    await again.close();
  }
}

async function benchSize(files: number): Promise<void> {
  const { svc, path } = await volume(true);
  try {
    const dirs: Ino[] = [];
    for (let i = 0; i < 1000; i++) dirs.push((await svc.mkdir(root, ROOT, `d${i}`, 0o755, 0)).ino);
    const rate = await drive(files, 64, (i) =>
      svc.mknod(root, dirs[i % 1000], `file-${i}.dat`, 0o100644, 0, 0o022),
    );
    const stats = await svc.engine.stats();
    await svc.close();
    const db = new BetterSqlite3(path);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const pages = db.pragma('page_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    console.log(`${fmt(files)} files in 1,000 dirs (history on), created at ${fmt(rate)}/s:`);
    console.log(
      `  engine ${fmt(pages * pageSize)} bytes = ${((pages * pageSize) / files).toFixed(0)} B/file, ` +
        `history rows ${fmt(stats.historyRows)}, RSS ${fmt(process.memoryUsage().rss / 2 ** 20)} MiB`,
    );
  } catch (error) {
    await svc.close();
    throw error;
  }
}

try {
  if (!skip.has('creates')) await benchCreates();
  if (!skip.has('reads')) await benchReads();
  if (!skip.has('asof')) for (const rows of values['history-rows'].split(',')) await benchAsOf(Number(rows));
  if (!skip.has('prune')) await benchPrune(Number(values['prune-rows']));
  if (!skip.has('size')) await benchSize(Number(values.files));
} finally {
  rmSync(base, { recursive: true, force: true });
}
