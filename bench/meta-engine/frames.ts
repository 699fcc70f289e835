// WAL frames and CPU per metadata change (SQLite engine, in-process MetaService, no RPC).
//   node DIST/bench/meta-engine/frames.js [--files 3000] [--changes 30] [--cpu-changes 3000]
// Frames: `--changes` serial changes (each its own group commit, as on a mount) in a directory
// of `--files` files; the WAL is emptied before each kind, then every frame's page is attributed
// to its table or index with SQLite's `dbstat`. A frame is one 4 KiB page write (plus a 24-byte
// header), so frames per change is what a commit costs the disk. CPU: `--cpu-changes` serial
// changes of each kind, `process.cpuUsage` (all threads) per change.
import { mkdtempSync, openSync, readSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type MetaService } from '../../src/meta/index.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/meta-engine/frames.js [--files 3000] [--changes 30] [--cpu-changes 3000]
Frames: \`--changes\` serial changes (each its own group commit, as on a mount) in a directory
of \`--files\` files; the WAL is emptied before each kind, then every frame's page is attributed
to its table or index with SQLite's \`dbstat\`. CPU: \`--cpu-changes\` serial changes of each
kind, \`process.cpuUsage\` (all threads) per change.`;
const root = { uid: 0, gid: 0, pid: 1 };
const ROOT = 1 as Ino;
const { values } = parseFlags(USAGE, {
  options: {
    files: { type: 'string', default: '3000' },
    changes: { type: 'string', default: '30' },
    'cpu-changes': { type: 'string', default: '3000' },
  },
});
const files = Number(values.files);
const changes = Number(values.changes);
const cpuChanges = Number(values['cpu-changes']);
const base = mkdtempSync(join(tmpdir(), 'strata-historykeys-frames-'));

type Kind = 'create' | 'setattr' | 'rename' | 'unlink';
const KINDS: Kind[] = ['create', 'setattr', 'rename', 'unlink'];

/** One change of `kind` on the i-th name; the kinds run in this order, so each finds what it needs. */
function change(svc: MetaService, dir: Ino, inos: Ino[], kind: Kind, i: number): Promise<unknown> {
  switch (kind) {
    case 'create':
      return svc.mknod(root, dir, `n${i}`, 0o100644, 0, 0o022).then((a) => inos.push(a.ino));
    case 'setattr':
      return svc.setattr(root, inos[i], { mode: 0o600 });
    case 'rename':
      return svc.rename(root, dir, `n${i}`, dir, `r${i}`, 0);
    case 'unlink':
      return svc.unlink(root, dir, `r${i}`);
  }
}

/** Page number of every frame in the WAL (frame header: page number, big-endian, first 4 bytes). */
function walPages(walPath: string): number[] {
  const fd = openSync(walPath, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 32) return [];
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    const pageSizeBytes = header.readUInt32BE(8);
    const pages: number[] = [];
    const frameHeader = Buffer.alloc(24);
    for (let at = 32; at + 24 + pageSizeBytes <= size; at += 24 + pageSizeBytes) {
      readSync(fd, frameHeader, 0, 24, at);
      pages.push(frameHeader.readUInt32BE(0));
    }
    return pages;
  } finally {
    closeSync(fd);
  }
}

/** Frames in the WAL per change, by the table or index each frame's page belongs to. */
function attribute(side: BetterSqlite3.Database, path: string, changes: number): string {
  const pages = walPages(path + '-wal');
  const owner = new Map<number, string>();
  for (const r of side.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[])
    owner.set(r.pageno, r.name);
  const byName = new Map<string, number>();
  for (const p of pages) {
    const name = owner.get(p) ?? (p === 1 ? 'header' : 'free');
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  const parts = [...byName]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${(n / changes).toFixed(2)}`)
    .join(', ');
  return `${(pages.length / changes).toFixed(2)} frames/change (${parts})`;
}

async function measure(history: boolean): Promise<void> {
  const path = join(base, `frames-${history ? 'on' : 'off'}.db`);
  await formatVolume(`sqlite:${path}`, { name: 'bench' });
  const svc = await openMetaService({ engineUrl: `sqlite:${path}`, history, checkpointThread: false });
  const side = new BetterSqlite3(path);
  try {
    const dir = (await svc.mkdir(root, ROOT, 'd', 0o755, 0)).ino;
    for (let i = 0; i < files; i++) await svc.mknod(root, dir, `f${i}`, 0o100644, 0, 0o022);
    const inos: Ino[] = [];
    console.log(
      `history ${history ? 'on' : 'off'}: ${changes} serial changes each in a ${files}-file directory`,
    );
    for (const kind of KINDS) {
      side.pragma('wal_checkpoint(TRUNCATE)');
      for (let i = 0; i < changes; i++) await change(svc, dir, inos, kind, i);
      console.log(`  ${kind}: ${attribute(side, path, changes)}`);
    }
    // Group commit as under load: creates 64 in flight over 100 directories (64 per commit).
    const dirs: Ino[] = [];
    for (let d = 0; d < 100; d++) dirs.push((await svc.mkdir(root, ROOT, `b${d}`, 0o755, 0)).ino);
    const batched = async (from: number, count: number): Promise<void> => {
      let next = from;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < from + count) {
            const i = next++;
            await svc.mknod(root, dirs[i % 100], `f${i}`, 0o100644, 0, 0o022);
          }
        }),
      );
    };
    await batched(0, 20_000);
    side.pragma('wal_checkpoint(TRUNCATE)');
    await batched(20_000, 640);
    console.log(`  create, 64 in flight in 100 dirs (after 20,000): ${attribute(side, path, 640)}`);
    // CPU per change: the same kinds again on fresh names, many more of them.
    const cpuInos: Ino[] = [];
    const cpuDir = (await svc.mkdir(root, ROOT, 'cpu', 0o755, 0)).ino;
    for (let i = 0; i < files; i++) await svc.mknod(root, cpuDir, `f${i}`, 0o100644, 0, 0o022);
    const line: string[] = [];
    for (const kind of KINDS) {
      const cpu = process.cpuUsage();
      const start = performance.now();
      for (let i = 0; i < cpuChanges; i++) await change(svc, cpuDir, cpuInos, kind, i);
      const used = process.cpuUsage(cpu);
      const wallUs = ((performance.now() - start) * 1000) / cpuChanges;
      line.push(`${kind} ${((used.user + used.system) / cpuChanges).toFixed(1)} (wall ${wallUs.toFixed(0)})`);
    }
    console.log(`  CPU µs per serial change, ${cpuChanges} each: ${line.join(', ')}`);
  } finally {
    side.close();
    await svc.close();
  }
}

try {
  await measure(true);
  await measure(false);
} finally {
  rmSync(base, { recursive: true, force: true });
}
