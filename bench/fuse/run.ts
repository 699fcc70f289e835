// FUSE layer benchmark: StrataFS's FUSE layer serving the test MemFs (every request
// through an await, as the VFS will be) against bindfs over tmpfs (libfuse3, C), taking
// turns in the same run so both see the same machine noise. Not a test: run it by hand.
//
// Build with `npx tsc -p . --outDir /tmp/dist-fuse`; flags: USAGE below (or --help).
//
// Prints a markdown table for bench/RESULTS.md: medians, ratio strata/bindfs, and the
// server's CPU per operation (from /proc/PID/stat, user+system). Each sample mounts
// afresh, warms up (see warmUp), prepares untimed, then measures.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { kernelUringEnabled, setKernelUring } from '../../src/fuse/ring.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/fuse/run.js [--rounds 3] [--quick] [--only lstat,unlink] [--io-uring] [--spin-us N] [--cpus LIST]

--only keeps the rows whose name contains one of the comma-separated words.
--io-uring adds a third target taking turns with the two others: the same server over
FUSE-over-io_uring (the fuse module's enable_uring is turned on, and restored at the end).
--spin-us N sets the StrataFS server's SessionOptions.pollSpinUs (default: the session's).
--cpus LIST (taskset syntax, e.g. 0) runs the servers and the workloads on those CPUs only:
with one CPU, the program and its file system take turns on one core, as in a container
limited to one CPU, where a server polling for the next request keeps the caller from running.`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'io-uring': { type: 'boolean', default: false },
    'spin-us': { type: 'string' },
    cpus: { type: 'string' },
  },
});
const rounds = Number(flags.rounds) || 3;
const quick = flags.quick;
const only = flags.only?.split(',');
const withUring = flags['io-uring'];
const spinUs = flags['spin-us'];
const pinnedCpus = flags.cpus;
/** A command and its arguments, under `taskset -c LIST` when --cpus is given (taskset execs: same pid). */
const pinned = (command: string, argv: string[]): [string, string[]] =>
  pinnedCpus === undefined ? [command, argv] : ['taskset', ['-c', pinnedCpus, command, ...argv]];
const uringWasEnabled = kernelUringEnabled();
const here = dirname(fileURLToPath(import.meta.url));
const serverScript = join(here, '..', '..', 'test', 'fuse', 'serve-memfs.js');
const sourceDir = findSourceDir();
const work = mkdtempSync('/tmp/strata-fuse-bench-');
const TICKS_PER_SECOND = 100;

function findSourceDir(): string {
  for (const candidate of [join(here), join(process.cwd(), 'bench', 'fuse'), '/work/main/bench/fuse']) {
    try {
      readFileSync(join(candidate, 'fsops.c'));
      return candidate;
    } catch {
      // try the next place
    }
  }
  throw new Error('bench/fuse/fsops.c not found; run from the repository root');
}

interface MountConfig {
  timeoutsZero?: boolean;
  directIo?: boolean;
}

interface Mounted {
  mountpoint: string;
  pid: number;
  stop(): Promise<void>;
}

type Target = 'strata' | 'uring' | 'bindfs';
const targets: Target[] = withUring ? ['strata', 'uring', 'bindfs'] : ['strata', 'bindfs'];

function isMounted(path: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === path);
}

async function waitFor(what: string, check: () => boolean, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    if (child.exitCode !== null) throw new Error(`${what}: server exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what}: not mounted after 10 s`);
}

let mountSeq = 0;
async function mountTarget(target: Target, config: MountConfig): Promise<Mounted> {
  const mountpoint = join(work, `mnt-${target}-${mountSeq++}`);
  mkdirSync(mountpoint);
  let child: ChildProcess;
  let backing: string | undefined;
  if (target !== 'bindfs') {
    // bindfs (libfuse without lock or flush handlers) leaves locks to the kernel and
    // answers the first FLUSH ENOSYS; the MemFs then does the same (MemFsOptions.locks).
    const flags = ['--no-locks'];
    if (config.timeoutsZero) flags.push('--timeouts-zero');
    if (config.directIo) flags.push('--direct-io');
    if (target === 'uring') flags.push('--io-uring');
    if (spinUs !== undefined) flags.push('--spin-us', spinUs);
    child = spawn(...pinned(process.execPath, [serverScript, mountpoint, ...flags]), {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    await waitFor('strata', () => out.includes('ready'), child);
    if (target === 'uring' && !out.includes('io_uring')) {
      child.kill('SIGTERM');
      throw new Error('the server did not get an io_uring ring from the kernel (see its log above)');
    }
  } else {
    backing = join(work, `tmpfs-${mountSeq}`);
    mkdirSync(backing);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3g', 'tmpfs', backing]);
    const options = ['allow_other'];
    if (config.timeoutsZero) options.push('entry_timeout=0', 'attr_timeout=0', 'negative_timeout=0');
    if (config.directIo) options.push('direct_io');
    child = spawn(...pinned('bindfs', ['-f', '-o', options.join(','), backing, mountpoint]), {
      stdio: 'inherit',
    });
    await waitFor('bindfs', () => isMounted(mountpoint), child);
  }
  return {
    mountpoint,
    pid: child.pid ?? 0,
    async stop() {
      const closed = new Promise((resolve) => child.once('close', resolve));
      if (isMounted(mountpoint)) execFileSync('umount', ['-l', mountpoint]);
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      if (backing) {
        execFileSync('umount', ['-l', backing]);
        rmSync(backing, { recursive: true, force: true });
      }
      rmSync(mountpoint, { recursive: true, force: true });
    },
  };
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

interface Sample {
  value: number;
  cpuUsPerOp: number;
}

/** One measurement: `prepare` untimed, then `measure` returns [value, operations] and server CPU is read around it. */
interface Row {
  name: string;
  unit: string;
  config: MountConfig;
  prepare?(mnt: string): void;
  measure(mnt: string): [value: number, operations: number];
}

const fsops = join(work, 'fsops');
execFileSync('gcc', ['-O2', '-o', fsops, join(sourceDir, 'fsops.c')]);
const run = (command: string, argv: string[]) =>
  execFileSync(...pinned(command, argv), { encoding: 'utf8', maxBuffer: 1 << 26 });
const timed = (fn: () => void): number => {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
};
const dropCaches = () => execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);

const files = quick ? 2000 : 10_000;
const seqMiB = quick ? 256 : 1024;
const fioSeconds = quick ? 3 : 5;
const lstatSeconds = quick ? 2 : 3;

function fioIops(mnt: string, jobs: number): [number, number] {
  const json = run('fio', [
    '--name=randread',
    `--filename=${mnt}/fio`,
    '--rw=randread',
    '--bs=4k',
    '--direct=1',
    '--ioengine=psync',
    `--numjobs=${jobs}`,
    `--runtime=${fioSeconds}`,
    '--time_based',
    '--group_reporting',
    '--size=256m',
    '--output-format=json',
  ]);
  const parsed = JSON.parse(json.slice(json.indexOf('{'))) as {
    jobs: Array<{ read: { iops: number; total_ios: number } }>;
  };
  return [parsed.jobs[0].read.iops, parsed.jobs[0].read.total_ios];
}

const rows: Row[] = [
  {
    name: `lstat, ${files} files, entry/attr timeouts 0`,
    unit: 'ops/s',
    config: { timeoutsZero: true },
    prepare: (mnt) => run(fsops, ['populate', mnt, String(files)]),
    measure: (mnt) => {
      const opsPerSecond = Number(run(fsops, ['lstat', mnt, String(files), String(lstatSeconds)]));
      return [opsPerSecond, opsPerSecond * lstatSeconds];
    },
  },
  ...[1, 4].flatMap((procs): Row[] => [
    {
      name: `create+close, ${procs} process${procs > 1 ? 'es' : ''}`,
      unit: 'ops/s',
      config: {},
      measure: (mnt) => [Number(run(fsops, ['create', mnt, String(files), String(procs)])), files],
    },
    {
      name: `unlink, ${procs} process${procs > 1 ? 'es' : ''}`,
      unit: 'ops/s',
      config: {},
      prepare: (mnt) => run(fsops, ['create', mnt, String(files), String(procs)]),
      measure: (mnt) => [Number(run(fsops, ['unlink', mnt, String(files), String(procs)])), files],
    },
  ]),
  ...[false, true].flatMap((directIo): Row[] => [
    {
      name: `sequential write ${seqMiB} MiB, dd bs=1M${directIo ? ', direct_io' : ''}`,
      unit: 'MiB/s',
      config: { directIo },
      measure: (mnt) => {
        const seconds = timed(() =>
          run('dd', ['if=/dev/zero', `of=${mnt}/big`, 'bs=1M', `count=${seqMiB}`, 'status=none']),
        );
        return [seqMiB / seconds, seqMiB];
      },
    },
    {
      name: `sequential read ${seqMiB} MiB, caches dropped${directIo ? ', direct_io' : ''}`,
      unit: 'MiB/s',
      config: { directIo },
      prepare: (mnt) => {
        run('dd', ['if=/dev/zero', `of=${mnt}/big`, 'bs=1M', `count=${seqMiB}`, 'status=none']);
        dropCaches();
      },
      measure: (mnt) => {
        const seconds = timed(() => run('dd', [`if=${mnt}/big`, 'of=/dev/null', 'bs=1M', 'status=none']));
        return [seqMiB / seconds, seqMiB];
      },
    },
  ]),
  ...[1, 4].map((jobs): Row => ({
    name: `fio 4 KiB random read, O_DIRECT, numjobs ${jobs}`,
    unit: 'IOPS',
    config: {},
    prepare: (mnt) => run('dd', ['if=/dev/urandom', `of=${mnt}/fio`, 'bs=1M', 'count=256', 'status=none']),
    measure: (mnt) => fioIops(mnt, jobs),
  })),
];

/**
 * A short mixed load before each measurement, on both targets: a fresh Node server would
 * otherwise pay its JIT compilation (on V8's worker threads) inside the measured window,
 * which a long-running mount pays once.
 */
function warmUp(mnt: string): void {
  const dir = join(mnt, 'warm');
  mkdirSync(dir);
  run(fsops, ['create', dir, '3000', '1']);
  run(fsops, ['lstat', join(dir, 'p0'), '3000', '1']);
  run(fsops, ['unlink', dir, '3000', '1']);
  run('dd', ['if=/dev/zero', `of=${dir}/data`, 'bs=1M', 'count=64', 'status=none']);
  run('dd', [`if=${dir}/data`, 'of=/dev/null', 'bs=1M', 'status=none']);
  rmSync(dir, { recursive: true, force: true });
}

async function sample(target: Target, row: Row): Promise<Sample> {
  const mounted = await mountTarget(target, row.config);
  try {
    warmUp(mounted.mountpoint);
    row.prepare?.(mounted.mountpoint);
    const cpuBefore = cpuSeconds(mounted.pid);
    const [value, operations] = row.measure(mounted.mountpoint);
    const cpu = cpuSeconds(mounted.pid) - cpuBefore;
    return { value, cpuUsPerOp: (cpu * 1e6) / operations };
  } finally {
    await mounted.stop();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const fmt = (value: number) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1));

async function main(): Promise<void> {
  const lines = withUring
    ? [
        `| row | strata | strata io_uring | bindfs | ratio | io_uring ratio | strata CPU µs/op | io_uring CPU µs/op | bindfs CPU µs/op |`,
        `|---|---|---|---|---|---|---|---|---|`,
      ]
    : [
        `| row | strata | bindfs | ratio | strata CPU µs/op | bindfs CPU µs/op |`,
        `|---|---|---|---|---|---|`,
      ];
  const loads: number[] = [loadavg()[0]];
  for (const row of rows) {
    if (only && !only.some((word) => row.name.includes(word))) continue;
    const results: Record<Target, Sample[]> = { strata: [], uring: [], bindfs: [] };
    for (let round = 0; round < rounds; round++) {
      // Rotate who goes first so no target always gets the quieter slot.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      for (const target of order) results[target].push(await sample(target, row));
    }
    const value = (target: Target) => median(results[target].map((s) => s.value));
    const cpu = (target: Target) => median(results[target].map((s) => s.cpuUsPerOp)).toFixed(1);
    const [strata, bindfs] = [value('strata'), value('bindfs')];
    const ratio = (of: number) => `${(of / bindfs).toFixed(2)}×`;
    lines.push(
      withUring
        ? `| ${row.name} (${row.unit}) | ${fmt(strata)} | ${fmt(value('uring'))} | ${fmt(bindfs)} | ${ratio(strata)} | ` +
            `${ratio(value('uring'))} | ${cpu('strata')} | ${cpu('uring')} | ${cpu('bindfs')} |`
        : `| ${row.name} (${row.unit}) | ${fmt(strata)} | ${fmt(bindfs)} | ${ratio(strata)} | ${cpu('strata')} | ${cpu('bindfs')} |`,
    );
    loads.push(loadavg()[0]);
    console.error(
      `${row.name}: ` +
        targets.map((t) => `${t} ${results[t].map((s) => fmt(s.value)).join(' ')}`).join(' / '),
    );
  }
  console.log(
    `\n${new Date().toISOString()}, ${cpus().length} vCPU${pinnedCpus === undefined ? '' : ` (servers and workloads on CPUs ${pinnedCpus})`}, ` +
      `${rounds} rounds (medians), node ${process.version}, ` +
      `1-minute load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}\n`,
  );
  console.log(lines.join('\n'));
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
  if (withUring && !uringWasEnabled) setKernelUring(false);
}
