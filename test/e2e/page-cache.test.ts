import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/index.js';
import { startEmbedded, mountRemote, type MountedVolume } from '../../src/volume/index.js';
import { run } from '../fuse/mount-helper.js';
import { freePort, isMounted, tempDir } from './harness.js';

/**
 * Reads pushed into the kernel's page cache (FUSE NOTIFY_STORE), on real mounts served in this
 * process: A (`strata up` with its metadata served over RPC) reads, B (`strata mount` of A's
 * server) changes files behind A's back. All I/O on the mounts runs in child processes (python3,
 * with POSIX_FADV_RANDOM so that each pread is exactly one page-sized READ): this process serves
 * the FUSE requests and must never block on them.
 */
const PAGE = 4096;
const WINDOW = 64 * 1024;
const MiB = 1024 * 1024;
const FILE_BYTES = MiB;
const VISIBLE_WITHIN_MS = 10_000;

const root = tempDir('pagecache');
const mountA = join(root, 'a');
const mountB = join(root, 'b');
let a: MountedVolume | undefined;
let b: MountedVolume | undefined;
const logged: string[] = [];

const PY_READ = `
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for spec in sys.argv[2].split(','):
    off, length = (int(x) for x in spec.split(':'))
    print(hashlib.sha256(os.pread(fd, length, off)).hexdigest())
os.close(fd)
`;
const PY_WRITE = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(fd, bytes.fromhex(sys.argv[3]), int(sys.argv[2]))
os.close(fd)
`;

async function python(script: string, args: string[]): Promise<string> {
  const result = await run('python3', ['-c', script, ...args], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`python3 ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** sha256 of each [offset, offset + length) read through one open of `path`. */
async function readRanges(path: string, ranges: [number, number][]): Promise<string[]> {
  const out = await python(PY_READ, [path, ranges.map(([o, l]) => `${o}:${l}`).join(',')]);
  return out.trim().split('\n');
}

async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  await python(PY_WRITE, [path, String(offset), data.toString('hex')]);
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function pagesOf(windowIndex: number): [number, number][] {
  return Array.from({ length: WINDOW / PAGE }, (_, i): [number, number] => [
    windowIndex * WINDOW + i * PAGE,
    PAGE,
  ]);
}

