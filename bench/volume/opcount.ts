// What one file operation costs on a mounted volume: the FUSE requests the kernel sends, the
// metadata calls the VFS makes (with their mean wall time, i.e. how long the request waited on
// them) and the object puts, per file, plus the mount process's CPU per file. Runs an embedded
// volume in this process so it can count through the classes' prototypes; the workload runs in
// a child process.
// Usage: node DIST/bench/volume/opcount.js [--workload lstat|create|unlink|write4k|read4k|reread4k|
//   seqwrite|untar]
//   [--files N (MiB for seqwrite)] [--strace] [--strace-threads]
// --strace-threads: the sync calls (fsync, fdatasync, rename, openat, mkdir) per file, split into
// the main thread (FUSE loop, SQLite commits) and the others (libuv's pool, which runs a put's
// file calls, and the SQLite checkpointer's worker), to say who issues each fsync.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/index.js';
import { MetaService } from '../../src/meta/index.js';
import { FileObjectStore } from '../../src/object/backends/file.js';
import { Vfs } from '../../src/vfs/index.js';
import { startEmbedded, type MountedVolume } from '../../src/volume/index.js';
import { flagError, parseFlags } from '../common/args.js';

const USAGE = `Usage: node DIST/bench/volume/opcount.js [--workload lstat|create|unlink|write4k|read4k|reread4k|
  seqwrite|untar]
  [--files N (MiB for seqwrite)] [--strace] [--strace-threads]
--strace-threads: the sync calls (fsync, fdatasync, rename, openat, mkdir) per file, split into
the main thread (FUSE loop, SQLite commits) and the others (libuv's pool, which runs a put's
file calls, and the SQLite checkpointer's worker), to say who issues each fsync.`;
const { values: flags } = parseFlags(USAGE, {
  options: {
    workload: { type: 'string', default: 'unlink' },
    files: { type: 'string', default: '1000' },
    strace: { type: 'boolean', default: false },
    'strace-threads': { type: 'boolean', default: false },
  },
});

interface Tally {
  count: number;
  wallUs: number;
}

const tallies = new Map<string, Tally>();
let counting = false;

/** Replaces every async method of `proto` by one that counts calls and their wall time. */
function instrument(proto: object, prefix: string, names: readonly string[]): void {
  const target = proto as Record<string, unknown>;
  for (const name of names) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    target[name] = function (this: unknown, ...args: unknown[]): unknown {
      if (!counting) return (original as (...a: unknown[]) => unknown).apply(this, args);
      const key = `${prefix}.${name}`;
      const start = process.hrtime.bigint();
      const settle = (): void => {
        const tally = tallies.get(key) ?? { count: 0, wallUs: 0 };
        tally.count++;
        tally.wallUs += Number(process.hrtime.bigint() - start) / 1000;
        tallies.set(key, tally);
      };
      const result = (original as (...a: unknown[]) => unknown).apply(this, args);
      if (result instanceof Promise) result.then(settle, settle);
      else settle();
      return result;
    };
  }
}

function methodsOf(proto: object): string[] {
  // Plain methods only: reading a getter off the prototype would run it without an instance.
  return Object.getOwnPropertyNames(proto).filter(
    (n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(proto, n)?.value === 'function',
  );
}

/** Runs a shell script without blocking the event loop (the FUSE server runs on it). */
function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`step failed (${code}): ${script}`)),
    );
  });
}

function py(code: string): Promise<void> {
  return sh(`python3 - <<'PY'\nimport os\n${code}\nPY`);
}

interface Workload {
  setup: (dir: string, files: number) => Promise<void>;
  run: (dir: string, files: number) => Promise<void>;
  /** Files the run touches (for per-file figures); defaults to --files. */
  files?: () => number;
}

const createN = (dir: string, files: number): Promise<void> =>
  py(`for i in range(${files}): os.close(os.open('${dir}/f%d' % i, os.O_CREAT | os.O_WRONLY, 0o644))`);

const untarTar = '/tmp/strata-volume-opcount.tar';
const workloads: Record<string, Workload> = {
  lstat: {
    setup: createN,
    run: async (dir, files) => {
      await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
      await py(`for i in range(${files}): os.lstat('${dir}/f%d' % i)`);
    },
  },
  create: { setup: async () => undefined, run: createN },
  unlink: {
    setup: createN,
    run: (dir, files) => py(`for i in range(${files}): os.unlink('${dir}/f%d' % i)`),
  },
  write4k: {
    setup: async () => undefined,
    run: (dir, files) =>
      py(
        `b = os.urandom(4096)\nfor i in range(${files}):\n    with open('${dir}/f%d' % i, 'wb') as f: f.write(b)`,
      ),
  },
  read4k: {
    setup: (dir, files) =>
      py(
        `b = os.urandom(4096)\nfor i in range(${files}):\n    with open('${dir}/f%d' % i, 'wb') as f: f.write(b)`,
      ),
    run: async (dir, files) => {
      await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
      await py(
        `for i in range(${files}):\n    with open('${dir}/f%d' % i, 'rb') as f: assert len(f.read()) == 4096`,
      );
    },
  },
  reread4k: {
    setup: async (dir, files) => {
      await workloads.read4k.setup(dir, files);
      await workloads.read4k.run(dir, files);
    },
    run: (dir, files) => workloads.read4k.run(dir, files),
  },
  seqwrite: {
    setup: async () => undefined,
    run: (dir, files) => sh(`dd if=/dev/zero of=${dir}/big bs=1M count=${files} conv=fsync status=none`),
  },
  untar: {
    setup: () => sh(`[ -f ${untarTar} ] || tar -C /usr/include -cf ${untarTar} linux`),
    run: (dir) => sh(`tar -C ${dir} -xf ${untarTar}`),
  },
};

