import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type Ino } from '../../../src/common/index.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  type MetaService,
} from '../../../src/meta/index.js';
import { ROOT, file, rejectsWith, root, user, withVolume, type EngineFixture } from './fixture.js';
import { CHUNK, slice, smallChunks, write } from './slices.js';

/** The bytes a reader sees: for each byte, the id of the slice on top (0 = zeros), by run. */
async function view(svc: MetaService, ino: Ino, fromByte: number, toByte: number): Promise<string> {
  const first = Math.floor(fromByte / CHUNK);
  const last = Math.floor((toByte - 1) / CHUNK);
  const chunks = await svc.readSlices(ino, first, last);
  const runs: string[] = [];
  let prev = '';
  for (let at = fromByte; at < toByte; at += 1024) {
    const idx = Math.floor(at / CHUNK);
    const off = at - idx * CHUNK;
    let top = '0';
    for (const s of chunks.get(idx) ?? []) {
      if (off >= s.chunkOffsetBytes && off < s.chunkOffsetBytes + s.lengthBytes) {
        top = `${s.id}@${s.sliceOffsetBytes + off - s.chunkOffsetBytes}`;
      }
    }
    const id = top.split('@')[0];
    if (id !== prev) runs.push(`${at}:${id}`);
    prev = id;
  }
  return runs.join(' ');
}

