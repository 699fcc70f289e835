import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { asSliceId, isFsError, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaServiceInWorker } from '../../src/meta/index.js';

const base = mkdtempSync(join(tmpdir(), 'strata-meta-worker-'));
after(() => rmSync(base, { recursive: true, force: true }));
const root = { uid: 0, gid: 0, pid: 1 };
const ROOT = 1 as Ino;

describe('metadata service in a worker thread', () => {
  it('answers the API with the same results and errors as in-process', async () => {
    const url = `sqlite:${join(base, 'w.db')}`;
    await formatVolume(url, { name: 'worker', chunkSizeBytes: 1 << 20, blockSizeBytes: 1 << 16 });
    const svc = await openMetaServiceInWorker({ engineUrl: url });
    try {
      const d = await svc.mkdir(root, ROOT, 'd', 0o755, 0);
      const files = await Promise.all(
        Array.from({ length: 200 }, (_, i) => svc.mknod(root, d.ino, `f${i}`, 0o100644, 0, 0)),
      );
      assert.equal(new Set(files.map((f) => f.ino)).size, 200);
      assert.equal((await svc.readdir(root, d.ino, 0, 1000, false)).length, 202);
      await assert.rejects(svc.mknod(root, d.ino, 'f0', 0o100644, 0, 0), (e: unknown) => {
        assert.ok(isFsError(e));
        assert.equal(e.code, 'EEXIST');
        assert.match(e.message, /already exists/);
        return true;
      });
      await svc.setxattr(root, files[0].ino, 'user.k', Buffer.from([1, 2, 3]), 0);
      const value = await svc.getxattr(files[0].ino, 'user.k');
      assert.ok(Buffer.isBuffer(value));
      assert.deepEqual([...value], [1, 2, 3]);
      const id = await svc.allocateSliceIds(1);
      const slice = {
        id: asSliceId(id),
        sliceSizeBytes: 4096,
        chunkOffsetBytes: 0,
        sliceOffsetBytes: 0,
        lengthBytes: 4096,
        blockSizeBytes: 1 << 16,
      };
      await svc.commitWrites(root, files[0].ino, [{ chunkIndex: 0, slice }], 4096, { sec: 5, nsec: 6 });
      const map = await svc.readSlices(files[0].ino, 0, 0);
      assert.ok(map instanceof Map);
      assert.deepEqual(map.get(0), [slice]);
      assert.match(await svc.volumeSecret(), /^[0-9a-f]{64}$/);
      assert.equal((await svc.volume()).name, 'worker');
    } finally {
      await svc.close();
    }
    await assert.rejects(svc.getattr(ROOT), /closed/);
  });

  it('fails to start with the same error as openMetaService when there is no volume', async () => {
    await assert.rejects(
      openMetaServiceInWorker({ engineUrl: `sqlite:${join(base, 'none.db')}` }),
      (e: unknown) => {
        assert.ok(isFsError(e));
        assert.equal(e.code, 'ENOENT');
        return true;
      },
    );
  });
});