async function waitFor(what: string, check: () => boolean, withinMs = VISIBLE_WITHIN_MS): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Writes a new file through B (so A's kernel has none of its pages) and returns its content. */
async function fileWrittenByB(name: string, sizeBytes = FILE_BYTES): Promise<Buffer> {
  const content = randomBytes(sizeBytes);
  const source = join(root, `${name}.src`);
  writeFileSync(source, content);
  const copied = await run('cp', [source, join(mountB, name)]);
  assert.equal(copied.code, 0, copied.stderr);
  await aCaughtUpWithB();
  return content;
}

let barrierMode = '644';

/**
 * Waits until A has handled the server's invalidations for everything B did so far. They reach A
 * in order but at their own pace; one arriving after A's first read of a file B wrote would
 * (rightly) drop what A pushed of it and make the test count READs it did not expect. B changes
 * the mode of a file whose attributes A's kernel caches (300 s): A shows the new mode only once it
 * has handled that invalidation, and so every one before it.
 */
async function aCaughtUpWithB(): Promise<void> {
  barrierMode = barrierMode === '644' ? '600' : '644';
  const changed = await run('chmod', [barrierMode, join(mountB, 'barrier')]);
  assert.equal(changed.code, 0, changed.stderr);
  const deadline = Date.now() + VISIBLE_WITHIN_MS;
  for (;;) {
    const seen = await run('stat', ['-c', '%a', join(mountA, 'barrier')]);
    if (seen.stdout.trim() === barrierMode) return;
    if (Date.now() > deadline) assert.fail(`A still shows mode ${seen.stdout.trim()} of B's barrier file`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function stats(): ReturnType<MountedVolume['pageCacheStats']> {
  return a!.pageCacheStats();
}

before(async () => {
  mkdirSync(mountA);
  mkdirSync(mountB);
  const { config } = resolveConfig({
    flags: { cacheDir: '', attrTimeoutMs: '300s', entryTimeoutMs: '300s' },
  });
  const log = (message: string): void => void logged.push(message);
  const port = await freePort();
  // A has a disk cache: a file it reads at random all over is copied there whole, and pushed.
  const withDiskCache = resolveConfig({
    flags: { cacheDir: join(root, 'cache'), attrTimeoutMs: '300s', entryTimeoutMs: '300s' },
  }).config;
  a = await startEmbedded({
    dataDir: join(root, 'data'),
    mountpoint: mountA,
    listen: { host: '127.0.0.1', port },
    volumeName: 'pagecache',
    config: withDiskCache,
    log,
  });
  b = await mountRemote({
    metaAddress: `127.0.0.1:${port}`,
    volumeName: 'pagecache',
    mountpoint: mountB,
    secretFile: join(root, 'data', 'meta.db.secret'),
    config,
    log,
  });
  // A's kernel keeps the barrier file's attributes (see aCaughtUpWithB).
  const barrier = await run('sh', ['-c', `touch ${mountB}/barrier && chmod 644 ${mountB}/barrier`]);
  assert.equal(barrier.code, 0, barrier.stderr);
  await aCaughtUpWithB();
});

after(async () => {
  await b?.stop().catch(() => undefined);
  await a?.stop().catch(() => undefined);
  for (const mnt of [mountB, mountA]) if (isMounted(mnt)) await run('umount', ['-l', mnt]);
  rmSync(root, { recursive: true, force: true });
});

test('a small read pushes its 64 KiB window: the other 15 pages are served without a READ', async () => {
  const content = await fileWrittenByB('window');
  const path = join(mountA, 'window');
  const pushesBefore = stats().pushes;
  const [first] = await readRanges(path, [[3 * WINDOW + 2 * PAGE, PAGE]]);
  assert.equal(first, sha(content.subarray(3 * WINDOW + 2 * PAGE, 3 * WINDOW + 3 * PAGE)));
  await waitFor('the push of window 3', () => stats().pushes > pushesBefore);

  const readsBefore = stats().readRequests;
  const pages = pagesOf(3);
  const hashes = await readRanges(path, pages);
  assert.deepEqual(
    hashes,
    pages.map(([offset, length]) => sha(content.subarray(offset, offset + length))),
  );
  assert.equal(stats().readRequests, readsBefore, 'pages of the pushed window came from the mount');
  // A page of a window nothing pushed does reach the mount: the counter counts.
  const [other] = await readRanges(path, [[9 * WINDOW, PAGE]]);
  assert.equal(other, sha(content.subarray(9 * WINDOW, 9 * WINDOW + PAGE)));
  assert.equal(stats().readRequests, readsBefore + 1);
});

test('a write through the mount after a pushed read is what reads see, in the window and around it', async () => {
  const content = await fileWrittenByB('written');
  const path = join(mountA, 'written');
  const pushesBefore = stats().pushes;
  await readRanges(path, [[5 * WINDOW + 7 * PAGE, PAGE]]);
  await waitFor('the push of window 5', () => stats().pushes > pushesBefore);

  const patch = randomBytes(PAGE + 100);
  const at = 5 * WINDOW + 3 * PAGE + 50;
  await writeAt(path, at, patch);
  patch.copy(content, at);
  const ranges: [number, number][] = [...pagesOf(5), [4 * WINDOW, WINDOW], [at, patch.length]];
  assert.deepEqual(
    await readRanges(path, ranges),
    ranges.map(([offset, length]) => sha(content.subarray(offset, offset + length))),
  );
  // Once the handle that wrote is gone, reads push again (window 5 is cached by now: window 7).
  const pushesAfterWrite = stats().pushes;
  await readRanges(path, [[7 * WINDOW, PAGE]]);
  await waitFor('a push after the write', () => stats().pushes > pushesAfterWrite);
  const readsBefore = stats().readRequests;
  assert.deepEqual(
    await readRanges(path, pagesOf(7)),
    pagesOf(7).map(([offset, length]) => sha(content.subarray(offset, offset + length))),
  );
  assert.equal(stats().readRequests, readsBefore);
});

test('a truncate after a push leaves neither old bytes nor the old size in the page cache', async () => {
  const content = await fileWrittenByB('truncated');
  const path = join(mountA, 'truncated');
  const pushesBefore = stats().pushes;
  await readRanges(path, [[2 * WINDOW + PAGE, PAGE]]);
  await waitFor('the push of window 2', () => stats().pushes > pushesBefore);

  const newSize = 2 * WINDOW + 5 * PAGE + 123;
  const truncated = await run('truncate', ['-s', String(newSize), path]);
  assert.equal(truncated.code, 0, truncated.stderr);
  const size = await python('import os, sys\nprint(os.stat(sys.argv[1]).st_size)', [path]);
  assert.equal(Number(size.trim()), newSize);
  const [tail] = await readRanges(path, [[2 * WINDOW, WINDOW]]);
  assert.equal(tail, sha(content.subarray(2 * WINDOW, newSize)));
  // Growing it again must show zeros where the cut bytes were, not the pushed ones.
  const grown = await run('truncate', ['-s', String(3 * WINDOW), path]);
  assert.equal(grown.code, 0, grown.stderr);
  const expected = Buffer.concat([content.subarray(2 * WINDOW, newSize), Buffer.alloc(3 * WINDOW - newSize)]);
  assert.deepEqual(await readRanges(path, [[2 * WINDOW, WINDOW]]), [sha(expected)]);
});

test('another mount changes a pushed file: this mount reads the new bytes within the coherence bound', async () => {
  const content = await fileWrittenByB('shared');
  const pathA = join(mountA, 'shared');
  const pushesBefore = stats().pushes;
  await readRanges(pathA, [[6 * WINDOW + 4 * PAGE, PAGE]]);
  await waitFor('the push of window 6', () => stats().pushes > pushesBefore);

  const patch = randomBytes(3 * PAGE);
  const at = 6 * WINDOW + 2 * PAGE;
  await writeAt(join(mountB, 'shared'), at, patch);
  patch.copy(content, at);
  const wanted = pagesOf(6).map(([offset, length]) => sha(content.subarray(offset, offset + length)));
  const startMs = Date.now();
  for (;;) {
    const seen = await readRanges(pathA, pagesOf(6));
    if (seen.every((hash, i) => hash === wanted[i])) break;
    if (Date.now() - startMs > VISIBLE_WITHIN_MS)
      assert.fail(`mount A still reads old bytes ${VISIBLE_WITHIN_MS} ms after B's write`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

/**
 * Keeps `path` open (buffered, read-only) in a child process until `release` is called. The
 * serving process itself must never hold a descriptor on its own mount: every later spawn would
 * deadlock (the child's execve closes the close-on-exec descriptor, the kernel sends FLUSH and
 * waits for its answer, and libuv keeps this process's main thread, the one that answers, blocked
 * until that execve returns; docs/s3.md).
 */
async function holdOpen(path: string): Promise<{ release: () => Promise<void> }> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint("open", flush=True)\nsys.stdin.read()\nos.close(fd)',
      path,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killTimer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const release = async (): Promise<void> => {
    child.stdin.end();
    await exited;
    clearTimeout(killTimer);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`python3 holding ${path} open exited (${code})`)));
    });
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

test('a file read at random all over is pushed whole while its disk-cache copy verifies it', async () => {
  // Reads more than 1 MiB apart are random to the reader; 8 of them start the whole-file copy.
  const sizeBytes = 24 * 1024 * 1024;
  const content = await fileWrittenByB('whole', sizeBytes);
  const path = join(mountA, 'whole');
  const filledBefore = stats().fillPushedBytes;
  // Pushes of the copy go only to files read through the page cache: this handle keeps it so
  // after the reader below has exited, until the copy is done.
  const holder = await holdOpen(path);
  try {
    const randomPages = [1, 7, 3, 5, 0, 6, 2, 4].map((i): [number, number] => [i * 3 * MiB + 5 * PAGE, PAGE]);
    assert.deepEqual(
      await readRanges(path, randomPages),
      randomPages.map(([offset, length]) => sha(content.subarray(offset, offset + length))),
    );
    // The copy reads 24 MiB from the store and writes it to the disk cache: allow for a busy machine.
    await waitFor('the whole file pushed', () => stats().fillPushedBytes >= filledBefore + sizeBytes, 60_000);
    const readsBefore = stats().readRequests;
    const all = Array.from({ length: sizeBytes / (16 * PAGE) }, (_, i): [number, number] => [
      i * 16 * PAGE,
      PAGE,
    ]);
    assert.deepEqual(
      await readRanges(path, all),
      all.map(([offset, length]) => sha(content.subarray(offset, offset + length))),
    );
    assert.equal(stats().readRequests, readsBefore, 'every page came from the page cache');
  } finally {
    await holder.release();
  }
});

test('no push failure was logged', () => {
  assert.deepEqual(
    logged.filter((line) => line.includes('page cache')),
    [],
  );
});
