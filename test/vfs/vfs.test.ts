import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Errno, ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { LockType, type Entry, type NegativeEntry, type RequestContext } from '../../src/fuse/index.js';
import { formatVolume, openMetaService, type MetaApi, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { Vfs } from '../../src/vfs/index.js';

// The VFS over the real metadata service (SQLite in a temp dir) and the real data path
// (file: object store), called the way the FUSE layer calls it, without a kernel mount.
const dir = mkdtempSync('/tmp/strata-vfs-unit-');
let meta: MetaService;
let store: ObjectStore;
let data: DataPath;
let vfs: Vfs;
let otherVfs: Vfs;
let otherData: DataPath;
const logged: string[] = [];

function ctx(signal: AbortSignal = new AbortController().signal): RequestContext {
  return { uid: 0, gid: 0, pid: process.pid, umask: 0o022, unique: 1n, signal };
}

function newVfs(d: DataPath, metaApi: MetaApi = meta): Vfs {
  return new Vfs(metaApi, d, {
    attrTimeoutMs: 1000,
    entryTimeoutMs: 1000,
    lockRetryMaxMs: 20,
    heartbeatIntervalMs: 60_000,
    compactSlicesThreshold: 8,
    mountpoint: dir,
    version: 'test',
    log: (m) => logged.push(m),
  });
}

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, {
    name: 'unit',
    storageUrl: `file:${join(dir, 'objects')}`,
    blockSizeBytes: 64 * 1024,
    chunkSizeBytes: 1024 * 1024,
  });
  meta = await openMetaService({ engineUrl });
  store = await openObjectStore(`file:${join(dir, 'objects')}`);
  const volume = await meta.volume();
  const options = {
    store,
    blockSizeBytes: volume.blockSizeBytes,
    chunkSizeBytes: volume.chunkSizeBytes,
    memoryBudgetBytes: 64 * 1024 * 1024,
    allocateSliceIds: (n: number) => meta.allocateSliceIds(n),
  };
  data = createDataPath(options);
  otherData = createDataPath(options);
  vfs = newVfs(data);
  otherVfs = newVfs(otherData);
  await vfs.start();
  await otherVfs.start();
});

after(async () => {
  await vfs?.stop().catch(() => undefined);
  await otherVfs?.stop().catch(() => undefined);
  await data?.close();
  await otherData?.close();
  await store?.close();
  await meta?.close();
  rmSync(dir, { recursive: true, force: true });
});

const { O_RDWR, O_RDONLY, O_APPEND, O_TRUNC, O_CREAT } = constants;

async function create(name: string, flags = O_RDWR | O_CREAT): Promise<{ ino: Ino; fh: number }> {
  const reply = await vfs.create(ctx(), ROOT_INO, name, 0o100644, flags);
  return { ino: reply.attr.ino, fh: reply.fh };
}

test("reads see the handle's own pending writes, and getattr reports the size including them", async () => {
  const { ino, fh } = await create('pending');
  const payload = Buffer.from('hello, pending world');
  assert.equal(await vfs.write(ctx(), ino, fh, 100, payload, 0), payload.length);
  const attr = await vfs.getattr(ctx(), ino);
  assert.equal(attr.attr.sizeBytes, 100 + payload.length, 'size includes unflushed writes');
  const back = await vfs.read(ctx(), ino, fh, 90, 200);
  assert.equal(back.length, 10 + payload.length, 'the read stops at the end of the pending write');
  assert.ok(back.subarray(0, 10).equals(Buffer.alloc(10)), 'the gap before the write reads as zeros');
  assert.ok(back.subarray(10).equals(payload));
  await vfs.flush(ctx(), ino, fh, 1n);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  assert.equal((await meta.getattr(ino)).sizeBytes, 120, 'close committed the size');
});

