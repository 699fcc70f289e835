import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { mount, type FuseSession, type RequestContext } from '../../src/fuse/index.js';
import { formatVolume, openMetaService, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { Coherence, PageCache, PushingVfs, Vfs, type VfsOptions } from '../../src/vfs/index.js';
import { isMounted, run } from '../fuse/mount-helper.js';

/**
 * The race the page cache must never lose, made to happen every time: a push of data read
 * before a write is still on its way to the kernel when a program opens the file and writes it.
 * The kernel copies write(2) data into its cached pages before the WRITE request reaches the
 * mount, so a push landing after that copy would put the old bytes back over the new ones.
 *
 * Here the kernel side of the push is held by the test until the mount either waits for it (the
 * open of a writer settles pushes in flight: the push lands first, the write after it) or, if that
 * wait were missing, until the WRITE request arrives (the push then lands over the written page).
 * Real mount, real kernel; python3 children do the I/O (this process serves the mount).
 */
const PAGE = 4096;
const WINDOW = 64 * 1024;
const dir = mkdtempSync('/tmp/strata-pagecache-vfs-');
const mountpoint = join(dir, 'mnt');
let meta: MetaService;
let store: ObjectStore;
let data: DataPath;
let writerData: DataPath;
let session: FuseSession | undefined;
let vfs: WatchedVfs;
let pageCache: HeldPageCache;
let coherence: Coherence;
const invalidated: Ino[] = [];
let held: { release: () => void; done: Promise<void> } | null = null;
let holdNext = false;
/** A WRITE lets a held push land first (the first test); off: it stays held through the write. */
let releaseAtWrite = true;

function ctx(): RequestContext {
  return { uid: 0, gid: 0, pid: process.pid, umask: 0o022, unique: 1n, signal: new AbortController().signal };
}

/** Releases a held push and waits until the kernel took it. */
async function releaseHeld(): Promise<void> {
  const push = held;
  if (push === null) return;
  held = null;
  push.release();
  await push.done;
}

class HeldPageCache extends PageCache {
  override async settle(ino: Ino): Promise<void> {
    await releaseHeld();
    return super.settle(ino);
  }
}

class WatchedVfs extends PushingVfs {
  override async write(
    c: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    bytes: Buffer,
    flags: number,
  ): Promise<number> {
    if (releaseAtWrite) await releaseHeld();
    return super.write(c, ino, fh, offset, bytes, flags);
  }
}

function options(): VfsOptions {
  return {
    attrTimeoutMs: 60_000,
    entryTimeoutMs: 60_000,
    lockRetryMaxMs: 20,
    heartbeatIntervalMs: 60_000,
    compactSlicesThreshold: 0,
    mountpoint,
    version: 'test',
    log: () => undefined,
  };
}

before(async () => {
  mkdirSync(mountpoint);
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'pushing', storageUrl: `file:${join(dir, 'objects')}` });
  meta = await openMetaService({ engineUrl });
  store = await openObjectStore(`file:${join(dir, 'objects')}`);
  const volume = await meta.volume();
  const dataOptions = {
    store,
    blockSizeBytes: volume.blockSizeBytes,
    chunkSizeBytes: volume.chunkSizeBytes,
    memoryBudgetBytes: 64 * 1024 * 1024,
    allocateSliceIds: (n: number) => meta.allocateSliceIds(n),
  };
  data = createDataPath(dataOptions);
  writerData = createDataPath(dataOptions);
  pageCache = new HeldPageCache(
    {
      store: (ino, offsetBytes, bytes) => {
        const send = (): Promise<void> => session!.notifyStore(ino, offsetBytes, bytes);
        if (!holdNext) return send();
        holdNext = false;
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const done = released.then(send);
        held = { release, done };
        return done;
      },
    },
    () => undefined,
  );
  vfs = new WatchedVfs(meta, data, options(), pageCache);
  await vfs.start();
  session = await mount({ mountpoint, fs: vfs, options: { unmountOnSignals: false } });
  const kernel = Coherence.kernelCacheOf(session, pageCache);
  // The mount's wiring (volume/client.ts); told when an INVAL_INODE went out, for the test to wait.
  coherence = new Coherence(
    { ...kernel, invalInode: (ino) => kernel.invalInode(ino).then(() => void invalidated.push(ino)) },
    () => undefined,
  );
});

after(async () => {
  await releaseHeld().catch(() => undefined);
  if (session && !session.isClosed) await session.unmount().catch(() => undefined);
  if (isMounted(mountpoint)) await run('umount', ['-l', mountpoint]);
  await data?.close();
  await writerData?.close();
  await store?.close();
  await meta?.close();
  rmSync(dir, { recursive: true, force: true });
});

