import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { ROOT_INO } from '../../src/common/index.js';
import type { MetaApi, MetaService } from '../../src/meta/index.js';
import type { Vfs } from '../../src/vfs/index.js';
import { rootContext as ctx, VfsTestVolume } from './volume-fixture.js';

// Two mounts of a shared volume write disjoint records of one file (an N-1 checkpoint). When
// the other mount's commit lands between this mount's last look at the file and its own commit,
// and the server's push of that commit is late (several metadata servers hear of each other's
// commits through PostgreSQL, maybe after the reply of the commit that follows), this mount
// must not take its slice lists plus its own commit for the file: commitWrites answers the
// inode's ctime from before the commit, and a ctime this mount has not seen means another
// change came between. Here the mounts get no pushes at all (no Coherence), the push as late as
// it can be, over the real service (SQLite) and data path.
const { O_RDWR, O_CREAT, O_RDONLY } = constants;
const RECORD_BYTES = 1000;
let meta: MetaService;
let volume: VfsTestVolume;

/** The service as a mount sees it, counting the slice lists it asks for. */
function countingMeta(counts: { readSlices: number }): MetaApi {
  return new Proxy(meta, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (prop !== 'readSlices') return method.bind(target);
      return (...args: unknown[]) => {
        counts.readSlices++;
        return method.apply(target, args);
      };
    },
  });
}

/** A mount of a volume other mounts change too (strata mount, strata up --listen). */
function sharedMount(api: MetaApi = meta): Promise<Vfs> {
  return volume.mount(api, { sharedWithOtherMounts: true });
}

before(async () => {
  volume = await VfsTestVolume.open('commit-before-state');
  meta = volume.meta;
});

after(async () => {
  await volume?.close();
});

function record(letter: string): Buffer {
  return Buffer.alloc(RECORD_BYTES, letter);
}

test('the service answers a commit with the ctime the inode had just before it', async () => {
  const created = await meta.mknod({ uid: 0, gid: 0, pid: 1 }, ROOT_INO, 'ctime-before', 0o100644, 0, 0);
  const before = await meta.getattr(created.ino);
  const slice = {
    id: await meta.allocateSliceIds(1),
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: 10,
    sliceSizeBytes: 10,
    blockSizeBytes: 64 * 1024,
  };
  const committed = await meta.commitWrites(
    { uid: 0, gid: 0, pid: 1 },
    created.ino,
    [{ chunkIndex: 0, slice }],
    10,
    { sec: before.ctime.sec + 1, nsec: 0 },
  );
  assert.deepEqual(committed.ctimeBefore, before.ctime);
  assert.deepEqual(committed.ctime, { sec: before.ctime.sec + 1, nsec: 0 });
});

test("a commit that lands after another mount's commit unseen here drops the lists: a new open reads both mounts' records", async () => {
  const a = await sharedMount();
  const b = await sharedMount();
  const { attr, fh } = await a.create(ctx(), ROOT_INO, 'checkpoint', 0o100644, O_RDWR | O_CREAT);
  const ino = attr.ino;
  await a.write(ctx(), ino, fh, 0, record('a'), 0);
  await a.fsync(ctx(), ino, fh);
  // This mount reads the file: its slice list of chunk 0 is cached from here on.
  assert.ok((await a.read(ctx(), ino, fh, 0, 3 * RECORD_BYTES)).equals(record('a')));
  await a.write(ctx(), ino, fh, 2 * RECORD_BYTES, record('c'), 0);

  // The other mount commits its record between; its push never comes.
  const other = await b.open(ctx(), ino, O_RDWR);
  await b.write(ctx(), ino, other.fh, RECORD_BYTES, record('b'), 0);
  await b.flush(ctx(), ino, other.fh, 2n);
  await b.release(ctx(), ino, other.fh, 0, 2n, false);

  await a.fsync(ctx(), ino, fh);
  const expected = Buffer.concat([record('a'), record('b'), record('c')]);
  const reader = await a.open(ctx(), ino, O_RDONLY);
  assert.equal(reader.keepCache, false, 'the kernel may hold pages without the other record');
  const seen = await a.read(ctx(), ino, reader.fh, 0, 4 * RECORD_BYTES);
  assert.equal(seen.length, expected.length);
  assert.ok(
    seen.equals(expected),
    `record b read as ${JSON.stringify(seen.subarray(RECORD_BYTES, RECORD_BYTES + 8).toString())}`,
  );
  assert.ok((await a.read(ctx(), ino, fh, 0, 4 * RECORD_BYTES)).equals(expected), 'the writer handle too');
  await a.release(ctx(), ino, reader.fh, 0, 1n, false);
  await a.release(ctx(), ino, fh, 0, 1n, false);
});

test("a shared mount's own commits, one after another, keep its lists: no change came between", async () => {
  const counts = { readSlices: 0 };
  const a = await sharedMount(countingMeta(counts));
  const { attr, fh } = await a.create(ctx(), ROOT_INO, 'own-commits', 0o100644, O_RDWR | O_CREAT);
  const ino = attr.ino;
  await a.write(ctx(), ino, fh, 0, record('a'), 0);
  await a.fsync(ctx(), ino, fh);
  assert.ok((await a.read(ctx(), ino, fh, 0, RECORD_BYTES)).equals(record('a')));
  const asked = counts.readSlices;
  for (const [i, letter] of ['b', 'c', 'd'].entries()) {
    await a.write(ctx(), ino, fh, (i + 1) * RECORD_BYTES, record(letter), 0);
    await a.fsync(ctx(), ino, fh);
  }
  const whole = await a.read(ctx(), ino, fh, 0, 4 * RECORD_BYTES);
  assert.ok(whole.equals(Buffer.concat(['a', 'b', 'c', 'd'].map(record))));
  assert.equal(counts.readSlices, asked, 'the lists were extended by each commit, not read again');
  const reader = await a.open(ctx(), ino, O_RDONLY);
  assert.equal(reader.keepCache, true, 'the kernel pages are this mount’s own writes');
  await a.release(ctx(), ino, reader.fh, 0, 1n, false);
  await a.release(ctx(), ino, fh, 0, 1n, false);
});
