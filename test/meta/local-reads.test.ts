import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno, ROOT_INO, isFsError } from '../../src/common/index.js';
import { formatVolume, type Caller, type MetaApi } from '../../src/meta/index.js';
import { META_METHODS, openThreadedMetaService } from '../../src/meta/server/index.js';
import { withLocalReads } from '../../src/meta/server/local-reads.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

/** Forwards to `inner`, counting calls per method. */
function counting(inner: MetaApi): { api: MetaApi; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const api: Record<string, unknown> = {};
  for (const method of Object.keys(META_METHODS)) {
    const fn = (inner as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method];
    api[method] = (...args: unknown[]) => {
      calls.set(method, (calls.get(method) ?? 0) + 1);
      return fn.apply(inner, args);
    };
  }
  return { api: api as unknown as MetaApi, calls };
}

test('short reads are answered on the serving thread and always see the caller’s own changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-meta-local-reads-'));
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'local' });
  const threaded = await openThreadedMetaService({ engineUrl });
  const { api: engineThread, calls } = counting(threaded);
  const local = await withLocalReads(engineThread, engineUrl, threaded.settings);
  try {
    assert.ok(local, 'SQLite has a reader');
    const meta = local.api;
    // Background readers keep reads queued while 16 lanes change and read back their own
    // files: every read must see the changes whose replies came before it.
    let done = false;
    const background = Array.from({ length: 32 }, async () => {
      while (!done) {
        // Four reads per turn of the event loop: queued together, without starving it (the
        // engine thread's replies arrive as messages).
        await Promise.all([1, 2, 3, 4].map(() => meta.getattr(ROOT_INO)));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        for (let i = 0; i < 40; i++) {
          const name = `f${lane}-${i}`;
          const created = await meta.mknod(root, ROOT_INO, name, S_IFREG | 0o644, 0, 0);
          assert.equal((await meta.lookup(root, ROOT_INO, name)).ino, created.ino);
          await meta.setattr(root, created.ino, { mode: S_IFREG | 0o600 });
          assert.equal((await meta.getattr(created.ino)).mode, S_IFREG | 0o600);
          if (i % 2 === 0) {
            await meta.unlink(root, ROOT_INO, name);
            await assert.rejects(meta.lookup(root, ROOT_INO, name), (error: unknown) => {
              assert.ok(
                isFsError(error) && error.errno === Errno.ENOENT,
                `lookup of unlinked ${name}: ${String(error)}`,
              );
              return true;
            });
          }
        }
      }),
    ).finally(() => (done = true));
    await Promise.all(background);
    assert.equal((await meta.statfs()).inodesUsed, 1 + 16 * 20);
    assert.equal(calls.get('mknod'), 640);
    for (const method of ['lookup', 'getattr', 'statfs']) {
      assert.equal(calls.get(method), undefined, `${method} went to the engine thread`);
    }
    // readdir stays on the engine thread (milliseconds per page would block the serving thread).
    const entries = await meta.readdir(root, ROOT_INO, 0, 1000, false);
    assert.equal(entries.length, 2 + 16 * 20);
    assert.equal(calls.get('readdir'), 1);
  } finally {
    await local?.close();
    await threaded.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an engine without a reader (PostgreSQL) gets no local reads', async () => {
  const never = {} as MetaApi;
  assert.equal(await withLocalReads(never, 'postgres://127.0.0.1:1/none', {} as never), undefined);
});
