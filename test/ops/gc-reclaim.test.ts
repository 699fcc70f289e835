// Reclaiming leaked blocks (src/ops/gc-scan.ts reclaimLeakedObjects) on both metadata engines and
// a real file object store: slices are committed through the metadata service with their block
// objects put in the store; "leaked" ones get their blocks only, as a mount killed between upload
// and commit leaves them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { asSliceId, isFsError, type Ino, type SliceId, type SliceRef } from '../../src/common/index.js';
import type { MetaService } from '../../src/meta/index.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import {
  backgroundGcEnv,
  fsck,
  reclaimLeakedObjects,
  sliceBlockKeys,
  startBackgroundGc,
} from '../../src/ops/index.js';
import {
  ROOT,
  file,
  root,
  postgresFixture,
  sqliteFixture,
  withVolume,
  type EngineFixture,
} from '../meta/conformance/fixture.js';
import { PG_SKIP_REASON } from '../meta/postgres-fixture.js';

const BLOCK = 64 * 1024;
const settings = { chunkSizeBytes: 1024 * 1024, blockSizeBytes: BLOCK };
const info = { hostname: 'node7', mountpoint: '/mnt/work', pid: 4242, version: 'test' };

const work = mkdtempSync(join(tmpdir(), 'strata-leakgc-ops-'));
after(() => rmSync(work, { recursive: true, force: true }));
let stores = 0;

const sqlite = sqliteFixture('leakgc-volumes');
const postgres = postgresFixture('strata_leakgc', 2);

function sliceOf(id: SliceId, sizeBytes: number): SliceRef {
  return {
    id,
    sliceSizeBytes: sizeBytes,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: sizeBytes,
    blockSizeBytes: BLOCK,
  };
}

/** Uploads the blocks of a new slice of `sizeBytes`, as a writer does before its commit. */
async function upload(svc: MetaService, store: ObjectStore, sizeBytes: number): Promise<SliceRef> {
  const slice = sliceOf(await svc.allocateSliceIds(1), sizeBytes);
  for (const key of sliceBlockKeys(slice.id, sizeBytes, BLOCK)) await store.put(key, Buffer.alloc(BLOCK, 1));
  return slice;
}

function commit(svc: MetaService, ino: Ino, slice: SliceRef) {
  return svc.commitWrites(root, ino, [{ chunkIndex: 0, slice }], slice.sliceSizeBytes, { sec: 1, nsec: 0 });
}

async function present(store: ObjectStore, slice: SliceRef): Promise<number> {
  let found = 0;
  for (const key of sliceBlockKeys(slice.id, slice.sliceSizeBytes, BLOCK)) if (await store.head(key)) found++;
  return found;
}

