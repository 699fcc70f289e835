import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, isFsError, type Ino, type SliceRef } from '../../../src/common/index.js';
import { raiseReclaimFloor, type MetaService } from '../../../src/meta/index.js';
import { ROOT, file, rejectsWith, root, withVolume, type EngineFixture } from './fixture.js';

const BLOCK = 64 * 1024;
const info = { hostname: 'node1', mountpoint: '/mnt/a', pid: 42, version: 'test' };

function slice(id: number, lengthBytes = 4096): SliceRef {
  return {
    id: asSliceId(id),
    sliceSizeBytes: lengthBytes,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes,
    blockSizeBytes: BLOCK,
  };
}

function commit(svc: MetaService, ino: Ino, s: SliceRef) {
  return svc.commitWrites(root, ino, [{ chunkIndex: 0, slice: s }], s.lengthBytes, { sec: 1, nsec: 0 });
}

async function floorOf(svc: MetaService, sessionId: string): Promise<number | undefined> {
  const row = await svc.engine.read((tx) => tx.getSession(sessionId));
  assert.ok(row, `session ${sessionId} exists`);
  return row.sliceFloor;
}

/** Slice floors, the reclaim floor and the commits it refuses (src/meta/reclaim-floor.ts). */
export function reclaimTests(fx: EngineFixture): void {
  describe(`${fx.name}: reclaim floor`, () => {
    it("a heartbeat stores the slice floor (0, nothing held: the allocator's next id); one without a floor keeps the last; a new session has none", () =>
      withVolume(fx, async ({ svc }) => {
        const { sessionId } = await svc.openSession(info);
        assert.equal(await floorOf(svc, sessionId), undefined);
        await svc.heartbeat(sessionId, asSliceId(17));
        assert.equal(await floorOf(svc, sessionId), 17);
        await svc.heartbeat(sessionId);
        assert.equal(await floorOf(svc, sessionId), 17, "an older mount's heartbeat leaves it");
        await svc.heartbeat(sessionId, asSliceId(90));
        assert.equal(await floorOf(svc, sessionId), 90);
        // 0: the mount holds no slice id and takes new ones only after this heartbeat's answer.
        const first = await svc.allocateSliceIds(10);
        await svc.heartbeat(sessionId, asSliceId(0));
        assert.equal(await floorOf(svc, sessionId), first + 10, "nothing held: the allocator's next id");
        const listed = await svc.engine.read((tx) => tx.listSessions());
        assert.deepEqual(
          listed.map((s) => [s.sessionId, s.sliceFloor]),
          [[sessionId, first + 10]],
        );
      }));

    it("the floor is the least of the sessions' floors and the allocator's next id, and never goes down", () =>
      withVolume(fx, async ({ svc }) => {
        const first = await svc.allocateSliceIds(100); // ids first .. first+99; next first+100
        const a = (await svc.openSession(info)).sessionId;
        const b = (await svc.openSession({ ...info, mountpoint: '/mnt/b' })).sessionId;
        await svc.heartbeat(a, asSliceId(first + 40));
        await svc.heartbeat(b, asSliceId(first + 70));
        assert.deepEqual(await raiseReclaimFloor(svc.engine), { floor: first + 40, previousFloor: 0 });
        // A floor reported lower later (a stale heartbeat) does not move the reclaim floor down.
        await svc.heartbeat(a, asSliceId(first + 10));
        assert.deepEqual(await raiseReclaimFloor(svc.engine), {
          floor: first + 40,
          previousFloor: first + 40,
        });
        await svc.closeSession(a);
        await svc.closeSession(b);
        assert.deepEqual(await raiseReclaimFloor(svc.engine), {
          floor: first + 100,
          previousFloor: first + 40,
        });
      }));

    it('a session that reports no floor blocks the raise and is named', () =>
      withVolume(fx, async ({ svc }) => {
        await svc.allocateSliceIds(10);
        const old = (await svc.openSession({ ...info, hostname: 'old-host', version: '0.8' })).sessionId;
        const result = await raiseReclaimFloor(svc.engine);
        assert.equal(result.floor, 0, 'unchanged');
        assert.equal(result.blockedBy?.sessionId, old);
        assert.equal(result.blockedBy?.info.hostname, 'old-host');
        await svc.heartbeat(old, asSliceId(5));
        assert.equal((await raiseReclaimFloor(svc.engine)).floor, 5);
      }));

    it('a commit of a never-seen slice below the floor fails with EIO saying its blocks were reclaimed', () =>
      withVolume(fx, async ({ svc }) => {
        const first = await svc.allocateSliceIds(10);
        const f = await file(svc, ROOT, 'f');
        await commit(svc, f.ino, slice(first)); // known: referenced
        assert.equal((await raiseReclaimFloor(svc.engine)).floor, first + 10);
        await assert.rejects(commit(svc, f.ino, slice(first + 3)), (error: unknown) => {
          assert.ok(isFsError(error));
          assert.equal(error.code, 'EIO');
          assert.match(error.message, /below the reclaim floor/);
          assert.match(error.message, /reclaimed as leaked/);
          return true;
        });
        assert.equal((await svc.getattr(f.ino)).sizeBytes, 4096, 'nothing of the refused commit stayed');
        const chunk = await svc.readSlices(f.ino, 0, 0);
        assert.deepEqual(
          chunk.get(0)?.map((s) => s.id),
          [first],
        );
        // A slice already referenced, or one at or above the floor, commits as before.
        await commit(svc, f.ino, slice(first));
        const next = await svc.allocateSliceIds(1);
        await commit(svc, f.ino, slice(next));
        // Compaction's replace is refused the same way.
        const current = (await svc.readSlices(f.ino, 0, 0)).get(0)!.map((s) => s.id);
        await rejectsWith(svc.replaceChunkSlices(f.ino, 0, current, [slice(first + 4)]), 'EIO');
      }));

    it('a slice below the floor that was committed once and deleted (kept for history) may come back', () =>
      withVolume(fx, async ({ svc }) => {
        const first = await svc.allocateSliceIds(2);
        const f = await file(svc, ROOT, 'f');
        await commit(svc, f.ino, slice(first));
        await svc.setattr(root, f.ino, { sizeBytes: 0 }); // the slice leaves: logged deleted
        assert.equal((await raiseReclaimFloor(svc.engine)).floor, first + 2);
        // What `strata restore` does: commit a slice of the file's past again.
        await commit(svc, f.ino, slice(first));
        assert.deepEqual(
          (await svc.readSlices(f.ino, 0, 0)).get(0)?.map((s) => s.id),
          [first],
        );
      }));

    it('the floors survive a restart', () =>
      withVolume(fx, async (v) => {
        const first = await v.svc.allocateSliceIds(5);
        const { sessionId } = await v.svc.openSession(info);
        await v.svc.heartbeat(sessionId, asSliceId(first + 2));
        await raiseReclaimFloor(v.svc.engine);
        const svc = await v.reopen();
        assert.equal(await floorOf(svc, sessionId), first + 2);
        const again = await raiseReclaimFloor(svc.engine);
        assert.deepEqual(again, { floor: first + 2, previousFloor: first + 2 });
      }));
  });
}
