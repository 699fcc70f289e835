// The object GC (src/ops/gc.ts) on both metadata engines and a real file object store: slices
// are committed through the metadata service with their block objects put in the store, then
// dropped by unlink, truncate, compaction; the test clock decides when the retention ends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { asSliceId, type Ino, type SliceRef } from '../../src/common/index.js';
import type { MetaService } from '../../src/meta/index.js';
import { openObjectStore, withFaults, type ObjectStore } from '../../src/object/index.js';
import {
  backgroundGcEnv,
  collectGarbage,
  scanLeakedObjects,
  sliceBlockKeys,
  type GcOptions,
} from '../../src/ops/index.js';
import {
  ROOT,
  file,
  root,
  postgresFixture,
  sqliteFixture,
  withVolume,
  type EngineFixture,
  type Volume,
} from '../meta/conformance/fixture.js';
import { PG_SKIP_REASON } from '../meta/postgres-fixture.js';
import { SKIP_REASON as S3_SKIP_REASON, testUrl, uniquePrefix } from '../object/s3-helpers.js';

const BLOCK = 64 * 1024;
const CHUNK = 1024 * 1024;
const RETENTION_MS = 3_600_000;
const MARGIN_MS = 60_000;
const settings = { chunkSizeBytes: CHUNK, blockSizeBytes: BLOCK, historyRetentionMs: RETENTION_MS };

const work = mkdtempSync(join(tmpdir(), 'strata-gc-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;

const sqlite = sqliteFixture('gc-volumes');

const postgres = postgresFixture('strata_gc', 2);

/** A slice of `sizeBytes` committed at the start of chunk 0 of `ino`, its blocks put in the store. */
async function writeSlice(
  svc: MetaService,
  store: ObjectStore,
  ino: Ino,
  sizeBytes: number,
): Promise<SliceRef> {
  const id = await svc.allocateSliceIds(1);
  const keys = sliceBlockKeys(id, sizeBytes, BLOCK);
  for (const key of keys) await store.put(key, Buffer.alloc(BLOCK, 1));
  const slice: SliceRef = {
    id,
    sliceSizeBytes: sizeBytes,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: sizeBytes,
    blockSizeBytes: BLOCK,
  };
  await svc.commitWrites(root, ino, [{ chunkIndex: 0, slice }], sizeBytes, { sec: 1, nsec: 0 });
  return slice;
}

async function present(store: ObjectStore, slice: SliceRef): Promise<number> {
  let found = 0;
  for (const key of sliceBlockKeys(slice.id, slice.sliceSizeBytes, BLOCK)) if (await store.head(key)) found++;
  return found;
}

function gcAt(v: Volume, store: ObjectStore, extra: Partial<GcOptions> = {}) {
  return collectGarbage({
    engine: v.svc.engine,
    store,
    historyRetentionMs: RETENTION_MS,
    blockSizeBytes: BLOCK,
    safetyMarginMs: MARGIN_MS,
    nowUs: () => v.clock.nowUs(),
    ...extra,
  });
}

const deletedRows = (svc: MetaService) =>
  svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 100));

