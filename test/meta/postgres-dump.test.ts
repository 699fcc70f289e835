import assert from 'node:assert/strict';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { ROOT_INO, asSliceId, type Ino } from '../../src/common/index.js';
import { dumpMeta, loadMeta } from '../../src/meta/dump.js';
import type { Engine, ReadTx } from '../../src/meta/engine.js';
import { openEngine } from '../../src/meta/engine-registry.js';
import { formatVolume, openMetaService, type Caller } from '../../src/meta/index.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';
import '../../src/meta/engines/postgres/register.js';

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;

/** Everything the namespace holds, by path, without engine-assigned readdir cursors. */
async function describeTree(engine: Engine): Promise<unknown> {
  return engine.read(async (tx: ReadTx) => {
    const out: Record<string, unknown> = {};
    const walk = async (dir: Ino, path: string) => {
      for (const entry of await tx.listDir(dir, 0, 10_000)) {
        const row = await tx.getInode(entry.ino);
        const xattrs: Record<string, string> = {};
        for (const name of await tx.listXattrs(entry.ino)) {
          xattrs[name] = (await tx.getXattr(entry.ino, name))!.toString('hex');
        }
        const chunks: Record<number, unknown> = {};
        for (const index of await tx.listChunkIndexes(entry.ino, 0, 1000)) {
          chunks[index] = await tx.getChunk(entry.ino, index);
        }
        out[`${path}/${entry.name}`] = { type: entry.type, row, xattrs, chunks };
        if (row && row.parent === dir && entry.type === 0o040000)
          await walk(entry.ino, `${path}/${entry.name}`);
      }
    };
    out['/'] = await tx.getInode(ROOT_INO);
    await walk(ROOT_INO, '');
    out['#counters'] = await Promise.all(
      ['ino_hi', 'slice_hi', 'inodes_used', 'used_bytes'].map((name) => tx.getCounter(name)),
    );
    out['#settings'] = [await tx.getSetting('volume'), await tx.getSetting('secret')];
    out['#deleted'] = (await tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 1000)).map((d) => [
      d.id,
      d.sliceSizeBytes,
    ]);
    return out;
  });
}

async function dumpTo(engine: Engine, path: string): Promise<void> {
  const out = createWriteStream(path);
  await dumpMeta(engine, out);
  out.end();
  await finished(out);
}