function reclaimSuite(fx: EngineFixture): void {
  const withStore = (fn: (svc: MetaService, store: ObjectStore) => Promise<void>) =>
    withVolume(
      fx,
      async (v) => {
        const store = await openObjectStore(`file:${join(work, `s${++stores}`)}`, { retry: false });
        try {
          await fn(v.svc, store);
        } finally {
          await store.close();
        }
      },
      settings,
    );

  it('deletes the blocks of never-committed slices below every floor, keeps what a live mount may still commit', () =>
    withStore(async (svc, store) => {
      const committed = await upload(svc, store, 2 * BLOCK);
      await commit(svc, (await file(svc, ROOT, 'kept')).ino, committed);
      const deleted = await upload(svc, store, BLOCK);
      await commit(svc, (await file(svc, ROOT, 'gone')).ino, deleted);
      await svc.unlink(root, ROOT, 'gone'); // logged deleted: the GC's after retention, not a leak
      const leaked = await upload(svc, store, 3 * BLOCK); // its mount died before the commit
      // A live mount holds an uploaded, uncommitted slice: its floor is that slice's id.
      const { sessionId } = await svc.openSession(info);
      const held = await upload(svc, store, 2 * BLOCK);
      await svc.heartbeat(sessionId, held.id);
      const later = await upload(svc, store, BLOCK); // above the floor too: left for a later pass

      const report = await reclaimLeakedObjects({ engine: svc.engine, store });
      assert.equal(report.blockedBy, undefined);
      assert.equal(report.floor, held.id);
      assert.deepEqual(
        [report.reclaimedSlices, report.reclaimedObjects, report.reclaimedBytes],
        [1, 3, 3 * BLOCK],
      );
      assert.deepEqual([report.heldSlices, report.heldBytes], [2, 3 * BLOCK]);
      assert.equal(await present(store, leaked), 0);
      for (const s of [committed, deleted, held, later])
        assert.equal(await present(store, s), s.sliceSizeBytes / BLOCK);

      // The live mount's commit goes through, with every block in place.
      const f = await file(svc, ROOT, 'held');
      await commit(svc, f.ino, held);
      // The dead mount's, had it come back, is refused: its blocks are gone.
      await assert.rejects(commit(svc, f.ino, leaked), (error: unknown) => {
        assert.ok(isFsError(error) && error.code === 'EIO', String(error));
        assert.match(error.message, /reclaimed as leaked/);
        return true;
      });
      await svc.closeSession(sessionId);
      const problems = (await fsck({ engine: svc.engine, store })).problems;
      assert.deepEqual(problems, []);
      // With no session left the floor reaches the allocator's next id: `later` goes now.
      const second = await reclaimLeakedObjects({ engine: svc.engine, store });
      assert.equal(second.reclaimedSlices, 1);
      assert.equal(await present(store, later), 0);
      assert.equal(await present(store, held), 2);
    }));

  it('a session that reports no floor stops the pass, which names it and deletes nothing', () =>
    withStore(async (svc, store) => {
      const leaked = await upload(svc, store, BLOCK);
      await svc.openSession({ ...info, hostname: 'old-client-host', version: '0.8.0' });
      const report = await reclaimLeakedObjects({ engine: svc.engine, store });
      assert.ok(report.blockedBy !== undefined);
      assert.match(report.blockedBy, /old-client-host:\/mnt\/work \(pid 4242, version 0\.8\.0/);
      assert.match(report.blockedBy, /reports no slice floor/);
      assert.equal(report.floor, 0);
      assert.equal(report.objectsScanned, 0);
      assert.equal(await present(store, leaked), 1);
      // And nothing below the old floor is refused meanwhile.
      await commit(svc, (await file(svc, ROOT, 'f')).ino, leaked);
      assert.equal(
        (await svc.readSlices((await svc.lookup(root, ROOT, 'f')).ino, 0, 0)).get(0)?.[0].id,
        asSliceId(leaked.id),
      );
    }));
}

describe('reclaiming leaked blocks on sqlite', () => {
  reclaimSuite(sqlite);

  it('the background GC reclaims leaked blocks at its reclaim interval, and logs a session that holds it back', () =>
    withVolume(
      sqlite,
      async (v) => {
        const store = await openObjectStore(`file:${join(work, `s${++stores}`)}`, { retry: false });
        const lines: string[] = [];
        const { sessionId } = await v.svc.openSession({ ...info, hostname: 'old-client-host' });
        const leaked = await upload(v.svc, store, 2 * BLOCK);
        const gc = startBackgroundGc({
          engine: v.svc.engine,
          store,
          volume: { historyRetentionMs: 0, blockSizeBytes: BLOCK },
          intervalMs: 3_600_000,
          reclaimIntervalMs: 30,
          log: (line) => lines.push(line),
        });
        try {
          await waitFor(() =>
            lines.some((l) => /leaked blocks not reclaimed: session .* of old-client-host/.test(l)),
          );
          assert.equal(await present(store, leaked), 2, 'held back by the session without a floor');
          await v.svc.heartbeat(sessionId, asSliceId(0));
          await waitFor(() => lines.some((l) => /gc: reclaimed 2 leaked object\(s\)/.test(l)));
          assert.equal(await present(store, leaked), 0);
        } finally {
          await gc.stop();
          await store.close();
        }
      },
      settings,
    ));

  it('STRATA_GC_RECLAIM_INTERVAL sets the reclaim interval; 0s turns it off', () => {
    assert.equal(backgroundGcEnv({ STRATA_GC_RECLAIM_INTERVAL: '6h' }).reclaimIntervalMs, 6 * 3_600_000);
    assert.equal(backgroundGcEnv({ STRATA_GC_RECLAIM_INTERVAL: '0s' }).reclaimIntervalMs, 0);
    assert.equal(backgroundGcEnv({}).reclaimIntervalMs, undefined);
  });
});

async function waitFor(check: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not seen within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
describe('reclaiming leaked blocks on postgres', { skip: PG_SKIP_REASON }, () => reclaimSuite(postgres));
