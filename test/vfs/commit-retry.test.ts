import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Errno, ROOT_INO, fsError, isFsError } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import type { RequestContext } from '../../src/fuse/index.js';
import { formatVolume, openMetaService, type MetaApi, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { Vfs } from '../../src/vfs/index.js';

// An fsync whose commit fails (the metadata server out of reach longer than the client
// retries: EIO) keeps the writes: the next fsync commits them, and this mount and others read
// them. Before, the failed commit dropped them: the next fsync succeeded with nothing to commit,
// the bytes were gone, and this mount read the old ones back. The real service (SQLite) and
// data path, with commitWrites failing while `metaDown` is set.
const dir = mkdtempSync('/tmp/strata-dbworkloads-commit-retry-');
const { O_RDWR, O_CREAT, O_RDONLY } = constants;
let meta: MetaService;
let store: ObjectStore;
let metaDown = false;
const dataPaths: DataPath[] = [];
const mounts: Vfs[] = [];

function ctx(): RequestContext {
  return { uid: 0, gid: 0, pid: process.pid, umask: 0o022, unique: 1n, signal: new AbortController().signal };
}

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

async function mount(api: MetaApi): Promise<Vfs> {
  const volume = await meta.volume();
  const data = createDataPath({
    store,
    blockSizeBytes: volume.blockSizeBytes,
    chunkSizeBytes: volume.chunkSizeBytes,
    memoryBudgetBytes: 64 * 1024 * 1024,
    allocateSliceIds: (n: number) => meta.allocateSliceIds(n),
  });
  const vfs = new Vfs(api, data, {
    attrTimeoutMs: 1000,
    entryTimeoutMs: 1000,
    lockRetryMaxMs: 20,
    heartbeatIntervalMs: 3_600_000,
    compactSlicesThreshold: 0,
    mountpoint: dir,
    version: 'test',
    log: () => undefined,
  });
  await vfs.start();
  dataPaths.push(data);
  mounts.push(vfs);
  return vfs;
}

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, {
    name: 'commit-retry',
    storageUrl: `file:${join(dir, 'objects')}`,
    blockSizeBytes: 64 * 1024,
    chunkSizeBytes: 1024 * 1024,
  });
  meta = await openMetaService({ engineUrl });
  store = await openObjectStore(`file:${join(dir, 'objects')}`);
});

after(async () => {
  for (const vfs of mounts) await vfs.stop().catch(() => undefined);
  for (const data of dataPaths) await data.close();
  await store?.close();
  await meta?.close();
  rmSync(dir, { recursive: true, force: true });
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