export function dataTests(fx: EngineFixture): void {
  describe(`${fx.name}: data maps`, () => {
    it('slice ids are unique and consecutive per call', () =>
      withVolume(fx, async ({ svc }) => {
        const a = await svc.allocateSliceIds(10);
        const b = await svc.allocateSliceIds(1);
        const c = await svc.allocateSliceIds(5);
        assert.ok(a >= 1);
        assert.equal(b, a + 10);
        assert.equal(c, b + 1);
        await rejectsWith(svc.allocateSliceIds(0), 'EINVAL');
      }));

    it('commitWrites appends slices in overlay order and grows size, mtime and ctime', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 8192));
          const attr = await write(svc, f.ino, 0, slice(2, 4096, 2048));
          assert.equal(attr.sizeBytes, 8192);
          assert.deepEqual(attr.mtime, { sec: 1, nsec: 0 });
          const map = await svc.readSlices(f.ino, 0, 0);
          assert.deepEqual(
            map.get(0)!.map((s) => s.id),
            [1, 2],
          );
          assert.equal(await view(svc, f.ino, 0, 8192), '0:1 4096:2 6144:1');
          await write(svc, f.ino, 2, slice(3, 0, 1024));
          assert.equal((await svc.getattr(f.ino)).sizeBytes, 2 * CHUNK + 1024);
          assert.deepEqual([...(await svc.readSlices(f.ino, 0, 5)).keys()], [0, 2]);
          const bad = slice(4, CHUNK - 10, 20);
          await rejectsWith(
            svc.commitWrites(root, f.ino, [{ chunkIndex: 0, slice: bad }], 0, { sec: 1, nsec: 0 }),
            'EINVAL',
          );
        },
        smallChunks,
      ));

    it('commitWrites stamps ctime with the write time when later than the current ctime, else one microsecond after it', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const f = await file(svc, ROOT, 'f');
          const at = (us: number) => ({ sec: Math.floor(us / 1e6), nsec: (us % 1e6) * 1000 });
          clock.advanceMs(5);
          const wroteAt = at(clock.us);
          // Committed later (close, fsync): ctime stays what the mount showed since the write.
          clock.advanceMs(40);
          const first = await svc.commitWrites(
            root,
            f.ino,
            [{ chunkIndex: 0, slice: slice(1, 0, 100) }],
            100,
            wroteAt,
          );
          assert.deepEqual(first.mtime, wroteAt);
          assert.deepEqual(first.ctime, wroteAt, 'the commit must not move ctime past the write');
          // An explicit older mtime (utimes after the write) cannot be a change time: the
          // ctime moves one microsecond, as the mount showed while the write was pending.
          clock.advanceMs(5);
          const old = { sec: 1, nsec: 0 };
          const second = await svc.commitWrites(
            root,
            f.ino,
            [{ chunkIndex: 0, slice: slice(2, 0, 10) }],
            10,
            old,
          );
          assert.deepEqual(second.mtime, old);
          assert.deepEqual(second.ctime, { sec: wroteAt.sec, nsec: wroteAt.nsec + 1000 });
          // A write time from a clock behind the service's: ctime still moves forward.
          const behind = at(clock.us - 1000);
          const third = await svc.commitWrites(
            root,
            f.ino,
            [{ chunkIndex: 0, slice: slice(3, 0, 10) }],
            10,
            behind,
          );
          const ns = (t: { sec: number; nsec: number }) => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
          assert.ok(ns(third.ctime) > ns(second.ctime), 'ctime never stays or goes back on a change');
        },
        smallChunks,
      ));

    it('truncate then extend reads zeros where data was; whole chunks past the end are dropped', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, CHUNK));
          await write(svc, f.ino, 1, slice(2, 0, CHUNK));
          await svc.setattr(root, f.ino, { sizeBytes: 10240 });
          assert.deepEqual([...(await svc.readSlices(f.ino, 0, 5)).keys()], [0]);
          await svc.setattr(root, f.ino, { sizeBytes: 2 * CHUNK });
          assert.equal(await view(svc, f.ino, 0, 2 * CHUNK), '0:1 10240:0');
          const deleted = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.deepEqual(
            deleted.map((d) => d.id),
            [2],
          );
        },
        smallChunks,
      ));

    it('fallocate: punch hole needs KEEP_SIZE, zero range and plain allocation move the size', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 65536));
          await rejectsWith(svc.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE, 0, 1024), 'EOPNOTSUPP');
          await svc.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096);
          assert.equal(await view(svc, f.ino, 0, 65536), '0:1 4096:0 8192:1');
          assert.equal((await svc.getattr(f.ino)).sizeBytes, 65536);
          await svc.fallocate(root, f.ino, FALLOC_FL_ZERO_RANGE, 61440, 8192);
          assert.equal((await svc.getattr(f.ino)).sizeBytes, 69632);
          assert.equal(await view(svc, f.ino, 0, 69632), '0:1 4096:0 8192:1 61440:0');
          await svc.fallocate(root, f.ino, 0, 0, 3 * CHUNK);
          assert.equal((await svc.getattr(f.ino)).sizeBytes, 3 * CHUNK);
          await svc.fallocate(root, f.ino, FALLOC_FL_KEEP_SIZE, 0, 5 * CHUNK);
          assert.equal((await svc.getattr(f.ino)).sizeBytes, 3 * CHUNK);
          await rejectsWith(svc.fallocate(root, ROOT, 0, 0, 1), 'EISDIR');
          await rejectsWith(svc.fallocate(root, f.ino, 0, 0, 0), 'EINVAL');
        },
        smallChunks,
      ));

    it('fallocate moves mtime and ctime in every mode, KEEP_SIZE beyond the end included (as tmpfs)', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 65536));
          const old = { sec: 1000, nsec: 0 };
          for (const mode of [
            FALLOC_FL_KEEP_SIZE,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
            0,
          ]) {
            await svc.setattr(root, f.ino, { mtime: old });
            clock.advanceMs(3000);
            const before = await svc.getattr(f.ino);
            // Beyond the end, so KEEP_SIZE changes neither data nor size: the times still move.
            const after = await svc.fallocate(root, f.ino, mode, 65536, 4096);
            assert.notDeepEqual(after.mtime, old, `mode 0x${mode.toString(16)}: mtime moved`);
            assert.deepEqual(after.mtime, after.ctime, `mode 0x${mode.toString(16)}: mtime = ctime = now`);
            assert.equal(after.ctime.sec, before.ctime.sec + 3, `mode 0x${mode.toString(16)}: ctime moved`);
          }
        },
        smallChunks,
      ));

    it('fallocate by a caller other than root clears set-id bits as a write does (tmpfs)', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(2002, 2002);
        const f = await file(svc, ROOT, 'f', alice, 0o6777);
        assert.equal((await svc.fallocate(root, f.ino, FALLOC_FL_KEEP_SIZE, 0, 100)).mode & 0o7777, 0o6777);
        assert.equal((await svc.fallocate(user(2003), f.ino, 0, 0, 100)).mode & 0o7777, 0o777);
        // The owner has no CAP_FSETID either: S_ISUID goes; S_ISGID without group exec stays
        // for a member of the file's group, and goes for anyone else.
        await svc.setattr(alice, f.ino, { mode: 0o6747 });
        assert.equal((await svc.fallocate(alice, f.ino, FALLOC_FL_KEEP_SIZE, 0, 100)).mode & 0o7777, 0o2747);
        assert.equal(
          (await svc.fallocate(user(2003), f.ino, FALLOC_FL_KEEP_SIZE, 0, 100)).mode & 0o7777,
          0o747,
        );
      }));

    it('copyFileRange copies by reference: the same slice ids at shifted offsets, holes included', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const src = await file(svc, ROOT, 'src');
          const dst = await file(svc, ROOT, 'dst');
          await write(svc, src.ino, 0, slice(1, 0, 8192));
          await write(svc, src.ino, 0, slice(2, 16384, 8192));
          await write(svc, dst.ino, 1, slice(3, 0, CHUNK));
          // copy src [0, 24576) to dst at CHUNK - 4096: straddles the dst chunk boundary
          const r = await svc.copyFileRange(root, src.ino, 0, dst.ino, CHUNK - 4096, 24576);
          assert.equal(r.copiedBytes, 24576);
          assert.equal(r.attr.sizeBytes, 2 * CHUNK);
          const at = CHUNK - 4096;
          assert.equal(
            await view(svc, dst.ino, at, at + 24576 + 1024),
            `${at}:1 ${at + 8192}:0 ${at + 16384}:2 ${at + 24576}:3`,
          );
          const map = await svc.readSlices(dst.ino, 1, 1);
          const piece = map.get(1)!.find((s) => s.id === 1)!;
          assert.equal(piece.sliceOffsetBytes, 4096, 'the part after the boundary starts 4 KiB into slice 1');
          // the source's slice 1 now has two references: deleting the source does not free it
          await svc.unlink(root, ROOT, 'src');
          const deleted = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.ok(!deleted.some((d) => d.id === 1));
          const past = await svc.copyFileRange(root, dst.ino, 5 * CHUNK, dst.ino, 0, 10);
          assert.equal(past.copiedBytes, 0);
          await rejectsWith(svc.copyFileRange(root, dst.ino, 0, dst.ino, 100, 1000), 'EINVAL');
        },
        smallChunks,
      ));

    it('copyFileRange by a caller other than root clears set-id bits of the destination (tmpfs)', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const alice = user(2002, 2002);
          const src = await file(svc, ROOT, 'src');
          await write(svc, src.ino, 0, slice(1, 0, 4096));
          const dst = await file(svc, ROOT, 'dst', alice, 0o6777);
          await svc.copyFileRange(root, src.ino, 0, dst.ino, 0, 100);
          assert.equal((await svc.getattr(dst.ino)).mode & 0o7777, 0o6777, 'root keeps them');
          await svc.copyFileRange(user(2003), src.ino, 0, dst.ino, 0, 100);
          assert.equal((await svc.getattr(dst.ino)).mode & 0o7777, 0o777);
          await svc.setattr(alice, dst.ino, { mode: 0o6747 });
          await svc.copyFileRange(alice, src.ino, 0, dst.ino, 0, 100);
          assert.equal(
            (await svc.getattr(dst.ino)).mode & 0o7777,
            0o2747,
            'the owner in the group keeps S_ISGID without group exec',
          );
        },
        smallChunks,
      ));

    it('replaceChunkSlices swaps the list only if it is unchanged, and logs slices that left', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 4096));
          await write(svc, f.ino, 0, slice(2, 4096, 4096));
          const merged = [slice(3, 0, 8192)];
          assert.equal(await svc.replaceChunkSlices(f.ino, 0, [asSliceId(2), asSliceId(1)], merged), false);
          assert.equal(await svc.replaceChunkSlices(f.ino, 0, [asSliceId(1), asSliceId(2)], merged), true);
          assert.deepEqual(
            (await svc.readSlices(f.ino, 0, 0)).get(0)!.map((s) => s.id),
            [3],
          );
          const deleted = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.deepEqual(deleted.map((d) => d.id).sort(), [1, 2]);
          await svc.engine.write((tx) => tx.forgetDeletedSlices(deleted));
          await svc.unlink(root, ROOT, 'f');
          const after = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.deepEqual(
            after.map((d) => d.id),
            [3],
          );
        },
        smallChunks,
      ));

    it('slice states give references and the latest deletion; forget drops exactly the rows named', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(7, 0, 4096));
          const [live, unknown] = await svc.engine.read((tx) =>
            tx.getSliceStates([asSliceId(7), asSliceId(99)]),
          );
          assert.deepEqual(live, { id: 7, refs: 1, lastDeletedUs: undefined });
          assert.deepEqual(unknown, { id: 99, refs: 0, lastDeletedUs: undefined });
          await svc.setattr(root, f.ino, { sizeBytes: 0 });
          const [first] = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.equal(first.id, 7);
          // The same slice referenced again (what a restore from history would do), then dropped again:
          // the log holds two rows and the state names the later one.
          await write(svc, f.ino, 0, slice(7, 0, 4096));
          const [again] = await svc.engine.read((tx) => tx.getSliceStates([asSliceId(7)]));
          assert.deepEqual(again, { id: 7, refs: 1, lastDeletedUs: first.deletedUs });
          await svc.unlink(root, ROOT, 'f');
          const both = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.equal(both.length, 2);
          assert.ok(both[1].deletedUs > first.deletedUs);
          const [gone] = await svc.engine.read((tx) => tx.getSliceStates([asSliceId(7)]));
          assert.deepEqual(gone, { id: 7, refs: 0, lastDeletedUs: both[1].deletedUs });
          await svc.engine.write((tx) => tx.forgetDeletedSlices([first]));
          const left = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.deepEqual(left, [both[1]]);
          assert.deepEqual(await svc.engine.read((tx) => tx.listDeletedSlices(both[1].deletedUs, 10)), []);
        },
        smallChunks,
      ));

    it('an unlinked file that is still open keeps its inode and data until the last release', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const s1 = (await svc.openSession({ hostname: 'h', mountpoint: '/m', pid: 1, version: 't' }))
            .sessionId;
          const s2 = (await svc.openSession({ hostname: 'h', mountpoint: '/m', pid: 2, version: 't' }))
            .sessionId;
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 4096));
          await svc.open(root, s1, f.ino, 0);
          await svc.open(root, s2, f.ino, 0);
          await svc.unlink(root, ROOT, 'f');
          await rejectsWith(svc.lookup(root, ROOT, 'f'), 'ENOENT');
          assert.equal((await svc.getattr(f.ino)).nlink, 0);
          assert.equal((await svc.readSlices(f.ino, 0, 0)).get(0)!.length, 1);
          await svc.release(s1, f.ino);
          assert.equal((await svc.getattr(f.ino)).nlink, 0);
          await svc.release(s2, f.ino);
          await rejectsWith(svc.getattr(f.ino), 'ENOENT');
          const deleted = await svc.engine.read((tx) => tx.listDeletedSlices(Number.MAX_SAFE_INTEGER, 10));
          assert.deepEqual(
            deleted.map((d) => d.id),
            [1],
          );
          assert.equal((await svc.statfs()).inodesUsed, 1);
          await rejectsWith(svc.open(root, 'no-such-session', ROOT, 0), 'ENOTCONN');
        },
        smallChunks,
      ));
  });
}
