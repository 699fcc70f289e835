import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { Errno, ROOT_INO, fsError, isFsError } from '../../src/common/index.js';
import type { MetaApi, MetaService } from '../../src/meta/index.js';
import type { Vfs } from '../../src/vfs/index.js';
import { rootContext as ctx, VfsTestVolume } from './volume-fixture.js';

// An fsync whose commit fails (the metadata server out of reach longer than the client
// retries: EIO) keeps the writes: the next fsync commits them, and this mount and others read
// them. Before, the failed commit dropped them: the next fsync succeeded with nothing to commit,
// the bytes were gone, and this mount read the old ones back. The real service (SQLite) and
// data path, with commitWrites failing while `metaDown` is set.
const { O_RDWR, O_CREAT, O_RDONLY } = constants;
let meta: MetaService;
let volume: VfsTestVolume;
let metaDown = false;

/** The service, with commitWrites failing as the RPC client fails once its retries ran out. */
function flakyMeta(): MetaApi {
  return new Proxy(meta, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (prop !== 'commitWrites') return method.bind(target);
      return (...args: unknown[]) =>
        metaDown
          ? Promise.reject(fsError.EIO('commitWrites: metadata server unreachable after 5 attempts'))
          : method.apply(target, args);
    },
  });
}

function mount(api: MetaApi): Promise<Vfs> {
  return volume.mount(api);
}

before(async () => {
  volume = await VfsTestVolume.open('commit-retry');
  meta = volume.meta;
});

after(async () => {
  await volume?.close();
});

test('writes whose fsync failed in the commit are committed by the next fsync, and read back everywhere', async () => {
  const vfs = await mount(flakyMeta());
  const other = await mount(meta);
  const { attr, fh } = await vfs.create(ctx(), ROOT_INO, 'db', 0o100644, O_RDWR | O_CREAT);
  const ino = attr.ino;
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('old page, committed'), 0);
  await vfs.fsync(ctx(), ino, fh);

  await vfs.write(ctx(), ino, fh, 0, Buffer.from('NEW'), 0);
  await vfs.write(ctx(), ino, fh, 19, Buffer.from(' and a tail'), 0);
  metaDown = true;
  await assert.rejects(vfs.fsync(ctx(), ino, fh), (err) => isFsError(err) && err.errno === Errno.EIO);
  // Still this mount's pending writes: the size includes them.
  assert.equal((await vfs.getattr(ctx(), ino)).attr.sizeBytes, 30);
  metaDown = false;
  await vfs.fsync(ctx(), ino, fh);

  const expected = 'NEW page, committed and a tail';
  assert.equal((await vfs.read(ctx(), ino, fh, 0, 100)).toString(), expected);
  assert.equal((await meta.getattr(ino)).sizeBytes, expected.length);
  const reader = await other.open(ctx(), ino, O_RDONLY);
  assert.equal((await other.read(ctx(), ino, reader.fh, 0, 100)).toString(), expected);
  await other.release(ctx(), ino, reader.fh, 0, 1n, false);
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
});

test('a close after a failed commit commits the writes once the service answers again', async () => {
  const vfs = await mount(flakyMeta());
  const { attr, fh } = await vfs.create(ctx(), ROOT_INO, 'log', 0o100644, O_RDWR | O_CREAT);
  await vfs.write(ctx(), attr.ino, fh, 0, Buffer.from('record 1\n'), 0);
  metaDown = true;
  await assert.rejects(vfs.fsync(ctx(), attr.ino, fh), (err) => isFsError(err) && err.errno === Errno.EIO);
  metaDown = false;
  await vfs.flush(ctx(), attr.ino, fh, 1n);
  await vfs.release(ctx(), attr.ino, fh, 0, 1n, false);
  assert.equal((await meta.getattr(attr.ino)).sizeBytes, 9);
});