test('close-to-open: a file closed by one mount is read whole by another', async () => {
  const { ino, fh } = await create('c2o');
  const first = Buffer.alloc(300_000, 'a');
  await vfs.write(ctx(), ino, fh, 0, first, 0);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  const other = await otherVfs.open(ctx(), ino, O_RDONLY);
  assert.ok((await otherVfs.read(ctx(), ino, other.fh, 0, 400_000)).equals(first));
  await otherVfs.release(ctx(), ino, other.fh, 0, 2n, false);

  // Rewritten shorter on the first mount; the second sees the new bytes and size on reopen.
  const again = await vfs.open(ctx(), ino, O_RDWR | O_TRUNC);
  const second = Buffer.alloc(1000, 'b');
  await vfs.write(ctx(), ino, again.fh, 0, second, 0);
  await vfs.release(ctx(), ino, again.fh, 0, 1n, false);
  const reopened = await otherVfs.open(ctx(), ino, O_RDONLY);
  assert.equal(reopened.keepCache, false, 'the kernel must drop its pages of the old content');
  assert.ok((await otherVfs.read(ctx(), ino, reopened.fh, 0, 400_000)).equals(second));
  await otherVfs.release(ctx(), ino, reopened.fh, 0, 2n, false);
  const unchanged = await otherVfs.open(ctx(), ino, O_RDONLY);
  assert.equal(unchanged.keepCache, true, 'an unchanged file keeps the page cache');
  await otherVfs.release(ctx(), ino, unchanged.fh, 0, 2n, false);
});

test("O_APPEND writes land at the end even when the caller's offset is stale", async () => {
  const { ino, fh } = await create('append');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('12345'), 0);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  const appender = await vfs.open(ctx(), ino, O_RDWR | O_APPEND);
  await vfs.write(ctx(), ino, appender.fh, 0, Buffer.from('678'), 0);
  assert.equal((await vfs.read(ctx(), ino, appender.fh, 0, 100)).toString(), '12345678');
  await vfs.release(ctx(), ino, appender.fh, 0, 1n, false);
});

test('truncate through setattr cuts pending writes too, and extending reads zeros', async () => {
  const { ino, fh } = await create('trunc');
  await vfs.write(ctx(), ino, fh, 0, Buffer.alloc(5000, 'x'), 0);
  await vfs.setattr(ctx(), ino, { sizeBytes: 10, fh });
  await vfs.setattr(ctx(), ino, { sizeBytes: 20, fh });
  const back = await vfs.read(ctx(), ino, fh, 0, 100);
  assert.ok(back.equals(Buffer.concat([Buffer.alloc(10, 'x'), Buffer.alloc(10)])));
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
});

test("utimes through a descriptor with pending writes (tar's futimens before close) is sent while the writes' commit is still open, so both can share one metadata batch", async () => {
  // A data path of its own, so its slice-id batch is allocated before the measured part.
  const ownData = createDataPath({
    store,
    blockSizeBytes: 64 * 1024,
    chunkSizeBytes: 1024 * 1024,
    memoryBudgetBytes: 16 * 1024 * 1024,
    allocateSliceIds: (n: number) => meta.allocateSliceIds(n),
  });
  // Which of the two calls started and ended when: the overlap is what the VFS guarantees; that
  // the engine then commits both in one batch depends on timing (under load the batch may close
  // between them), so the count of commits is only bounded.
  const events: string[] = [];
  const spied = new Proxy(meta, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (prop !== 'commitWrites' && prop !== 'setattr') return method.bind(target);
      return async (...args: unknown[]) => {
        events.push(`${prop} start`);
        try {
          return await method.apply(target, args);
        } finally {
          events.push(`${prop} end`);
        }
      };
    },
  });
  const own = newVfs(ownData, spied);
  await own.start();
  const commits = (): number => (meta.engine as unknown as { counts: { commits: number } }).counts.commits;
  try {
    const warm = await own.create(ctx(), ROOT_INO, 'utimes-warm', 0o100644, O_RDWR | O_CREAT);
    await own.write(ctx(), warm.attr.ino, warm.fh, 0, Buffer.from('warm'), 0);
    await own.release(ctx(), warm.attr.ino, warm.fh, 0, 1n, false);

    const file = await own.create(ctx(), ROOT_INO, 'utimes', 0o100644, O_RDWR | O_CREAT);
    const ino = file.attr.ino;
    const payload = Buffer.from('archived bytes');
    await own.write(ctx(), ino, file.fh, 0, payload, 0);
    const archived = { sec: 1_000_000_000, nsec: 5 };
    const before = commits();
    events.length = 0;
    const reply = await own.setattr(ctx(), ino, { atime: archived, mtime: archived, fh: file.fh });
    assert.deepEqual(events.slice(0, 2), ['commitWrites start', 'setattr start'], events.join(', '));
    assert.ok(commits() - before <= 2, `${commits() - before} commits for the writes and the times`);
    assert.deepEqual([reply.attr.mtimeSec, reply.attr.mtimeNsec], [archived.sec, archived.nsec]);
    assert.equal(reply.attr.sizeBytes, payload.length);
    const committed = await meta.getattr(ino);
    assert.deepEqual(committed.mtime, archived, 'the explicit mtime wins over the write time');
    assert.equal(committed.sizeBytes, payload.length);
    // A chmod after it is a change of its own; closing commits nothing more.
    await own.setattr(ctx(), ino, { mode: 0o100600, fh: file.fh });
    await own.release(ctx(), ino, file.fh, 0, 1n, false);
    const reader = await vfs.open(ctx(), ino, O_RDONLY);
    assert.ok((await vfs.read(ctx(), ino, reader.fh, 0, 100)).equals(payload));
    await vfs.release(ctx(), ino, reader.fh, 0, 1n, false);
    assert.deepEqual((await meta.getattr(ino)).mtime, archived);
  } finally {
    await own.stop();
    await ownData.close();
  }
});

