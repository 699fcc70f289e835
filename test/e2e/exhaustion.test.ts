// Running out of things on a real mount: the object directory's disk, the metadata database's
// disk, the disk cache's disk, and the mount process's file descriptors. Each disk is a small
// tmpfs made for the test and filled to the last byte by a filler file, which the test deletes
// to "free space". What a program must see: ENOSPC (or EIO) from the call that could not store
// its data, never an acknowledged byte lost, no leftovers filling the disk further, and a mount
// that works again, without a restart, once there is room.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { cleanup, isMounted, startUp, strata, StrataProcess, tempDir } from './harness.js';

const MiB = 1024 * 1024;
const skip = process.getuid?.() === 0 ? false : 'needs root (tmpfs and FUSE mounts)';

const procs: StrataProcess[] = [];
const tmpfsMounts: string[] = [];
const mountpoints: string[] = [];
const dirs: string[] = [];

after(async () => {
  await cleanup(procs, mountpoints, []);
  for (const dir of tmpfsMounts) if (isMounted(dir)) spawnSync('umount', ['-l', dir]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh work directory with a mount point; removed after the tests. */
function workDir(label: string): { root: string; mnt: string } {
  const root = tempDir(`exhaust-${label}`);
  dirs.push(root);
  const mnt = join(root, 'mnt');
  mountpoints.push(mnt);
  return { root, mnt };
}

/** A tmpfs of `sizeBytes` at `dir`, unmounted after the tests. */
function smallDisk(dir: string, sizeBytes: number): string {
  mkdirSync(dir, { recursive: true });
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`mount tmpfs on ${dir} failed: ${result.stderr}`);
  tmpfsMounts.push(dir);
  return dir;
}

/** Fills the file system holding `dir` to the last byte; returns the filler, which frees it. */
function fillUp(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** The errno code a call failed with, or "ok". */
function outcome(call: () => void): string {
  try {
    call();
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes `bytes` to `path` and fsyncs it: acknowledged, so it must survive everything below. */
function writeDurably(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Every file under `dir` whose name ends in `.tmp` (what failed writes could leave behind). */
function temporaryFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.tmp'));
}

/** Bytes in the files under `dir`. */
function bytesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const info = statSync(join(dir, name));
    if (info.isFile()) total += info.size;
  }
  return total;
}

function fsckClean(dataDir: string): void {
  const checked = strata(['fsck', '--engine', `sqlite:${join(dataDir, 'meta.db')}`]);
  assert.equal(checked.status, 0, `strata fsck found problems:\n${checked.stdout}\n${checked.stderr}`);
}

describe('running out of space and descriptors on a mount', { skip, timeout: 180_000 }, () => {
  test('a full object directory fails fsync with ENOSPC, leaves no temporary files, and works again once space is freed', async () => {
    const { root, mnt } = workDir('objects');
    const objects = smallDisk(join(root, 'objects'), 24 * MiB);
    const dataDir = join(root, 'data');
    const args = ['--storage', `file:${objects}`, '--memory', '64M'];
    let up = await startUp(dataDir, mnt, args);
    procs.push(up);
    const kept = randomBytes(3 * MiB);
    writeDurably(join(mnt, 'kept'), kept);

    const storedBefore = bytesUnder(join(objects, 'chunks'));
    // Room for a block or two of the next file, not for all of it.
    const filler = fillUp(objects);
    truncateSync(filler, Math.max(0, statSync(filler).size - 6 * MiB));
    // The failure may come from a write() (an upload failed already) or from fsync/close.
    const fd = openSync(join(mnt, 'big'), 'w');
    const calls: string[] = [];
    for (let i = 0; i < 4; i++) calls.push(outcome(() => writeSync(fd, randomBytes(4 * MiB))));
    calls.push(
      outcome(() => fsyncSync(fd)),
      outcome(() => closeSync(fd)),
    );
    const failures = calls.filter((result) => result !== 'ok');
    assert.ok(failures.length > 0, `nothing failed on a full object directory: ${calls.join(', ')}`);
    assert.deepEqual(
      failures,
      failures.map(() => 'ENOSPC'),
      `writes, fsync, close: ${calls.join(', ')}`,
    );
    assert.deepEqual(temporaryFiles(objects), [], 'failed puts left temporary files');
    // The blocks of the failed file that did get stored are deleted (in the background).
    await up.waitFor(
      () => bytesUnder(join(objects, 'chunks')) === storedBefore,
      `the blocks of the failed write to be deleted (${bytesUnder(join(objects, 'chunks'))} bytes stored, ${storedBefore} before)`,
      10_000,
    );
    assert.equal(up.exitCode, undefined, `strata up exited:\n${up.output}`);

    // The program got ENOSPC; the log says why, once.
    const lossLines = (): string[] =>
      (up?.output ?? '').split('\n').filter((line) => line.includes('out of space'));
    await up.waitFor(() => lossLines().length > 0, 'a log line about the lost data', 10_000);
    assert.equal(lossLines().length, 1, up.output);

    unlinkSync(filler);
    // The same mount, no restart: new data is stored again, the old is intact.
    const later = randomBytes(2 * MiB);
    writeDurably(join(mnt, 'later'), later);
    writeDurably(join(mnt, 'big'), later);
    assert.equal(sha256(readFileSync(join(mnt, 'kept'))), sha256(kept));
    assert.equal(sha256(readFileSync(join(mnt, 'big'))), sha256(later));

    assert.equal(await up.stop(), 0, up.output);
    fsckClean(dataDir);
    up = await startUp(dataDir, mnt, args);
    procs.push(up);
    assert.equal(sha256(readFileSync(join(mnt, 'kept'))), sha256(kept));
    assert.equal(sha256(readFileSync(join(mnt, 'later'))), sha256(later));
    assert.equal(await up.stop(), 0, up.output);
  });

  test('a full metadata disk fails creates with ENOSPC, loses nothing, and works again once space is freed', async () => {
    const { root, mnt } = workDir('meta');
    const dataDir = smallDisk(join(root, 'data'), 8 * MiB);
    const args = ['--storage', `file:${join(root, 'objects')}`];
    let up = await startUp(dataDir, mnt, args);
    procs.push(up);
    const kept = randomBytes(256 * 1024);
    writeDurably(join(mnt, 'kept'), kept);

    const filler = fillUp(dataDir);
    // The WAL may still have room for a few commits: create until one fails.
    const created: string[] = [];
    let failure = 'ok';
    for (let i = 0; i < 2000 && failure === 'ok'; i++) {
      const name = join(mnt, `n${i}`);
      failure = outcome(() => closeSync(openSync(name, 'w')));
      if (failure === 'ok') created.push(name);
    }
    assert.equal(failure, 'ENOSPC', 'creating a file on a full metadata disk');
    assert.equal(
      outcome(() => mkdirSync(join(mnt, 'dir'))),
      'ENOSPC',
      'mkdir on a full metadata disk',
    );
    assert.equal(up.exitCode, undefined, `strata up exited:\n${up.output}`);

    unlinkSync(filler);
    assert.equal(
      outcome(() => mkdirSync(join(mnt, 'dir'))),
      'ok',
      'mkdir after space was freed',
    );
    const later = randomBytes(256 * 1024);
    writeDurably(join(mnt, 'dir', 'later'), later);
    for (const name of created) assert.ok(existsSync(name), `${name} was created before the disk filled`);

    assert.equal(await up.stop(), 0, up.output);
    fsckClean(dataDir);
    // Starting on a full metadata disk cannot work (opening writes); it must say what to do.
    const refill = fillUp(dataDir);
    const refused = new StrataProcess(['up', dataDir, mnt, ...args]);
    procs.push(refused);
    let timer: NodeJS.Timeout | undefined;
    const exitCode = await Promise.race([
      refused.exited,
      new Promise((resolve) => (timer = setTimeout(() => resolve('still running'), 30_000))),
    ]);
    clearTimeout(timer);
    assert.notEqual(exitCode, 0, `strata up started on a full metadata disk:\n${refused.output}`);
    assert.match(refused.output, /the disk holding it is full.*free some space/);
    unlinkSync(refill);
    up = await startUp(dataDir, mnt, args);
    procs.push(up);
    assert.equal(sha256(readFileSync(join(mnt, 'kept'))), sha256(kept));
    assert.equal(sha256(readFileSync(join(mnt, 'dir', 'later'))), sha256(later));
    for (const name of created) assert.ok(existsSync(name), `${name} lost after a restart`);
    assert.equal(await up.stop(), 0, up.output);
  });

  test('a full disk-cache disk: reads go on from the store, one log line, no partial cache files left', async () => {
    const { root, mnt } = workDir('cache');
    const cache = smallDisk(join(root, 'cache'), 3 * MiB);
    const dataDir = join(root, 'data');
    const args = ['--storage', `file:${join(root, 'objects')}`, '--memory', '64M'];
    let up = await startUp(dataDir, mnt, args);
    procs.push(up);
    const files = [0, 1, 2].map(() => randomBytes(4 * MiB));
    files.forEach((bytes, i) => writeDurably(join(mnt, `f${i}`), bytes));
    assert.equal(await up.stop(), 0, up.output);

    // A fresh process: nothing in memory, every block comes from the store and goes to the cache.
    up = await startUp(dataDir, mnt, [...args, '--cache-dir', cache]);
    procs.push(up);
    for (let round = 0; round < 2; round++) {
      files.forEach((bytes, i) => assert.equal(sha256(readFileSync(join(mnt, `f${i}`))), sha256(bytes)));
      // Out of the kernel's page cache, so the second round asks the mount again.
      spawnSync('sh', ['-c', 'echo 1 > /proc/sys/vm/drop_caches']);
    }
    assert.deepEqual(temporaryFiles(cache), [], 'failed cache writes left partial files');
    // The reads above blocked this process: let the mount's output arrive.
    const cacheLines = (): string[] =>
      (up?.output ?? '').split('\n').filter((line) => line.includes(`disk cache ${cache}`));
    await up.waitFor(() => cacheLines().length > 0, 'a log line about the full cache disk', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const lines = cacheLines();
    assert.equal(lines.length, 1, `expected one log line about the full cache disk:\n${up.output}`);
    assert.match(lines[0] ?? '', /full/);
    assert.equal(await up.stop(), 0, up.output);
  });

  test('kill -9 of the mount while a write fails on a full object directory: after a restart with room, every fsync-ed file is intact', async () => {
    const { root, mnt } = workDir('kill');
    const objects = smallDisk(join(root, 'objects'), 24 * MiB);
    const dataDir = join(root, 'data');
    const args = ['--storage', `file:${objects}`, '--memory', '64M'];
    let up = await startUp(dataDir, mnt, args);
    procs.push(up);
    const kept = [0, 1, 2, 3].map((i) => randomBytes((i + 1) * 700_000));
    kept.forEach((bytes, i) => writeDurably(join(mnt, `kept${i}`), bytes));
    const filler = fillUp(objects);
    // Writers in another process keep failing on the full disk (so this one is free to kill the
    // mount under them); they stop once the mount is gone.
    const writer = spawn('python3', ['-c', FAILING_WRITER_PY, join(mnt, 'failing')], { stdio: 'ignore' });
    const writerDone = new Promise((resolve) => writer.once('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 500));
    up.kill();
    await up.stop();
    // The writer ends on its own (ENOTCONN); killing it as well makes sure no writer outlives this
    // point, whatever it was doing when the mount died.
    writer.kill('SIGKILL');
    await writerDone;
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt]);
    unlinkSync(filler);

    up = await startUp(dataDir, mnt, args);
    procs.push(up);
    kept.forEach((bytes, i) =>
      assert.equal(sha256(readFileSync(join(mnt, `kept${i}`))), sha256(bytes), `kept${i}`),
    );
    const later = randomBytes(1 * MiB);
    writeDurably(join(mnt, 'later'), later);
    assert.equal(sha256(readFileSync(join(mnt, 'later'))), sha256(later));
    assert.equal(await up.stop(), 0, up.output);
    fsckClean(dataDir);
  });

  test('a mount process short of file descriptors waits for them: a burst of fsyncs succeeds, nothing hangs, the mount stays up', async () => {
    const { root, mnt } = workDir('fds');
    const dataDir = join(root, 'data');
    const up = await startUp(dataDir, mnt, ['--storage', `file:${join(root, 'objects')}`]);
    procs.push(up);
    // Warm up (the sealing thread, the database's handles), then leave 10 descriptors spare:
    // fewer than 16 puts in flight need at once.
    writeDurably(join(mnt, 'warm-up'), randomBytes(300_000));
    const limit = readdirSync(`/proc/${up.pid}/fd`).length + 10;
    const softLimitBefore = /^Max open files\s+(\d+)/m.exec(
      readFileSync(`/proc/${up.pid}/limits`, 'utf8'),
    )?.[1];
    assert.ok(softLimitBefore !== undefined, 'no descriptor limit in /proc/PID/limits');
    setSoftDescriptorLimit(up.pid, String(limit));
    mkdirSync(join(mnt, 'many'));
    // Many files written and fsync'd at once (threads: the kernel sends the FSYNCs together).
    const burst = spawnSync('python3', ['-c', BURST_PY, join(mnt, 'many'), '120'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(burst.status, 0, `the burst did not finish: ${burst.stderr}`);
    const results = JSON.parse(burst.stdout) as { name: string; result: string; sha256: string }[];
    assert.deepEqual(
      countOf(results.map(({ result }) => result)),
      { ok: results.length },
      `fsyncs under ${limit} descriptors`,
    );
    assert.equal(up.exitCode, undefined, `strata up exited:\n${up.output}`);
    for (const { name, sha256: expected } of results) {
      assert.equal(sha256(readFileSync(join(mnt, 'many', name))), expected, name);
    }
    // Once the burst is over, one file at a time works under the same limit.
    for (let i = 0; i < 5; i++) {
      const bytes = randomBytes(300_000);
      writeDurably(join(mnt, `after${i}`), bytes);
      assert.equal(sha256(readFileSync(join(mnt, `after${i}`))), sha256(bytes));
    }
    // Unmounting spawns umount(8), which needs descriptors of its own (see docs/RELIABILITY.md).
    setSoftDescriptorLimit(up.pid, softLimitBefore);
    assert.equal(await up.stop(), 0, up.output);
    fsckClean(dataDir);
  });
});

/**
 * Writes and fsyncs 4 MiB to argv[1] over and over, ignoring failures, until the mount is gone.
 * Names are resolved from a descriptor of the mounted directory: after a lazy unmount a path would
 * lead to the directory underneath, where writes succeed and the loop would never end.
 */
const FAILING_WRITER_PY = `
import errno, os, sys
gone = (errno.ENOTCONN, errno.ECONNABORTED, errno.ENOENT, errno.ENODEV)
directory = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY | os.O_DIRECTORY)
name = os.path.basename(sys.argv[1])
while True:
    try:
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644, dir_fd=directory)
    except OSError as e:
        if e.errno in gone: break
        continue
    try:
        os.write(fd, os.urandom(4 << 20))
        os.fsync(fd)
    except OSError as e:
        if e.errno in gone: break
    finally:
        try: os.close(fd)
        except OSError: pass
`;

/**
 * Writes argv[2] files of 300,000 bytes under argv[1], all open at once, then fsyncs them all
 * together from as many threads; prints each outcome.
 */
const BURST_PY = `
import errno, hashlib, json, os, sys, threading
root, count = sys.argv[1], int(sys.argv[2])
def code(e):
    return errno.errorcode.get(e.errno, str(e.errno))
files = []
for i in range(count):
    data = os.urandom(300000)
    name = 'f%d' % i
    entry = {'name': name, 'result': 'ok', 'sha256': hashlib.sha256(data).hexdigest()}
    files.append(entry)
    try:
        entry['fd'] = os.open(os.path.join(root, name), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(entry['fd'], data)
    except OSError as e:
        entry['result'] = code(e)
def sync(entry):
    try:
        os.fsync(entry['fd'])
    except OSError as e:
        entry['result'] = code(e)
threads = [threading.Thread(target=sync, args=(f,)) for f in files if 'fd' in f and f['result'] == 'ok']
for t in threads: t.start()
for t in threads: t.join()
for f in files:
    if 'fd' in f:
        try:
            os.close(f.pop('fd'))
        except OSError as e:
            f['result'] = f['result'] if f['result'] != 'ok' else code(e)
print(json.dumps(files))
`;

/** Sets a running process's soft RLIMIT_NOFILE (the hard one stays, so it can be raised again). */
function setSoftDescriptorLimit(pid: number, limit: string): void {
  const result = spawnSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:`], { encoding: 'utf8' });
  assert.equal(result.status, 0, `prlimit: ${result.stderr}`);
}

function countOf(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