describe('meta dump / load between SQLite and PostgreSQL', { skip: PG_SKIP_REASON }, () => {
  let dir: string;
  let db: TestDatabase;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-pg-dump-'));
    db = await createTestDatabase();
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });

  test('SQLite -> PostgreSQL -> SQLite gives the identical tree, slice maps and counters', async () => {
    const sqliteA = `sqlite:${join(dir, 'a.db')}`;
    await formatVolume(sqliteA, { name: 'roundtrip' });
    const service = await openMetaService({ engineUrl: sqliteA });
    try {
      const d1 = await service.mkdir(root, ROOT_INO, 'd1', 0o755, 0o022);
      const d2 = await service.mkdir(root, d1.ino, 'd2 with space', 0o700, 0);
      const f1 = await service.mknod(root, ROOT_INO, 'f1', S_IFREG | 0o644, 0, 0o022);
      const f2 = await service.mknod(root, d2.ino, 'f2-é', S_IFREG | 0o600, 0, 0);
      await service.mknod(root, d1.ino, 'fifo', S_IFIFO | 0o644, 0, 0);
      await service.symlink(root, d1.ino, 'link', '../f1');
      await service.link(root, f1.ino, d2.ino, 'hard');
      await service.setxattr(root, f2.ino, 'user.tag', Buffer.from([0, 1, 2, 255]), 0);
      const first = await service.allocateSliceIds(3);
      const slice = (n: number, chunkOffsetBytes: number, lengthBytes: number) => ({
        id: asSliceId(first + n),
        sliceSizeBytes: lengthBytes,
        chunkOffsetBytes,
        sliceOffsetBytes: 0,
        lengthBytes,
        blockSizeBytes: 4 * 1024 * 1024,
      });
      const mtime = { sec: 1_700_000_000, nsec: 5 };
      await service.commitWrites(root, f1.ino, [{ chunkIndex: 0, slice: slice(0, 0, 5000) }], 5000, mtime);
      await service.commitWrites(
        root,
        f1.ino,
        [{ chunkIndex: 1, slice: slice(1, 10, 100) }],
        64 * 1024 * 1024 + 110,
        mtime,
      );
      await service.commitWrites(root, f2.ino, [{ chunkIndex: 0, slice: slice(2, 0, 42) }], 42, mtime);
      const doomed = await service.mknod(root, ROOT_INO, 'doomed', S_IFREG | 0o644, 0, 0);
      const ids = await service.allocateSliceIds(1);
      await service.commitWrites(
        root,
        doomed.ino,
        [{ chunkIndex: 0, slice: { ...slice(0, 0, 7), id: ids } }],
        7,
        mtime,
      );
      await service.unlink(root, ROOT_INO, 'doomed');
      await service.setattr(root, d1.ino, { mode: 0o750 });
      await service.rename(root, ROOT_INO, 'f1', d1.ino, 'f1-moved', 0);
    } finally {
      await service.close();
    }

    const a = await openEngine(sqliteA);
    const pg = await openEngine(db.url + '?pool_size=2');
    const sqliteB = await openEngine(`sqlite:${join(dir, 'b.db')}`);
    try {
      await dumpTo(a, join(dir, 'a.jsonl'));
      const progress: number[] = [];
      const loaded = await loadMeta(pg, createReadStream(join(dir, 'a.jsonl')), {
        onProgress: (p) => progress.push(p.records),
      });
      assert.equal(loaded.inodes, 7, 'root, d1, d2, f1 (twice linked), f2, fifo, link');
      assert.equal(loaded.dentries, 7);
      assert.ok(progress.length > 0, 'progress is reported');
      await dumpTo(pg, join(dir, 'pg.jsonl'));
      await loadMeta(sqliteB, createReadStream(join(dir, 'pg.jsonl')));
      await dumpTo(sqliteB, join(dir, 'b.jsonl'));

      const treeA = await describeTree(a);
      assert.deepEqual(await describeTree(pg), treeA);
      assert.deepEqual(await describeTree(sqliteB), treeA);
      const body = (name: string) => readFileSync(join(dir, name), 'utf8').split('\n').slice(1);
      assert.deepEqual(body('b.jsonl'), body('a.jsonl'), 'the dumps agree line for line after the header');
      assert.equal(
        (treeA as { '#deleted': unknown[] })['#deleted'].length,
        1,
        'the unlinked file left one slice for GC',
      );
    } finally {
      await Promise.all([a.close(), pg.close(), sqliteB.close()]);
    }

    const onPg = await openMetaService({ engineUrl: db.url + '?pool_size=2' });
    try {
      const d1 = await onPg.lookup(root, ROOT_INO, 'd1');
      const moved = await onPg.lookup(root, d1.ino, 'f1-moved');
      assert.equal(moved.sizeBytes, 64 * 1024 * 1024 + 110);
      assert.equal(moved.nlink, 2);
      const slices = await onPg.readSlices(moved.ino, 0, 1);
      assert.equal(slices.get(1)?.[0]?.chunkOffsetBytes, 10);
      assert.equal(await onPg.readlink((await onPg.lookup(root, d1.ino, 'link')).ino), '../f1');
    } finally {
      await onPg.close();
    }
  });

  test('loading into a database that already holds a volume is refused', async () => {
    const engine = await openEngine(db.url + '?pool_size=1');
    try {
      await assert.rejects(
        loadMeta(engine, createReadStream(join(dir, 'a.jsonl'))),
        /already holds a volume/,
      );
    } finally {
      await engine.close();
    }
  });

  test('a truncated dump is rejected with a message saying so', async () => {
    const lines = readFileSync(join(dir, 'a.jsonl'), 'utf8').trimEnd().split('\n');
    const truncated = join(dir, 'truncated.jsonl');
    const out = createWriteStream(truncated);
    out.end(lines.slice(0, -1).join('\n') + '\n');
    await finished(out);
    const engine = await openEngine(`sqlite:${join(dir, 'c.db')}`);
    try {
      await assert.rejects(loadMeta(engine, createReadStream(truncated)), /truncated/);
    } finally {
      await engine.close();
    }
  });
});