test('many small committed writes get compacted in the background and still read back', async () => {
  const { ino, fh } = await create('fragmented');
  const expected = Buffer.alloc(40 * 1000);
  for (let i = 0; i < 40; i++) {
    const piece = Buffer.alloc(1000, 65 + (i % 26));
    piece.copy(expected, i * 1000);
    await vfs.write(ctx(), ino, fh, i * 1000, piece, 0);
    await vfs.fsync(ctx(), ino, fh, false);
  }
  for (let i = 0; i < 100; i++) {
    const slices = (await meta.readSlices(ino, 0, 0)).get(0) ?? [];
    if (slices.length < 8) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const slices = (await meta.readSlices(ino, 0, 0)).get(0) ?? [];
  assert.ok(slices.length < 40, `compaction merged the chunk (now ${slices.length} slices)`);
  assert.ok((await vfs.read(ctx(), ino, fh, 0, 50_000)).equals(expected));
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
});

test('a blocking lock waits for the holder on another mount and stops with EINTR when interrupted', async () => {
  const { ino, fh } = await create('locked');
  const other = await otherVfs.open(ctx(), ino, O_RDWR);
  const whole = { start: 0, end: Number.MAX_SAFE_INTEGER, type: LockType.F_WRLCK, pid: 1 };
  await vfs.setlk(ctx(), ino, fh, 11n, whole, false, false);
  const conflict = await otherVfs.getlk(ctx(), ino, other.fh, 22n, whole);
  assert.equal(conflict.type, LockType.F_WRLCK, 'the other mount sees the conflicting lock');

  const interrupt = new AbortController();
  const waiting = otherVfs.setlk(ctx(interrupt.signal), ino, other.fh, 22n, whole, true, false);
  await new Promise((resolve) => setTimeout(resolve, 50));
  interrupt.abort();
  await assert.rejects(waiting, (err) => isFsError(err) && err.errno === Errno.EINTR);

  const granted = otherVfs.setlk(ctx(), ino, other.fh, 22n, whole, true, false);
  await new Promise((resolve) => setTimeout(resolve, 30));
  await vfs.flush(ctx(), ino, fh, 11n); // close(2) drops the holder's POSIX locks
  await granted;
  await otherVfs.setlk(ctx(), ino, other.fh, 22n, { ...whole, type: LockType.F_UNLCK }, false, false);
  await vfs.release(ctx(), ino, fh, 0, 11n, false);
  await otherVfs.release(ctx(), ino, other.fh, 0, 22n, false);
});

test('closing any descriptor of a file drops the POSIX locks its process took through another', async () => {
  const { ino, fh } = await create('locked-twice');
  const second = await vfs.open(ctx(), ino, O_RDWR);
  const other = await otherVfs.open(ctx(), ino, O_RDWR);
  const range = { start: 100, end: 199, type: LockType.F_WRLCK, pid: 1 };
  await vfs.setlk(ctx(), ino, fh, 11n, range, false, false);
  // The same process (lock owner 11) closes a second descriptor it never locked through.
  await vfs.flush(ctx(), ino, second.fh, 11n);
  await vfs.release(ctx(), ino, second.fh, 0, 11n, false);
  const seen = await otherVfs.getlk(ctx(), ino, other.fh, 22n, range);
  assert.equal(seen.type, LockType.F_UNLCK, 'the lock went with the close, as on any Linux file system');
  await vfs.release(ctx(), ino, fh, 0, 11n, false);
  await otherVfs.release(ctx(), ino, other.fh, 0, 22n, false);
});

test('the last close of an open file drops its OFD locks', async () => {
  const { ino, fh } = await create('ofd-locked');
  const other = await otherVfs.open(ctx(), ino, O_RDWR);
  const range = { start: 0, end: 9, type: LockType.F_WRLCK, pid: 1 };
  // An OFD lock's owner is the open file (33), not the process (44) whose close flushes.
  await vfs.setlk(ctx(), ino, fh, 33n, range, false, false);
  await vfs.flush(ctx(), ino, fh, 44n);
  assert.equal((await otherVfs.getlk(ctx(), ino, other.fh, 22n, range)).type, LockType.F_WRLCK);
  await vfs.release(ctx(), ino, fh, 0, 0n, false);
  const seen = await otherVfs.getlk(ctx(), ino, other.fh, 22n, range);
  assert.equal(seen.type, LockType.F_UNLCK, 'the lock went with its open file');
  await otherVfs.release(ctx(), ino, other.fh, 0, 22n, false);
});

test('a create that loses the race to another mount opens the file it created, unless O_EXCL', async () => {
  const theirs = await otherVfs.create(ctx(), ROOT_INO, 'raced', 0o644, O_RDWR | O_CREAT);
  await otherVfs.write(ctx(), theirs.attr.ino, theirs.fh, 0, Buffer.from('first'), 0);
  await otherVfs.release(ctx(), theirs.attr.ino, theirs.fh, 0, 1n, false);
  const mine = await vfs.create(ctx(), ROOT_INO, 'raced', 0o644, O_RDWR | O_CREAT);
  assert.equal(mine.attr.ino, theirs.attr.ino);
  assert.equal((await vfs.read(ctx(), mine.attr.ino, mine.fh, 0, 100)).toString(), 'first');
  await vfs.release(ctx(), mine.attr.ino, mine.fh, 0, 1n, false);
  await assert.rejects(
    vfs.create(ctx(), ROOT_INO, 'raced', 0o644, O_RDWR | O_CREAT | constants.O_EXCL),
    (err) => isFsError(err) && err.errno === Errno.EEXIST,
  );
  const truncated = await vfs.create(ctx(), ROOT_INO, 'raced', 0o644, O_RDWR | O_CREAT | O_TRUNC);
  assert.equal(truncated.attr.sizeBytes, 0);
  await vfs.release(ctx(), truncated.attr.ino, truncated.fh, 0, 1n, false);
  // The kernel skips its permission check for a file it believes it created: the VFS checks.
  await vfs.setattr(ctx(), truncated.attr.ino, { mode: 0o600 });
  const nobody = { ...ctx(), uid: 65534, gid: 65534 };
  await assert.rejects(
    vfs.create(nobody, ROOT_INO, 'raced', 0o644, O_RDWR | O_CREAT),
    (err) => isFsError(err) && err.errno === Errno.EACCES,
  );
});

test('lookups of missing names are cacheable negatives; xattrs round-trip', async () => {
  const missing = (await vfs.lookup(ctx(), ROOT_INO, 'nope')) as NegativeEntry;
  assert.equal(missing.negative, true);
  const { ino, fh } = await create('xattrs');
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  await vfs.setxattr(ctx(), ino, 'user.color', Buffer.from('blue'), 0);
  assert.equal((await vfs.getxattr(ctx(), ino, 'user.color')).toString(), 'blue');
  assert.deepEqual(await vfs.listxattr(ctx(), ino), ['user.color']);
  const found = (await vfs.lookup(ctx(), ROOT_INO, 'xattrs')) as Entry;
  assert.equal(found.attr.ino, ino);
});

test('the security.capability the kernel asks of a file before its first write is answered without the service while this mount created it and it is open', async () => {
  const asked: string[] = [];
  const getxattr = meta.getxattr.bind(meta);
  meta.getxattr = (ino, name) => {
    asked.push(name);
    return getxattr(ino, name);
  };
  const noData = (err: unknown): boolean => isFsError(err) && err.errno === Errno.ENODATA;
  try {
    const { ino, fh } = await create('capabilities');
    await assert.rejects(vfs.getxattr(ctx(), ino, 'security.capability'), noData);
    assert.deepEqual(asked, []);
    // Any other name, and the name once an xattr was set here, still go to the service.
    await assert.rejects(vfs.getxattr(ctx(), ino, 'user.other'), noData);
    const capability = Buffer.from('0100000201000000', 'hex');
    await vfs.setxattr(ctx(), ino, 'security.capability', capability, 0);
    assert.deepEqual(await vfs.getxattr(ctx(), ino, 'security.capability'), capability);
    await vfs.release(ctx(), ino, fh, 0, 1n, false);
    // Closed: nothing is assumed any more, whoever changes it next.
    const second = await create('capabilities-closed');
    await vfs.release(ctx(), second.ino, second.fh, 0, 1n, false);
    await assert.rejects(vfs.getxattr(ctx(), second.ino, 'security.capability'), noData);
    assert.deepEqual(asked, ['user.other', 'security.capability', 'security.capability']);
  } finally {
    meta.getxattr = getxattr;
  }
});

test('an open file keeps its data after its last name is removed, until it is closed', async () => {
  const { ino, fh } = await create('doomed');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('still here'), 0);
  await vfs.fsync(ctx(), ino, fh, false);
  await vfs.unlink(ctx(), ROOT_INO, 'doomed');
  assert.equal((await vfs.read(ctx(), ino, fh, 0, 100)).toString(), 'still here');
  await vfs.write(ctx(), ino, fh, 10, Buffer.from('!'), 0);
  await vfs.fsync(ctx(), ino, fh, false);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  await assert.rejects(meta.getattr(ino), (err) => isFsError(err) && err.errno === Errno.ENOENT);
});

