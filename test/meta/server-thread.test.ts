import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, FsError, ROOT_INO, asSliceId } from '../../src/common/index.js';
import { formatVolume, type Caller } from '../../src/meta/index.js';
import { startMetaServer } from '../../src/meta/server/index.js';
import { openThreadedMetaService } from '../../src/meta/server/index.js';
import { connectMeta } from '../../src/meta/client/index.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

test('opening an engine thread on a missing volume fails with the service’s own error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
  try {
    await assert.rejects(openThreadedMetaService({ engineUrl: `sqlite:${join(dir, 'none.db')}` }), {
      errno: Errno.ENOENT,
      message: /no volume in .*run "strata format" first/,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a service on an engine thread serves the same calls, Buffers, Maps and errors over RPC', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-thread-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'threaded' });
  const failures: Error[] = [];
  const service = await openThreadedMetaService({ engineUrl, onFailure: (error) => failures.push(error) });
  try {
    assert.equal(service.settings.name, 'threaded');
    const server = await startMetaServer({ service, listen: join(dir, 'meta.sock'), secret: service.secret });
    const client = await connectMeta({ address: server.address, secret: service.secret });
    try {
      const created = await Promise.all(
        Array.from({ length: 100 }, (_, i) => client.mknod(root, ROOT_INO, `f${i}`, S_IFREG | 0o644, 0, 0)),
      );
      assert.equal(new Set(created.map((attr) => attr.ino)).size, 100);
      // A recorded change's reply crosses from the engine thread as the bytes its outcome was
      // stored as and goes out in the RESULT frame unchanged: the same attributes as a fresh read.
      for (const i of [0, 3, 99]) assert.deepEqual(created[i], await client.getattr(created[i].ino));
      assert.equal((await client.lookup(root, ROOT_INO, 'f7')).ino, created[7].ino);
      await assert.rejects(client.lookup(root, ROOT_INO, 'nope'), (error: unknown) => {
        assert.ok(error instanceof FsError);
        assert.equal(error.errno, Errno.ENOENT);
        return true;
      });
      const value = Buffer.from([9, 8, 7]);
      await client.setxattr(root, created[0].ino, 'user.v', value, 0);
      assert.deepEqual(await client.getxattr(created[0].ino, 'user.v'), value);
      const slice = {
        id: asSliceId(await client.allocateSliceIds(1)),
        sliceSizeBytes: 100,
        chunkOffsetBytes: 0,
        sliceOffsetBytes: 0,
        lengthBytes: 100,
        blockSizeBytes: 4096,
      };
      await client.commitWrites(root, created[0].ino, [{ chunkIndex: 0, slice }], 100, { sec: 1, nsec: 0 });
      assert.deepEqual((await client.readSlices(created[0].ino, 0, 0)).get(0), [slice]);
      assert.equal((await client.readdir(root, ROOT_INO, 0, 1_000, false)).length, 102);
    } finally {
      await client.close();
      await server.close();
    }
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, [], 'a normal close is not a failure');
});
