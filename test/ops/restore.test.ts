// `strata restore` (src/ops/restore.ts) against a real SQLite metadata service whose clock the
// test drives: a restore that runs so long that its instant nears the edge of the history window
// stops before it references slices the GC may be deleting, and leaves nothing half-made.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type Ino, type SliceRef } from '../../src/common/index.js';
import type { MetaService } from '../../src/meta/index.js';
import { restore, type RestoreReport } from '../../src/ops/index.js';
import { dir, file, names, ROOT, root, sqliteFixture, withVolume } from '../meta/conformance/fixture.js';

const BLOCK = 64 * 1024;
const RETENTION_MS = 3_600_000;
const settings = { chunkSizeBytes: 1024 * 1024, blockSizeBytes: BLOCK, historyRetentionMs: RETENTION_MS };

const sqlite = sqliteFixture('restore-test');

/** Commits one slice of `sizeBytes` to `ino` (no objects: a restore never reads them). */
async function writeSlice(svc: MetaService, ino: Ino, sizeBytes: number): Promise<SliceRef> {
  const slice: SliceRef = {
    id: asSliceId(await svc.allocateSliceIds(1)),
    sliceSizeBytes: sizeBytes,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: sizeBytes,
    blockSizeBytes: BLOCK,
  };
  await svc.commitWrites(root, ino, [{ chunkIndex: 0, slice }], sizeBytes, { sec: 1, nsec: 0 });
  return slice;
}

describe('strata restore near the edge of the history window', () => {
  it('a directory restore that outlasts the window stops before the next file: those before it are whole', () =>
    withVolume(
      sqlite,
      async (v) => {
        const d = await dir(v.svc, ROOT, 'd');
        const slices = new Map<string, SliceRef>();
        for (const name of ['a', 'b', 'c']) {
          slices.set(name, await writeSlice(v.svc, (await file(v.svc, d.ino, name)).ino, 1000 + name.length));
        }
        // Commits get instants after the last one's, whatever the clock says: step past them.
        v.clock.advanceMs(1000);
        const instantUs = v.clock.nowUs();
        v.clock.advanceMs(1000);
        for (const name of ['a', 'b', 'c']) await v.svc.unlink(root, d.ino, name);
        // 10 minutes inside the window at the start; each restored file takes "9.5 minutes".
        v.clock.advanceMs(RETENTION_MS - 10 * 60_000);
        const progress: RestoreReport[] = [];
        await assert.rejects(
          restore({
            meta: v.svc,
            asOfUs: instantUs,
            path: '/d',
            to: '/back',
            nowMs: () => v.clock.nowUs() / 1000,
            onProgress: (report) => {
              progress.push(report);
              if (report.files > 0) v.clock.advanceMs(9.5 * 60_000);
            },
          }),
          (err: Error) => /ran so long/.test(err.message) && /stopped after 1 files/.test(err.message),
        );
        const back = await v.svc.lookup(root, ROOT, 'back');
        const restored = await names(v.svc, back.ino);
        // The second file was created, then refused its slices: it stays empty, never half-referenced.
        assert.deepEqual(restored, ['a', 'b']);
        const a = await v.svc.lookup(root, back.ino, 'a');
        assert.equal(a.sizeBytes, slices.get('a')!.sliceSizeBytes);
        const aSlices = await v.svc.readSlices(a.ino, 0, 0);
        assert.deepEqual(
          aSlices.get(0)?.map((s) => s.id),
          [slices.get('a')!.id],
        );
        const b = await v.svc.lookup(root, back.ino, 'b');
        assert.equal((await v.svc.readSlices(b.ino, 0, 0)).get(0), undefined);
      },
      settings,
    ));

  it('a single file restored in place that would reference slices too late leaves the current file and no temporary name', () =>
    withVolume(
      sqlite,
      async (v) => {
        const f = await file(v.svc, ROOT, 'f');
        await writeSlice(v.svc, f.ino, 5000);
        // Commits get instants after the last one's, whatever the clock says: step past them.
        v.clock.advanceMs(1000);
        const instantUs = v.clock.nowUs();
        v.clock.advanceMs(1000);
        const current = await writeSlice(v.svc, f.ino, 7000);
        v.clock.advanceMs(RETENTION_MS - 6 * 60_000);
        let calls = 0;
        await assert.rejects(
          restore({
            meta: v.svc,
            asOfUs: instantUs,
            path: '/f',
            // Inside the window when the restore starts; past the commit slack by the time it commits.
            nowMs: () => v.clock.nowUs() / 1000 + (calls++ === 0 ? 0 : 5.5 * 60_000),
          }),
          /ran so long/,
        );
        assert.deepEqual(await names(v.svc, ROOT), ['f']);
        const now = await v.svc.lookup(root, ROOT, 'f');
        assert.equal(now.sizeBytes, 7000);
        assert.equal((await v.svc.readSlices(now.ino, 0, 0)).get(0)?.at(-1)?.id, current.id);
      },
      settings,
    ));

  it('a restore inside the window brings the file back by reference', () =>
    withVolume(
      sqlite,
      async (v) => {
        const f = await file(v.svc, ROOT, 'f');
        const old = await writeSlice(v.svc, f.ino, 5000);
        // Commits get instants after the last one's, whatever the clock says: step past them.
        v.clock.advanceMs(1000);
        const instantUs = v.clock.nowUs();
        v.clock.advanceMs(1000);
        await writeSlice(v.svc, f.ino, 7000);
        v.clock.advanceMs(60_000);
        const report = await restore({
          meta: v.svc,
          asOfUs: instantUs,
          path: '/f',
          nowMs: () => v.clock.nowUs() / 1000,
        });
        assert.equal(report.files, 1);
        const now = await v.svc.lookup(root, ROOT, 'f');
        assert.equal(now.sizeBytes, 5000);
        assert.deepEqual(
          (await v.svc.readSlices(now.ino, 0, 0)).get(0)?.map((s) => s.id),
          [old.id],
        );
      },
      settings,
    ));
});