test('reopening an unchanged file reuses its slice lists; another mount changing it, even with its mtime put back, is read at the next open', async () => {
  const { ino, fh } = await create('reused-slice-lists');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('first version'), 0);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  let asked = 0;
  const readSlices = meta.readSlices;
  meta.readSlices = (...args) => {
    asked++;
    return readSlices.apply(meta, args);
  };
  const readAll = async (): Promise<string> => {
    const opened = await vfs.open(ctx(), ino, O_RDONLY);
    try {
      return (await vfs.read(ctx(), ino, opened.fh, 0, 100)).toString();
    } finally {
      await vfs.release(ctx(), ino, opened.fh, 0, 1n, false);
    }
  };
  try {
    assert.equal(await readAll(), 'first version');
    assert.equal(asked, 1, 'the first read asks for the lists');
    assert.equal(await readAll(), 'first version');
    assert.equal(asked, 1, 'an unchanged file is read with the lists of its last open');

    // The other mount rewrites the same bytes' range, then puts size and mtime back as they were.
    const before = await meta.getattr(ino);
    const writer = await otherVfs.open(ctx(), ino, O_RDWR);
    await otherVfs.write(ctx(), ino, writer.fh, 0, Buffer.from('FIRST'), 0);
    await otherVfs.release(ctx(), ino, writer.fh, 0, 2n, false);
    await otherVfs.setattr(ctx(), ino, { mtime: before.mtime });
    assert.deepEqual((await meta.getattr(ino)).mtime, before.mtime);
    assert.equal(await readAll(), 'FIRST version', 'close-to-open: the other mount’s write is read');
    assert.equal(asked, 2);
  } finally {
    meta.readSlices = readSlices;
  }
});

