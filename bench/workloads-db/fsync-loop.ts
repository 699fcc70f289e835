// What a database's commit costs on the mount, without the database: one process writing and
// fdatasync'ing in a loop, on `strata up` (default settings) and on the local disk, taking
// turns in one invocation. Two patterns:
//   wal:      8 KiB pwrite + fdatasync at increasing offsets of a 16 MiB file that was first
//             written with zeros and synced (PostgreSQL's WAL segment, wal_init_zero), wrapping
//   scatter:  4 KiB pwrite + fdatasync at random 4 KiB-aligned offsets of a 64 MiB file
//             written the same way first (a data file's page writes)
// Reports fsyncs/s on each side, their ratio, and the mount process's CPU (utime + stime, all
// threads) per fsync. `--old DIST` adds a third side: a `strata up` of another build (say the
// commit before a change, built into its own dir), so before and after share one invocation.
// Usage: node DIST/bench/workloads-db/fsync-loop.js [--seconds 5] [--rounds 3] [--only wal]
//        [--old /tmp/dist-old] [--old-env NAME=VALUE] [--local /tmp] [--profile DIR]
// Run it under `flock /tmp/strata-bench.lock` on a shared machine.
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { cleanup, isMounted, StrataProcess, tempDir } from '../../test/e2e/harness.js';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/workloads-db/fsync-loop.js [--seconds 5] [--rounds 3] [--only wal]
       [--old /tmp/dist-old] [--old-env NAME=VALUE] [--local /tmp] [--profile DIR]
--old DIST adds a third side: a \`strata up\` of another build (say the commit before a change,
built into its own dir), so before and after share one invocation. --old-env NAME=VALUE: that
side runs with this setting (the same build unless --old).
Run it under \`flock /tmp/strata-bench.lock\` on a shared machine.`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string', default: '' },
    old: { type: 'string', default: '' },
    'old-env': { type: 'string', default: '' },
    local: { type: 'string', default: '/tmp' },
    profile: { type: 'string', default: '' },
  },
});

interface Pattern {
  name: string;
  fileBytes: number;
  writeBytes: number;
  /** The offset of the n-th write. */
  offset: (n: number, random: () => number) => number;
}

const MIB = 1024 * 1024;
const patterns: Pattern[] = [
  { name: 'wal', fileBytes: 16 * MIB, writeBytes: 8192, offset: (n) => (n * 8192) % (16 * MIB) },
  {
    name: 'scatter',
    fileBytes: 64 * MIB,
    writeBytes: 4096,
    offset: (_n, random) => Math.floor(random() * ((64 * MIB) / 4096)) * 4096,
  },
];

/** A small seeded generator, so every side writes the same offsets. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
}

/** User and system CPU of a process so far, in µs (USER_HZ is 100 on Linux). */
function cpuUs(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10_000, sys: Number(fields[12]) * 10_000 };
}

