import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  isLongProfile,
  repoRoot,
  sh,
  startServedPair,
  type StrataProcess,
  tempDir,
  waitUntil,
} from './harness.js';

// The coordination patterns HPC and AI teams rely on, run by real programs (C, python3,
// coreutils) on two mounts of one volume (`strata up --listen` and a `strata mount`, kernel
// caches kept for minutes so only close-to-open and the server's invalidations keep them
// true): N-1 and N-N checkpoints, commit by rename, lock files, a log followed by a reader on
// the other mount, and many readers of a data set. What each may expect is what NFS's
// close-to-open semantics promise (docs/cli.md says what holds, docs/RELIABILITY.md the limits).
const root = tempDir('hpc-patterns');
const dataDir = join(root, 'data');
const mntA = join(root, 'a');
const mntB = join(root, 'b');
const tools = join(root, 'tools');
const hpc = join(tools, 'hpc');
const procs: StrataProcess[] = [];
const CACHE = ['--attr-timeout', '300s', '--entry-timeout', '300s'];
const scale = isLongProfile ? 4 : 1;

/** The C programs (test/e2e/hpc-patterns.c), built into `hpc` before the mounts start. */
const HPC_C = join(repoRoot(), 'test', 'e2e', 'hpc-patterns.c');

before(async () => {
  mkdirSync(mntA, { recursive: true });
  mkdirSync(mntB);
  mkdirSync(tools);
  sh(`gcc -O2 -Wall -o ${hpc} ${HPC_C}`);
  await startServedPair(dataDir, mntA, mntB, CACHE, procs);
});

after(async () => {
  // The client first, then the mount that serves it.
  await cleanup(procs.slice(1), [mntB], []);
  await cleanup(procs.slice(0, 1), [mntA], [root]);
});

/** Runs `command ARGS` to completion; rejects with its output unless it exits 0. Resolves to stdout. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`)),
    );
  });
}

/**
 * Processes of one parallel job, rank r running `command argsOf(r)`, moved through their
 * barriers by the test: each prints a line on reaching a barrier and waits for a line on stdin.
 */
class Ranks {
  private readonly children: {
    child: ChildProcessWithoutNullStreams;
    output: string;
    reached: number;
    closed: Promise<number | null>;
  }[];

  constructor(
    command: string,
    count: number,
    private readonly argsOf: (rank: number) => string[],
  ) {
    this.children = Array.from({ length: count }, (_, rank) => {
      const child = spawn(command, argsOf(rank), { stdio: ['pipe', 'pipe', 'pipe'] });
      const entry = { child, output: '', reached: 0, closed: Promise.resolve<number | null>(null) };
      entry.closed = new Promise((resolve) => child.on('close', resolve));
      child.stdout.on('data', (chunk: Buffer) => {
        entry.output += chunk.toString();
        entry.reached = entry.output.split('\n').length - 1;
      });
      child.stderr.on('data', (chunk: Buffer) => (entry.output += chunk.toString()));
      return entry;
    });
  }

  /** Waits until the ranks `which` selects have reached barrier number `barrier` (from 1). */
  async reach(barrier: number, which: (rank: number) => boolean = () => true): Promise<void> {
    await waitUntil(
      () =>
        this.children.every((entry, rank) => {
          if (!which(rank) || entry.reached >= barrier) return true;
          if (entry.child.exitCode !== null) throw new Error(this.failure(rank));
          return false;
        }),
      `ranks at barrier ${barrier}`,
    );
  }

  /** Lets the ranks `which` selects go on from their barrier. */
  go(which: (rank: number) => boolean = () => true): void {
    this.children.forEach((entry, rank) => {
      if (which(rank)) entry.child.stdin.write('go\n');
    });
  }

  /** Waits for the ranks `which` selects to exit, each with status 0. */
  async finish(which: (rank: number) => boolean = () => true): Promise<void> {
    for (const [rank, entry] of this.children.entries()) {
      if (!which(rank)) continue;
      assert.equal(await entry.closed, 0, this.failure(rank));
    }
  }