function withStore(
  fx: EngineFixture,
  fn: (v: Volume, store: ObjectStore) => Promise<void>,
  storeUrl?: string,
): Promise<void> {
  return withVolume(
    fx,
    async (v) => {
      const dir = join(work, `objects${++n}`);
      const store = await openObjectStore(storeUrl ?? `file:${dir}`, { retry: false });
      try {
        await fn(v, store);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    settings,
  );
}

function gcSuite(fx: EngineFixture): void {
  it('a deleted file keeps its objects for the retention window and its as-of view reads them; then they go', () =>
    withStore(fx, async (v, store) => {
      const f = await file(v.svc, ROOT, 'f');
      const slice = await writeSlice(v.svc, store, f.ino, 2 * BLOCK + 100); // 3 blocks, the last short
      const written = v.clock.nowUs();
      v.clock.advanceMs(1000);
      await v.svc.unlink(root, ROOT, 'f');
      // Near the end of the window: an instant before the unlink is still readable as of.
      v.clock.advanceMs(RETENTION_MS - 500);
      const early = await gcAt(v, store);
      assert.deepEqual([early.slices, early.objects], [0, 0]);
      assert.equal(await present(store, slice), 3);
      const asOf = await v.svc.readSlices(f.ino, 0, 0, { asOfUs: written + 600_000 });
      assert.deepEqual(
        asOf.get(0)?.map((s) => s.id),
        [slice.id],
      );
      v.clock.advanceMs(500 + MARGIN_MS);
      assert.equal((await gcAt(v, store)).objects, 0, 'not before the margin has passed too');
      v.clock.advanceMs(1);
      const due = await gcAt(v, store);
      assert.deepEqual([due.slices, due.objects, due.bytes, due.staleRows], [1, 3, 2 * BLOCK + 100, 0]);
      assert.equal(await present(store, slice), 0);
      assert.deepEqual(await deletedRows(v.svc), []);
    }));

  it('retention 0 frees at the first pass past the margin; a dry run counts and changes nothing', () =>
    withStore(fx, async (v, store) => {
      const f = await file(v.svc, ROOT, 'f');
      const slice = await writeSlice(v.svc, store, f.ino, BLOCK);
      await v.svc.unlink(root, ROOT, 'f');
      v.clock.advanceMs(1);
      const dry = await gcAt(v, store, { historyRetentionMs: 0, safetyMarginMs: 0, dryRun: true });
      assert.deepEqual([dry.dryRun, dry.slices, dry.objects], [true, 1, 1]);
      assert.equal(await present(store, slice), 1);
      assert.equal((await deletedRows(v.svc)).length, 1);
      const done = await gcAt(v, store, { historyRetentionMs: 0, safetyMarginMs: 0 });
      assert.deepEqual([done.slices, done.objects], [1, 1]);
      assert.equal(await present(store, slice), 0);
    }));

  it('a slice shared by copy_file_range keeps its objects until its last file goes', () =>
    withStore(fx, async (v, store) => {
      const f = await file(v.svc, ROOT, 'f');
      const g = await file(v.svc, ROOT, 'g');
      const slice = await writeSlice(v.svc, store, f.ino, 2 * BLOCK);
      await v.svc.copyFileRange(root, f.ino, 0, g.ino, 0, 2 * BLOCK);
      await v.svc.unlink(root, ROOT, 'f');
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      assert.equal((await gcAt(v, store)).objects, 0);
      assert.equal(await present(store, slice), 2);
      await v.svc.unlink(root, ROOT, 'g');
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      assert.equal((await gcAt(v, store)).objects, 2);
      assert.equal(await present(store, slice), 0);
    }));

  it('compaction-replaced slices and a truncated chunk go after the window; the live slice stays', () =>
    withStore(fx, async (v, store) => {
      const f = await file(v.svc, ROOT, 'f');
      const a = await writeSlice(v.svc, store, f.ino, BLOCK);
      const b = await writeSlice(v.svc, store, f.ino, BLOCK);
      const merged = await v.svc.allocateSliceIds(1);
      await store.put(sliceBlockKeys(merged, BLOCK, BLOCK)[0], Buffer.alloc(BLOCK));
      const mergedRef = { ...a, id: merged };
      assert.equal(await v.svc.replaceChunkSlices(f.ino, 0, [a.id, b.id], [mergedRef]), true);
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      const report = await gcAt(v, store);
      assert.deepEqual([report.slices, report.objects], [2, 2]);
      assert.deepEqual([await present(store, a), await present(store, b)], [0, 0]);
      assert.equal(await present(store, mergedRef), 1);
      await v.svc.setattr(root, f.ino, { sizeBytes: 0 });
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      assert.equal((await gcAt(v, store)).objects, 1);
      assert.equal(await present(store, mergedRef), 0);
    }));

  it('a re-referenced slice keeps its objects: its stale row goes, a later deletion decides', () =>
    withStore(fx, async (v, store) => {
      const f = await file(v.svc, ROOT, 'f');
      const slice = await writeSlice(v.svc, store, f.ino, BLOCK);
      await v.svc.setattr(root, f.ino, { sizeBytes: 0 });
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      // What a restore from history would do: the same slice referenced again.
      await v.svc.commitWrites(root, f.ino, [{ chunkIndex: 0, slice }], BLOCK, { sec: 2, nsec: 0 });
      const referenced = await gcAt(v, store);
      assert.deepEqual([referenced.objects, referenced.staleRows], [0, 1]);
      assert.equal(await present(store, slice), 1);
      assert.deepEqual(await deletedRows(v.svc), []);

      // Dropped, re-referenced, dropped again: the old row is past the window, the new one is not.
      await v.svc.setattr(root, f.ino, { sizeBytes: 0 });
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      await v.svc.commitWrites(root, f.ino, [{ chunkIndex: 0, slice }], BLOCK, { sec: 3, nsec: 0 });
      await v.svc.unlink(root, ROOT, 'f');
      const later = await deletedRows(v.svc);
      assert.equal(later.length, 2);
      const superseded = await gcAt(v, store);
      assert.deepEqual([superseded.objects, superseded.staleRows], [0, 1]);
      assert.equal(await present(store, slice), 1);
      assert.deepEqual(await deletedRows(v.svc), [later[1]]);
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      assert.equal((await gcAt(v, store)).objects, 1);
      assert.equal(await present(store, slice), 0);
    }));

  it('a stopped pass ends inside its batch and keeps the rows; the next pass finishes', () =>
    withStore(fx, async (v, store) => {
      const slices: SliceRef[] = [];
      for (const name of ['a', 'b', 'c']) {
        const f = await file(v.svc, ROOT, name);
        slices.push(await writeSlice(v.svc, store, f.ino, 3 * BLOCK));
        await v.svc.unlink(root, ROOT, name);
      }
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      const stop = new AbortController();
      const paced = gcAt(v, store, { maxDeletesPerSecond: 4, deletesInFlight: 1, signal: stop.signal });
      setTimeout(() => stop.abort(), 300);
      await paced;
      assert.equal((await deletedRows(v.svc)).length, 3, 'no row of the unfinished batch is forgotten');
      let left = 0;
      for (const s of slices) left += await present(store, s);
      assert.ok(left > 0 && left < 9, `${left} of 9 objects left`);
      await gcAt(v, store);
      for (const s of slices) assert.equal(await present(store, s), 0);
      assert.deepEqual(await deletedRows(v.svc), []);
    }));

  it('a pass that fails part way keeps the rows; the next pass finishes, missing objects and all', () =>
    withStore(fx, async (v, store) => {
      const slices: SliceRef[] = [];
      for (const name of ['a', 'b', 'c']) {
        const f = await file(v.svc, ROOT, name);
        slices.push(await writeSlice(v.svc, store, f.ino, 3 * BLOCK));
        await v.svc.unlink(root, ROOT, name);
      }
      v.clock.advanceMs(RETENTION_MS + MARGIN_MS + 1);
      const failing = withFaults(store, { seed: 7, errorRate: 0.5, operations: ['delete'] });
      await assert.rejects(gcAt(v, failing, { batchSlices: 2 }), /next pass/);
      assert.ok((await deletedRows(v.svc)).length > 0, 'rows of the failed batch stay');
      const report = await gcAt(v, store, { batchSlices: 2 });
      assert.ok(report.slices >= 1);
      for (const s of slices) assert.equal(await present(store, s), 0);
      assert.deepEqual(await deletedRows(v.svc), []);
    }));
}

describe('object GC on sqlite', () => {
  gcSuite(sqlite);

  it("the leak scan reports blocks no metadata knows, an open writer's upload among them, and deletes none", () =>
    withStore(sqlite, async (v, store) => {
      const live = await writeSlice(v.svc, store, (await file(v.svc, ROOT, 'live')).ino, 2 * BLOCK);
      const doomed = await writeSlice(v.svc, store, (await file(v.svc, ROOT, 'doomed')).ino, BLOCK);
      await v.svc.unlink(root, ROOT, 'doomed'); // in the deleted slice log: the GC's, not a leak
      // What a writer holds between upload and commit (or a mount killed there): blocks only.
      const uploaded = await v.svc.allocateSliceIds(1);
      const uploadedKeys = sliceBlockKeys(uploaded, 3 * BLOCK, BLOCK);
      for (const key of uploadedKeys) await store.put(key, Buffer.alloc(BLOCK));
      await store.put('chunks/abc/not-a-block', Buffer.alloc(1));
      const report = await scanLeakedObjects({ engine: v.svc.engine, store });
      assert.deepEqual(report.sample, [uploaded]);
      assert.deepEqual(
        [report.objectsScanned, report.unknownSlices, report.unknownObjects, report.foreignObjects],
        [2 + 1 + 3, 1, 3, 1],
      );
      for (const s of [live, doomed]) assert.ok((await present(store, s)) > 0);
      for (const key of uploadedKeys) assert.ok(await store.head(key), `${key} is still there`);
      // The writer commits later: its data is whole, and the scan no longer reports it.
      const slice = {
        id: uploaded,
        sliceSizeBytes: 3 * BLOCK,
        chunkOffsetBytes: 0,
        sliceOffsetBytes: 0,
        lengthBytes: 3 * BLOCK,
        blockSizeBytes: BLOCK,
      };
      const late = await file(v.svc, ROOT, 'late');
      await v.svc.commitWrites(root, late.ino, [{ chunkIndex: 0, slice }], 3 * BLOCK, { sec: 1, nsec: 0 });
      assert.equal((await scanLeakedObjects({ engine: v.svc.engine, store })).unknownSlices, 0);
    }));

  it('a volume made before the deleted_slice id index gets it at its next open', async () => {
    const url = await sqlite.newUrl();
    const path = url.slice('sqlite:'.length);
    await withVolume(
      { ...sqlite, newUrl: async () => url, dropUrl: async () => undefined },
      async (v) => {
        await v.svc.close();
        const db = new BetterSqlite3(path);
        db.exec('DROP INDEX deleted_slice_id');
        db.close();
        await v.reopen();
        const check = new BetterSqlite3(path, { readonly: true });
        const index = check
          .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'deleted_slice_id'")
          .get();
        check.close();
        assert.ok(index, 'the index is created again');
        const f = await file(v.svc, ROOT, 'f');
        await v.svc.commitWrites(
          root,
          f.ino,
          [
            {
              chunkIndex: 0,
              slice: {
                id: asSliceId(5),
                sliceSizeBytes: 10,
                chunkOffsetBytes: 0,
                sliceOffsetBytes: 0,
                lengthBytes: 10,
                blockSizeBytes: BLOCK,
              },
            },
          ],
          10,
          { sec: 1, nsec: 0 },
        );
        await v.svc.unlink(root, ROOT, 'f');
        assert.equal((await deletedRows(v.svc)).length, 1);
      },
      settings,
    );
    await sqlite.dropUrl(url);
  });
});

describe('object GC on postgres', { skip: PG_SKIP_REASON }, () => {
  gcSuite(postgres);
});

describe('object GC with an S3 store (radosgw)', { skip: S3_SKIP_REASON }, () => {
  it('the blocks of a deleted file are deleted from the bucket; a live file keeps its own', () =>
    withStore(
      sqlite,
      async (v, store) => {
        const kept = await writeSlice(v.svc, store, (await file(v.svc, ROOT, 'kept')).ino, BLOCK);
        const f = await file(v.svc, ROOT, 'f');
        const slice = await writeSlice(v.svc, store, f.ino, 2 * BLOCK + 1);
        await v.svc.unlink(root, ROOT, 'f');
        v.clock.advanceMs(1);
        const report = await gcAt(v, store, { historyRetentionMs: 0, safetyMarginMs: 0 });
        assert.deepEqual([report.slices, report.objects], [1, 3]);
        assert.equal(await present(store, slice), 0);
        assert.equal(await present(store, kept), 1);
        for (const key of sliceBlockKeys(kept.id, BLOCK, BLOCK)) await store.delete(key);
      },
      testUrl(uniquePrefix('gc')),
    ));
});

describe('background GC settings from the environment', () => {
  it('reads the interval, margin and pace, and says how to write a bad one', () => {
    assert.deepEqual(backgroundGcEnv({}), {
      intervalMs: undefined,
      safetyMarginMs: undefined,
      reclaimIntervalMs: undefined,
      maxDeletesPerSecond: undefined,
    });
    assert.deepEqual(
      backgroundGcEnv({ STRATA_GC_INTERVAL: '10s', STRATA_GC_SAFETY_MARGIN: '0s', STRATA_GC_RATE: '250' }),
      { intervalMs: 10_000, safetyMarginMs: 0, reclaimIntervalMs: undefined, maxDeletesPerSecond: 250 },
    );
    for (const bad of ['0', '-5', 'fast', '1.5']) {
      assert.throws(() => backgroundGcEnv({ STRATA_GC_RATE: bad }), /STRATA_GC_RATE .* whole number/, bad);
    }
    assert.throws(() => backgroundGcEnv({ STRATA_GC_INTERVAL: 'soon' }), /STRATA_GC_INTERVAL/);
  });
});