/** Writes the whole file with zeros and syncs it, as a database preallocating a segment does. */
function preallocate(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    const zeros = Buffer.alloc(MIB);
    for (let done = 0; done < bytes; done += zeros.length) writeSync(fd, zeros, 0, zeros.length, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Runs the pattern for `seconds` on a fresh file in `dir`; returns fsyncs done and the time taken. */
function runPattern(dir: string, pattern: Pattern, seconds: number): { fsyncs: number; elapsedMs: number } {
  const path = join(dir, `${pattern.name}.dat`);
  preallocate(path, pattern.fileBytes);
  const fd = openSync(path, 'r+');
  const data = Buffer.alloc(pattern.writeBytes, 0x5a);
  const random = seeded(42);
  let fsyncs = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  try {
    while (performance.now() < end) {
      data.writeUInt32LE(fsyncs, 0);
      writeSync(fd, data, 0, data.length, pattern.offset(fsyncs, random));
      fdatasyncSync(fd);
      fsyncs++;
    }
    return { fsyncs, elapsedMs: performance.now() - start };
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

interface Side {
  name: string;
  dir: string;
  proc?: StrataProcess;
}

async function main(): Promise<void> {
  const seconds = Number(flags.seconds);
  const rounds = Number(flags.rounds);
  const only = flags.only;
  const oldDist = flags.old;
  const localBase = flags.local;
  const root = tempDir('fsyncloop');
  const local = mkdtempSync(join(localBase, 'strata-dbperf-local-'));
  const sides: Side[] = [{ name: 'local', dir: local }];
  const procs: StrataProcess[] = [];
  const mounts: string[] = [];
  try {
    const profileDir = flags.profile;
    // A CPU profile of the (new) mount's threads, written when it stops.
    const profile = profileDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
    const builds: Array<[string, Record<string, string>, string[]]> = [['strata', {}, profile]];
    // --old-env NAME=VALUE: the second side runs with this setting (the same build unless --old).
    const oldEnv = flags['old-env'];
    if (oldDist !== '' || oldEnv !== '') {
      const env: Record<string, string> = oldDist === '' ? {} : { STRATA_DIST_DIR: oldDist };
      if (oldEnv !== '') env[oldEnv.slice(0, oldEnv.indexOf('='))] = oldEnv.slice(oldEnv.indexOf('=') + 1);
      builds.push(['old', env, []]);
    }
    for (const [name, env, flags] of builds) {
      const mnt = join(root, `mnt-${name}`);
      mounts.push(mnt);
      // Another build (STRATA_DIST_DIR in env) or node flags (a CPU profile, written on a clean exit).
      mkdirSync(mnt, { recursive: true });
      const proc = new StrataProcess(['up', join(root, `data-${name}`), mnt], env, flags);
      procs.push(proc);
      await proc.waitFor(() => isMounted(mnt) && proc.output.includes(`mounted at ${mnt}`), `${mnt} mounted`);
      sides.push({ name, dir: mnt, proc });
    }
    const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(
      `fsync loop, ${seconds} s per run, ${rounds} rounds; ${new Date().toISOString()}; load ${load()}`,
    );
    const header = ['pattern', 'round', ...sides.map((s) => `${s.name}/s`)];
    for (const s of sides.slice(1))
      header.push(`${s.name} ratio`, `${s.name} µs/fsync`, `${s.name} of it sys`);
    console.log(header.join('\t'));
    for (const pattern of patterns) {
      if (only !== '' && !pattern.name.includes(only)) continue;
      for (let round = 1; round <= rounds; round++) {
        // Rotate the order each round so a drift in machine load favours no side.
        const order = sides.map((_, i) => sides[(i + round - 1) % sides.length]);
        const result = new Map<string, { rate: number; cpuUsPerFsync: number; sysShare: number }>();
        for (const side of order) {
          const before = side.proc ? cpuUs(side.proc.pid) : { user: 0, sys: 0 };
          const { fsyncs, elapsedMs } = runPattern(side.dir, pattern, seconds);
          const after = side.proc ? cpuUs(side.proc.pid) : before;
          const userUs = after.user - before.user;
          const sysUs = after.sys - before.sys;
          result.set(side.name, {
            rate: (fsyncs * 1000) / elapsedMs,
            cpuUsPerFsync: (userUs + sysUs) / fsyncs,
            sysShare: sysUs / (userUs + sysUs),
          });
        }
        const base = result.get('local')?.rate ?? NaN;
        const row = [
          pattern.name,
          String(round),
          ...sides.map((s) => result.get(s.name)?.rate.toFixed(0) ?? ''),
        ];
        for (const s of sides.slice(1)) {
          const r = result.get(s.name);
          row.push(
            ((r?.rate ?? NaN) / base).toFixed(3),
            (r?.cpuUsPerFsync ?? NaN).toFixed(0),
            `${((r?.sysShare ?? NaN) * 100).toFixed(0)}%`,
          );
        }
        console.log(row.join('\t'));
      }
    }
    console.log(`load after: ${load()}`);
  } finally {
    // SIGTERM (a profile is written on a clean exit), SIGKILL after 20 s.
    for (const proc of procs) await proc.stop(20_000);
    await cleanup([], mounts, [root, local]);
  }
}

await main();