async function main(): Promise<void> {
  const workloadName = flags.workload;
  const files = Number(flags.files);
  const workload = workloads[workloadName];
  if (workload === undefined)
    flagError(`unknown --workload ${workloadName}; one of ${Object.keys(workloads).join(', ')}`);
  instrument(Vfs.prototype, 'fuse', methodsOf(Vfs.prototype));
  instrument(MetaService.prototype, 'meta', methodsOf(MetaService.prototype));
  instrument(FileObjectStore.prototype, 'store', ['put', 'get', 'delete']);
  const root = mkdtempSync(join(tmpdir(), 'strata-volume-opcount-'));
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  let volume: MountedVolume | undefined;
  // Interrupted (Ctrl-C, or `| head` closing stdout): unmount before leaving, never leave a dead mount.
  const bail = (): void => {
    void (volume?.stop() ?? Promise.resolve()).finally(() => {
      rmSync(root, { recursive: true, force: true });
      process.exit(1);
    });
  };
  process.once('SIGINT', bail).once('SIGTERM', bail);
  process.stdout.once('error', bail);
  try {
    volume = await startEmbedded({
      dataDir: join(root, 'data'),
      mountpoint: mnt,
      volumeName: 'opcount',
      config: resolveConfig().config,
      log: (m) => console.error(m),
    });
    const dir = join(mnt, 'w');
    // Never a synchronous call on the mount from here: this thread is the one serving it.
    await sh(`mkdir ${dir}`);
    await workload.setup(dir, files);
    // --strace: count this process's system calls (all threads) during the measured part only.
    const byThread = flags['strace-threads'];
    const straceDir = join(root, 'strace');
    if (byThread) mkdirSync(straceDir);
    const strace =
      flags.strace || byThread
        ? spawn(
            'strace',
            // Every thread by id, not -f: -f would also follow the workload's child processes.
            (byThread
              ? ['-ff', '-o', join(straceDir, 't'), '-e', 'trace=fsync,fdatasync,rename,openat,mkdir']
              : ['-c', '-e', 'trace=fsync,fdatasync,pwrite64,write,writev,rename,openat']
            ).concat(...readdirSync(`/proc/${process.pid}/task`).map((t) => ['-p', t])),
            { stdio: ['ignore', 'inherit', 'inherit'] },
          )
        : undefined;
    if (strace) await new Promise((resolve) => setTimeout(resolve, 1000));
    counting = true;
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await workload.run(dir, files);
    const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
    const used = process.cpuUsage(cpu);
    counting = false;
    if (strace) {
      const exited = new Promise((resolve) => strace.on('exit', resolve));
      strace.kill('SIGINT');
      await exited;
    }
    let n = files;
    if (workloadName === 'untar') n = tallies.get('fuse.create')?.count ?? files;
    console.log(
      `workload ${workloadName}: ${n} files, ${wallMs.toFixed(0)} ms, ${((wallMs * 1000) / n).toFixed(0)} µs/file wall, ` +
        `mount CPU ${((used.user + used.system) / n).toFixed(0)} µs/file (user ${(used.user / n).toFixed(0)}, sys ${(used.system / n).toFixed(0)})`,
    );
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = (field: string): number =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    console.log(
      `mount RSS ${(kib('VmRSS') / 1024).toFixed(0)} MiB, peak ${(kib('VmHWM') / 1024).toFixed(0)} MiB`,
    );
    const spins = volume.stats().fuse.pollSpins;
    console.log(
      `FUSE loop idle moments (whole run): polled and found ${spins.found}, missed ${spins.missed}, contended ${spins.contended}`,
    );
    if (byThread) printSyscallsByThread(straceDir, n);
    console.log('| call | per file | mean wall µs |');
    console.log('|---|---|---|');
    for (const [key, t] of [...tallies.entries()].sort()) {
      console.log(`| ${key} | ${(t.count / n).toFixed(2)} | ${(t.wallUs / t.count).toFixed(0)} |`);
    }
  } finally {
    await volume?.stop().catch((err: unknown) => console.error(err));
    rmSync(root, { recursive: true, force: true });
  }
}

/** Sums the per-thread strace logs (t.TID) by thread name and system call, per file. */
function printSyscallsByThread(dir: string, files: number): void {
  const counts = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    const tid = name.slice(name.indexOf('.') + 1);
    let thread: string;
    if (tid === String(process.pid)) thread = 'main';
    else if (existsSync(`/proc/${process.pid}/task/${tid}`)) thread = 'other';
    else continue; // -ff follows forks too: the workload's processes are not the mount's.
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      const call = /^(\w+)\(/.exec(line)?.[1];
      if (call === undefined) continue;
      const key = `${thread} ${call}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  console.log('| thread | call | per file |');
  console.log('|---|---|---|');
  for (const [key, count] of [...counts.entries()].sort()) {
    const [thread, call] = key.split(' ');
    console.log(`| ${thread} | ${call} | ${(count / files).toFixed(2)} |`);
  }
}

await main();