test('a removed directory the kernel still holds without an open (a working directory) answers getattr with nlink 0 until FORGET', async () => {
  const dirIno = (await vfs.mkdir(ctx(), ROOT_INO, 'cwd-of-someone', 0o40750)).attr.ino;
  await vfs.rmdir(ctx(), ROOT_INO, 'cwd-of-someone');
  await assert.rejects(meta.getattr(dirIno), (err) => isFsError(err) && err.errno === Errno.ENOENT);
  const kept = (await vfs.getattr(ctx(), dirIno)).attr;
  assert.equal(kept.nlink, 0);
  assert.equal(kept.mode, 0o40750 & ~0o022);
  // Another mount never answered for it: ENOENT there, as before.
  await assert.rejects(
    otherVfs.getattr(ctx(), dirIno),
    (err) => isFsError(err) && err.errno === Errno.ENOENT,
  );
  await vfs.forget(dirIno);
  await assert.rejects(vfs.getattr(ctx(), dirIno), (err) => isFsError(err) && err.errno === Errno.ENOENT);
});

test('a file removed here that the kernel still holds (an O_PATH descriptor) answers getattr with its last attributes and nlink 0 until FORGET', async () => {
  const { ino, fh } = await create('held-by-o-path');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('twelve bytes'), 0);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  await vfs.unlink(ctx(), ROOT_INO, 'held-by-o-path');
  await assert.rejects(meta.getattr(ino), (err) => isFsError(err) && err.errno === Errno.ENOENT);
  const kept = (await vfs.getattr(ctx(), ino)).attr;
  assert.equal(kept.nlink, 0);
  assert.equal(kept.sizeBytes, 12);
  assert.equal(kept.mode, 0o100644 & ~0o022);
  // Another mount did not remove it: ENOENT there, as before.
  await assert.rejects(otherVfs.getattr(ctx(), ino), (err) => isFsError(err) && err.errno === Errno.ENOENT);
  await vfs.forget(ino);
  await assert.rejects(vfs.getattr(ctx(), ino), (err) => isFsError(err) && err.errno === Errno.ENOENT);
});

