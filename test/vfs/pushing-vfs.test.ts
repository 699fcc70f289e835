import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
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
import { PageCache, PushingVfs, Vfs, type VfsOptions } from '../../src/vfs/index.js';
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
let held: { release: () => void; done: Promise<void> } | null = null;
let holdNext = false;

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
    await releaseHeld();
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
  const pageCache = new HeldPageCache(
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
  const vfs = new WatchedVfs(meta, data, options(), pageCache);
  await vfs.start();
  session = await mount({ mountpoint, fs: vfs, options: { unmountOnSignals: false } });
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