  /** Every barrier at once for all ranks, then their exit. */
  async lockstep(barriers: number): Promise<void> {
    for (let barrier = 1; barrier <= barriers; barrier++) {
      await this.reach(barrier);
      this.go();
    }
    await this.finish();
  }

  kill(): void {
    for (const { child } of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }

  private failure(rank: number): string {
    const entry = this.children[rank];
    return `rank ${rank} (${this.argsOf(rank).join(' ')}) exited ${entry.child.exitCode}:\n${entry.output}`;
  }
}

/** The mount rank `rank` runs on: even ranks on A, odd ones on B. */
function mountOf(rank: number): string {
  return rank % 2 === 0 ? mntA : mntB;
}

const onA = (rank: number): boolean => rank % 2 === 0;
const onB = (rank: number): boolean => rank % 2 === 1;

/**
 * Moves a checkpoint job (barriers: opened, written, synced) so that each mount commits while
 * the other holds writes: all open and write; B's ranks commit and close while A's hold theirs;
 * A's commit and, still open, `check` runs on each mount; then A's close and `check` again.
 */
async function commitBThenA(job: Ranks, check: (mnt: string) => Promise<unknown>): Promise<void> {
  await job.reach(1);
  job.go();
  await job.reach(2);
  job.go(onB);
  await job.reach(3, onB);
  job.go(onB);
  await job.finish(onB);
  job.go(onA);
  await job.reach(3, onA);
  for (const mnt of [mntA, mntB]) await check(mnt);
  job.go(onA);
  await job.finish(onA);
  for (const mnt of [mntA, mntB]) await check(mnt);
}

test('N-1 checkpoint: 1000-byte records pwritten from both mounts at once into one file are all there, read on either', async () => {
  const ranks = 4;
  const recordBytes = 1000;
  // Sized first, so each rank reads the records it overwrites (a restart's read-modify-write);
  // then grown by the writes themselves, the last record (the size) written on A.
  for (const { name, records, sized } of [
    { name: 'n1.ckpt', records: 400 * scale, sized: true },
    { name: 'n1-grown.ckpt', records: 400 * scale + 1, sized: false },
  ]) {
    const path = (mnt: string): string => join(mnt, name);
    if (sized) sh(`truncate -s ${records * recordBytes} ${path(mntA)}`);
    const job = new Ranks(hpc, ranks, (rank) => [
      'pwrite',
      path(mountOf(rank)),
      String(rank),
      String(ranks),
      String(records),
      String(recordBytes),
    ]);
    try {
      await commitBThenA(job, (mnt) => run(hpc, ['check', path(mnt), String(records), String(recordBytes)]));
    } finally {
      job.kill();
    }
  }
});

test('N-1 checkpoint through MAP_SHARED mappings: pages stored from both mounts at once are all there', async () => {
  const ranks = 4;
  const pages = 256 * scale;
  const path = (mnt: string): string => join(mnt, 'n1-mmap.ckpt');
  sh(`truncate -s ${pages * 4096} ${path(mntA)}`);
  const job = new Ranks(hpc, ranks, (rank) => [
    'mmapwrite',
    path(mountOf(rank)),
    String(rank),
    String(ranks),
    String(pages),
  ]);
  try {
    await commitBThenA(job, (mnt) => run(hpc, ['check', path(mnt), String(pages), '4096']));
  } finally {
    job.kill();
  }
});

/** Python programs run as `python3 -c PROGRAM ARGS`; they exit non-zero with a message when a check fails. */
function python(program: string, args: string[]): Promise<string> {
  return run('python3', ['-c', program, ...args]);
}

/** Checkpoint content of rank `argv`, step: bytes any rank can compute again. */
const CKPT_CONTENT = `
import random
def content(rank, step, size):
    return random.Random(rank * 1000 + step).randbytes(size)
`;

test('N-N checkpoint: files written, fsynced and renamed into place on both mounts are read whole right after on the other', async () => {
  const ranks = 4;
  const sizeOf = (rank: number, step: number): number => 100_000 + rank * 12_345 + step * 999;
  const writer = `${CKPT_CONTENT}
import os, sys
d, rank, step, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tmp = os.path.join(d, 'rank%d.ckpt.tmp' % rank)
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, content(rank, step, size))
os.fsync(fd)
os.close(fd)
os.rename(tmp, os.path.join(d, 'rank%d.ckpt' % rank))
`;
  const restart = `${CKPT_CONTENT}
import os, sys
d, step, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
for rank, size in enumerate(sizes):
    with open(os.path.join(d, 'rank%d.ckpt' % rank), 'rb') as f:
        data = f.read()
    if len(data) != size:
        sys.exit('rank %d step %d: %d bytes, expected %d' % (rank, step, len(data), size))
    if data != content(rank, step, size):
        sys.exit('rank %d step %d: content differs' % (rank, step))
`;
  mkdirSync(join(mntA, 'nn'));
  for (let step = 0; step < 3 * scale; step++) {
    await Promise.all(
      Array.from({ length: ranks }, (_, rank) =>
        python(writer, [join(mountOf(rank), 'nn'), String(rank), String(step), String(sizeOf(rank, step))]),
      ),
    );
    const sizes = Array.from({ length: ranks }, (_, rank) => String(sizeOf(rank, step)));
    await Promise.all([mntA, mntB].map((mnt) => python(restart, [join(mnt, 'nn'), String(step), ...sizes])));
  }
});

test('commit by rename: readers looping on both mounts see the old or the new version, whole, and never miss the name', async () => {
  const versions = 60 * scale;
  const common = `
import os, sys
BASE = bytes(range(251)) * 1200
def version(k):
    size = 5000 + (k * 7919) % 200000
    return (b'version %06d size %06d\\n' % (k, size)) + BASE[k % 251 : k % 251 + size]
`;
  const writer = `${common}
d, versions = sys.argv[1], int(sys.argv[2])
for k in range(1, versions):
    tmp = os.path.join(d, 'current.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, version(k))
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, os.path.join(d, 'current'))
`;
  const reader = `${common}
import time
path, last = sys.argv[1], int(sys.argv[2]) - 1
deadline = time.monotonic() + 60
reads = 0
while True:
    try:
        f = open(path, 'rb')
    except OSError as e:
        sys.exit('open %d of %s failed: %s' % (reads + 1, path, e))
    try:
        data = f.read()
    except OSError as e:
        sys.exit('read %d of %s failed after its open: %s' % (reads + 1, path, e))
    f.close()
    reads += 1
    k = int(data[8:14])
    if data != version(k):
        sys.exit('read %d of %s: version %d is not whole (%d bytes)' % (reads, path, k, len(data)))
    if k == last:
        break
    if time.monotonic() > deadline:
        sys.exit('%s still at version %d after %d reads' % (path, k, reads))
print(reads)
`;
  mkdirSync(join(mntA, 'commit'));
  await python(`${common}\nopen(sys.argv[1], 'wb').write(version(0))`, [join(mntA, 'commit', 'current')]);
  const readers = [mntB, mntB, mntA].map((mnt) =>
    python(reader, [join(mnt, 'commit', 'current'), String(versions)]),
  );
  // And stat(2) of the name, each asking the mount (statx AT_STATX_FORCE_SYNC).
  const statters = new Ranks(hpc, 2, (rank) => ['statloop', join(mountOf(rank), 'commit', 'current')]);
  try {
    await statters.reach(1);
    statters.go();
    await python(writer, [join(mntA, 'commit'), String(versions)]);
    await Promise.all(readers);
    statters.go();
    await statters.finish();
  } finally {
    statters.kill();
  }
});

test('lock files: O_EXCL, mkdir, link() and flock(1) locks used by processes on both mounts keep a counter exact', async () => {
  const perProcess = 25 * scale;
  const locker = `
import errno, os, socket, sys, time
kind, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock, counter = os.path.join(d, 'lock'), os.path.join(d, 'counter')
mine = os.path.join(d, 'link.%d' % os.getpid())
if kind == 'link':
    os.close(os.open(mine, os.O_WRONLY | os.O_CREAT, 0o644))
def acquire():
    while True:
        try:
            if kind == 'excl':
                os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            elif kind == 'mkdir':
                os.mkdir(lock)
            else:
                try:
                    os.link(mine, lock)
                except FileExistsError:
                    pass
                # The classic NFS test: link() may fail yet have worked; the link count says.
                if os.stat(mine).st_nlink != 2:
                    raise FileExistsError(lock)
            return
        except FileExistsError:
            time.sleep(0.002)
def release():
    if kind == 'mkdir':
        os.rmdir(lock)
    else:
        os.unlink(lock)
for _ in range(n):
    acquire()
    fd = os.open(counter, os.O_RDWR)
    value = int(os.read(fd, 64).strip(b'\\0 \\n') or b'0')
    os.pwrite(fd, b'%-20d\\n' % (value + 1), 0)
    # Closed before the lock goes: close-to-open is what carries the count to the next holder.
    os.close(fd)
    release()
if kind == 'link':
    os.unlink(mine)
`;
  for (const kind of ['excl', 'mkdir', 'link']) {
    const dir = join(mntA, `locks-${kind}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'counter'), '0\n');
    await Promise.all(
      [mntA, mntB, mntA, mntB].map((mnt) =>
        python(locker, [kind, join(mnt, `locks-${kind}`), String(perProcess)]),
      ),
    );
    for (const mnt of [mntA, mntB]) {
      const count = sh(`cat ${join(mnt, `locks-${kind}`, 'counter')}`).trim();
      assert.equal(count, String(4 * perProcess), `${kind} locks, counter read on ${mnt}`);
    }
  }
  // flock(1) on a lock file around a shell that rewrites the counter (another file).
  const dir = join(mntA, 'locks-flock');
  mkdirSync(dir);
  writeFileSync(join(dir, 'counter'), '0\n');
  const flocker = (mnt: string): Promise<string> =>
    run('bash', [
      '-c',
      `for i in $(seq ${perProcess}); do flock "$0/lock" sh -c 'n=$(cat "$0/counter"); echo $((n + 1)) > "$0/counter"' "$0"; done`,
      join(mnt, 'locks-flock'),
    ]);
  await Promise.all([mntA, mntB, mntA, mntB].map(flocker));
  for (const mnt of [mntA, mntB]) {
    assert.equal(
      sh(`cat ${join(mnt, 'locks-flock', 'counter')}`).trim(),
      String(4 * perProcess),
      `flock(1), on ${mnt}`,
    );
  }
});

test('producer/consumer: a log appended and fsynced on one mount is followed on the other, whole and in order', async (t) => {
  const records = 300 * scale;
  const producer = `
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(n):
    body = bytes([97 + i % 26]) * (10 + (i * 613) % 3000)
    os.write(fd, b'%06d %s\\n' % (i, body))
    os.fsync(fd)
    if i % 10 == 0:
        time.sleep(0.005)
os.close(fd)
`;
  // reopen: opens, seeks to where it stopped, reads to EOF, closes, again; tail: one
  // descriptor read past EOF again and again (tail -f).
  const consumer = `
import os, sys, time
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
while not os.path.exists(path):
    time.sleep(0.005)
seen, pos, pending, transient = 0, 0, b'', 0
f = open(path, 'rb')
while seen < n:
    if mode == 'reopen':
        f.close()
        f = open(path, 'rb')
        f.seek(pos)
    chunk = f.read()
    if not chunk:
        if time.monotonic() > deadline:
            sys.exit('%s: stopped after record %d (%d bytes)' % (mode, seen - 1, pos))
        time.sleep(0.005)
        continue
    if b'\\0' in chunk:
        transient += 1
    for _ in range(5):
        if b'\\0' not in chunk:
            break
        # The kernel's race (docs/cli.md): the end of a read may show the zero tail of the last
        # page while the size grows; a moment later the bytes are there. Zeros that stay are a gap.
        time.sleep(0.01)
        chunk = os.pread(f.fileno(), len(chunk), pos)
    if b'\\0' in chunk:
        sys.exit('%s: zero bytes at offset %d that stay' % (mode, pos + chunk.index(b'\\0')))
    pos += len(chunk)
    pending += chunk
    *lines, pending = pending.split(b'\\n')
    for line in lines:
        i = int(line[:6])
        if i != seen or line != b'%06d %s' % (i, bytes([97 + i % 26]) * (10 + (i * 613) % 3000)):
            sys.exit('%s: record %d where %d was due, or not whole' % (mode, i, seen))
        seen += 1
f.close()
print(mode, 'transient zero tails', transient)
`;
  const log = (mnt: string): string => join(mnt, 'app.log');
  const consumers = ['reopen', 'tail'].map((mode) => python(consumer, [mode, log(mntB), String(records)]));
  await python(producer, [log(mntA), String(records)]);
  for (const report of await Promise.all(consumers)) t.diagnostic(report.trim());
});

test('data loaders: 4 readers per mount read random ranges of a data set the other mount wrote, exact', async () => {
  const bytes = 32 * 1024 * 1024 * scale + 4096 * 3;
  await Promise.all([
    run(hpc, ['fill', join(mntA, 'set-a.bin'), String(bytes), '1']),
    run(hpc, ['fill', join(mntB, 'set-b.bin'), String(bytes), '2']),
  ]);
  const readers = [];
  for (let i = 0; i < 4; i++) {
    readers.push(run(hpc, ['randread', join(mntB, 'set-a.bin'), String(40 * scale), '1', String(i)]));
    readers.push(run(hpc, ['randread', join(mntA, 'set-b.bin'), String(40 * scale), '2', String(i + 10)]));
  }
  await Promise.all(readers);
});

test('data loaders: mmap reads of a data set see the rewrite the other mount closed before their open', async () => {
  const bytes = 8 * 1024 * 1024 + 4096;
  // Every page's first word and a random sample, read through a mapping.
  const mmapCheck = `
import mmap, os, random, struct, sys
path, seed = sys.argv[1], int(sys.argv[2])
def word(offset):
    return (((offset // 8 + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) ^ seed
with open(path, 'rb') as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    offsets = list(range(0, len(m) - 7, 4096)) + [random.randrange(0, len(m) // 8) * 8 for _ in range(2000)]
    for off in offsets:
        got = struct.unpack_from('<Q', m, off)[0]
        if got != word(off):
            sys.exit('offset %d: %x, expected %x (seed %d)' % (off, got, word(off), seed))
    m.close()
`;
  const path = (mnt: string): string => join(mnt, 'set-mmap.bin');
  await run(hpc, ['fill', path(mntA), String(bytes), '1']);
  await python(mmapCheck, [path(mntB), '1']);
  // Rewritten in place, same size, by the mount that wrote it, then by the one that read it.
  await run(hpc, ['fill', path(mntA), String(bytes), '3']);
  await python(mmapCheck, [path(mntB), '3']);
  await python(mmapCheck, [path(mntA), '3']);
  await run(hpc, ['fill', path(mntB), String(bytes), '4']);
  await python(mmapCheck, [path(mntA), '4']);
  await python(mmapCheck, [path(mntB), '4']);
  // A loader worker keeps the old version open and mapped on B: a new open there still sees
  // the rewrite A closed (the worker's own mapping is not promised anything, as on NFS).
  const holder = new Ranks('python3', 1, () => [
    '-c',
    `
import mmap, sys
f = open(sys.argv[1], 'rb')
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
total = sum(m[i] for i in range(0, len(m), 4096))
print('mapped', flush=True)
sys.stdin.readline()
`,
    path(mntB),
  ]);
  try {
    await holder.reach(1);
    await run(hpc, ['fill', path(mntA), String(bytes), '5']);
    await python(mmapCheck, [path(mntB), '5']);
    holder.go();
    await holder.finish();
  } finally {
    holder.kill();
  }
});