test('a file renamed over here is kept the same way; a hard-linked one is not kept (the service still has it)', async () => {
  const over = await create('renamed-over');
  await vfs.release(ctx(), over.ino, over.fh, 0, 1n, false);
  const mover = await create('mover');
  await vfs.release(ctx(), mover.ino, mover.fh, 0, 1n, false);
  await vfs.rename(ctx(), ROOT_INO, 'mover', ROOT_INO, 'renamed-over', 0);
  assert.equal((await vfs.getattr(ctx(), over.ino)).attr.nlink, 0);
  await vfs.forget(over.ino);

  const linked = await create('linked-once');
  await vfs.release(ctx(), linked.ino, linked.fh, 0, 1n, false);
  await vfs.link(ctx(), linked.ino, ROOT_INO, 'linked-twice');
  await vfs.unlink(ctx(), ROOT_INO, 'linked-once');
  assert.equal((await vfs.getattr(ctx(), linked.ino)).attr.nlink, 1);
  await vfs.unlink(ctx(), ROOT_INO, 'linked-twice');
  assert.equal((await vfs.getattr(ctx(), linked.ino)).attr.nlink, 0);
  await vfs.forget(linked.ino);
});

test('with a server that reports no NameRemoval (older than the mount) removals work and a removed file answers ENOENT as before', async () => {
  const older = new Proxy(meta as MetaApi, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property !== 'unlink' || typeof value !== 'function') return value;
      return async (...args: unknown[]): Promise<undefined> => {
        await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        return undefined;
      };
    },
  });
  const olderVfs = newVfs(data, older);
  await olderVfs.start();
  try {
    const created = await olderVfs.create(ctx(), ROOT_INO, 'older-server', 0o100644, O_RDWR | O_CREAT);
    const ino = created.attr.ino;
    await olderVfs.release(ctx(), ino, created.fh, 0, 1n, false);
    await olderVfs.unlink(ctx(), ROOT_INO, 'older-server');
    await assert.rejects(olderVfs.getattr(ctx(), ino), (err) => isFsError(err) && err.errno === Errno.ENOENT);
  } finally {
    await olderVfs.stop();
  }
});