function sha(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

test('a push still on its way when a writer opens the file never lands over the written bytes', async () => {
  // The file is written by another VFS on the same volume: the mount's kernel has none of it.
  const content = randomBytes(4 * WINDOW);
  const writer = new Vfs(meta, writerData, options());
  await writer.start();
  const created = await writer.create(
    ctx(),
    ROOT_INO,
    'raced',
    0o100644,
    constants.O_RDWR | constants.O_CREAT,
  );
  await writer.write(ctx(), created.attr.ino, created.fh, 0, content, 0);
  await writer.release(ctx(), created.attr.ino, created.fh, 0, 1n, false);
  await writer.stop();

  const path = join(mountpoint, 'raced');
  const page = 2 * WINDOW + 3 * PAGE;
  holdNext = true;
  const read = await run('python3', [
    '-c',
    'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nos.posix_fadvise(fd,0,0,os.POSIX_FADV_RANDOM)\nos.pread(fd,4096,int(sys.argv[2]))',
    path,
    String(page),
  ]);
  assert.equal(read.code, 0, read.stderr);
  for (let i = 0; held === null; i++) {
    assert.ok(i < 500, 'the read pushed nothing');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  // Overwrite the page the read brought in (uptodate in the kernel) while the push is held.
  const patch = randomBytes(PAGE);
  const wrote = await run('python3', [
    '-c',
    'import os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nos.pwrite(fd,bytes.fromhex(sys.argv[3]),int(sys.argv[2]))\nos.close(fd)',
    path,
    String(page),
    patch.toString('hex'),
  ]);
  assert.equal(wrote.code, 0, wrote.stderr);
  assert.equal(held, null, 'the held push was released');
  patch.copy(content, page);

  const back = await run('python3', [
    '-c',
    'import hashlib,os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nprint(hashlib.sha256(os.pread(fd,int(sys.argv[3]),int(sys.argv[2]))).hexdigest())',
    path,
    String(2 * WINDOW),
    String(WINDOW),
  ]);
  assert.equal(back.code, 0, back.stderr);
  assert.equal(back.stdout.trim(), sha(content.subarray(2 * WINDOW, 3 * WINDOW)));
});

/** A file written by another VFS on the same volume: the mount's kernel has none of its pages. */
async function writtenElsewhere(name: string, content: Buffer): Promise<Ino> {
  const writer = new Vfs(meta, writerData, options());
  await writer.start();
  try {
    const created = await writer.create(
      ctx(),
      ROOT_INO,
      name,
      0o100644,
      constants.O_RDWR | constants.O_CREAT,
    );
    await writer.write(ctx(), created.attr.ino, created.fh, 0, content, 0);
    await writer.release(ctx(), created.attr.ino, created.fh, 0, 1n, false);
    return created.attr.ino;
  } finally {
    await writer.stop();
  }
}

/**
 * A python3 process that keeps one buffered descriptor of `path` open and answers commands on
 * it: the checks must read through a descriptor opened before the change, because a new open
 * of a changed file drops the kernel's pages anyway (no FOPEN_KEEP_CACHE) and would hide a push
 * that landed late.
 */
class KeptReader {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private wake: (() => void) | null = null;

  constructor(path: string) {
    const script = [
      'import hashlib, os, sys',
      'fd = os.open(sys.argv[1], os.O_RDONLY)',
      'os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)',
      'for line in sys.stdin:',
      '    cmd, *args = line.split()',
      '    if cmd == "size": print(os.fstat(fd).st_size, flush=True)',
      '    else: print(hashlib.sha256(os.pread(fd, int(args[1]), int(args[0]))).hexdigest(), flush=True)',
    ].join('\n');
    this.child = spawn('python3', ['-c', script, path]);
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.lines.push(...chunk.split('\n').filter((line) => line !== ''));
      this.wake?.();
    });
    this.child.once('exit', () => this.wake?.());
  }

  private async ask(command: string): Promise<string> {
    this.child.stdin.write(`${command}\n`);
    const deadline = Date.now() + 30_000;
    while (this.lines.length === 0) {
      assert.ok(this.child.exitCode === null && Date.now() < deadline, `python3 did not answer "${command}"`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.lines.shift()!;
  }

  /** sha256 of [offset, offset + length) read through the kept descriptor. */
  read(offset: number, length: number): Promise<string> {
    return this.ask(`read ${offset} ${length}`);
  }

  async size(): Promise<number> {
    return Number(await this.ask('size'));
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

async function python(script: string, ...args: string[]): Promise<void> {
  const result = await run('python3', ['-c', script, ...args]);
  assert.equal(result.code, 0, result.stderr);
}

/**
 * Reads one page of a fresh file through a kept descriptor and holds the push of its window, runs
 * `change`, then lets a push that is still held land (as a push the kernel took late would) and
 * checks through the kept descriptor that the change is what it sees. The mount must have waited
 * for the push before answering the change; otherwise the push lands over it.
 */
async function raceAPushWith(
  name: string,
  change: (path: string, ino: Ino) => Promise<void>,
  expected: (before: Buffer) => Buffer,
): Promise<void> {
  const content = randomBytes(4 * WINDOW);
  const ino = await writtenElsewhere(name, content);
  const path = join(mountpoint, name);
  const reader = new KeptReader(path);
  try {
    holdNext = true;
    await reader.read(2 * WINDOW + 3 * PAGE, PAGE);
    for (let i = 0; held === null; i++) {
      assert.ok(i < 500, 'the read pushed nothing');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await change(path, ino);
    await releaseHeld();
    const after = expected(content);
    // The read first: a size query would make the kernel ask the mount and learn the truth.
    const end = Math.min(3 * WINDOW, after.length);
    assert.equal(
      await reader.read(2 * WINDOW, WINDOW),
      sha(after.subarray(2 * WINDOW, end)),
      'the pushed window',
    );
    assert.equal(await reader.size(), after.length, 'the size the kernel knows');
  } finally {
    holdNext = false;
    await releaseHeld();
    await reader.close();
  }
}

test('a push on its way when the file is truncated by path never brings back the cut bytes or size', async () => {
  const newSize = 2 * WINDOW + 5 * PAGE + 123;
  await raceAPushWith(
    'truncated',
    (path) => python('import os, sys\nos.truncate(sys.argv[1], int(sys.argv[2]))', path, String(newSize)),
    (before) => before.subarray(0, newSize),
  );
});

test('a push on its way when a hole is punched never lands over the hole', async () => {
  const at = 2 * WINDOW + 2 * PAGE;
  const length = 6 * PAGE;
  await raceAPushWith(
    'punched',
    async (path) => {
      const punched = await run('fallocate', ['-p', '-o', String(at), '-l', String(length), path]);
      assert.equal(punched.code, 0, punched.stderr);
    },
    (before) => Buffer.concat([before.subarray(0, at), Buffer.alloc(length), before.subarray(at + length)]),
  );
});

test('a push on its way when copy_file_range writes into the file never lands over the copy', async () => {
  const source = randomBytes(3 * PAGE);
  await writtenElsewhere('copy-source', source);
  const at = 2 * WINDOW + PAGE;
  await raceAPushWith(
    'copied-into',
    (path) =>
      python(
        'import os, sys\nsrc = os.open(sys.argv[1], os.O_RDONLY)\ndst = os.open(sys.argv[2], os.O_WRONLY)\n' +
          'assert os.copy_file_range(src, dst, int(sys.argv[3]), 0, int(sys.argv[4])) == int(sys.argv[3])\n' +
          'os.close(dst)\nos.close(src)',
        join(mountpoint, 'copy-source'),
        path,
        String(source.length),
        String(at),
      ),
    (before) => {
      const after = Buffer.from(before);
      source.copy(after, at);
      return after;
    },
  );
});

test('a push on its way when an O_DIRECT writer writes never lands over the written bytes', async () => {
  const patch = randomBytes(2 * PAGE);
  const at = 2 * WINDOW + 4 * PAGE;
  // Held through the direct write: the kernel drops the written range around a direct write, so
  // only a push landing after it could leave old bytes.
  releaseAtWrite = false;
  try {
    await raceAPushWith(
      'direct',
      (path) =>
        python(
          'import mmap, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)\n' +
            'data = bytes.fromhex(sys.argv[3])\nbuf = mmap.mmap(-1, len(data))\nbuf.write(data)\n' +
            'assert os.pwrite(fd, buf, int(sys.argv[2])) == len(data)\nos.close(fd)',
          path,
          String(at),
          patch.toString('hex'),
        ),
      (before) => {
        const after = Buffer.from(before);
        patch.copy(after, at);
        return after;
      },
    );
  } finally {
    releaseAtWrite = true;
  }
});

test('a push on its way when another mount changes the file never lands after the invalidation', async () => {
  const patch = randomBytes(3 * PAGE);
  const at = 2 * WINDOW + 5 * PAGE;
  await raceAPushWith(
    'changed-elsewhere',
    async (path, ino) => {
      // Another mount (a VFS of its own on the volume) writes; the server's invalidation follows.
      const other = new Vfs(meta, writerData, options());
      await other.start();
      try {
        const opened = await other.open(ctx(), ino, constants.O_RDWR);
        await other.write(ctx(), ino, opened.fh, at, patch, 0);
        await other.release(ctx(), ino, opened.fh, 0, 1n, false);
      } finally {
        await other.stop();
      }
      const before = invalidated.length;
      vfs.otherMountsChanged({ inos: [ino], entries: [], all: false }, coherence);
      for (let i = 0; invalidated.length === before; i++) {
        assert.ok(i < 500, `no INVAL_INODE went out for ${path}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    (before) => {
      const after = Buffer.from(before);
      patch.copy(after, at);
      return after;
    },
  );
});
