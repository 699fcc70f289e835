import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type Ino } from '../../../src/common/index.js';
import { ROOT, dir, file, names, rejectsWith, root, withVolume, type EngineFixture } from './fixture.js';

const slice = (id: number, lengthBytes: number) => ({
  id: asSliceId(id),
  sliceSizeBytes: lengthBytes,
  chunkOffsetBytes: 0,
  sliceOffsetBytes: 0,
  lengthBytes,
  blockSizeBytes: 65536,
});

export function historyTests(fx: EngineFixture): void {
  describe(`${fx.name}: history`, () => {
    it('reads as of several instants see the namespace, attributes, xattrs, links and data of that time', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const at = (us: number) => ({ asOfUs: us });
        const t0 = clock.nowUs() + 500_000;
        clock.advanceMs(1000);
        const d = await dir(svc, ROOT, 'd');
        const f = await file(svc, d.ino, 'f');
        const l = await svc.symlink(root, d.ino, 'l', 'f');
        // operations commit within microseconds of the clock; read half a second later
        const t1 = clock.nowUs() + 500_000;
        clock.advanceMs(1000);
        await svc.setxattr(root, f.ino, 'user.k', Buffer.from('v1'), 0);
        await svc.commitWrites(root, f.ino, [{ chunkIndex: 0, slice: slice(7, 4096) }], 4096, {
          sec: 2,
          nsec: 0,
        });
        await svc.setattr(root, f.ino, { mode: 0o600 });
        const t2 = clock.nowUs() + 500_000;
        clock.advanceMs(1000);
        await svc.setxattr(root, f.ino, 'user.k', Buffer.from('v2'), 0);
        await svc.setxattr(root, f.ino, 'user.other', Buffer.from('x'), 0);
        await svc.rename(root, d.ino, 'f', ROOT, 'g', 0);
        await svc.setattr(root, f.ino, { sizeBytes: 0 });
        const t3 = clock.nowUs() + 500_000;
        clock.advanceMs(1000);
        await svc.unlink(root, ROOT, 'g');
        await svc.unlink(root, d.ino, 'l');
        const t4 = clock.nowUs() + 500_000;
        clock.advanceMs(1000);

        // before anything was created
        await rejectsWith(svc.lookup(root, ROOT, 'd', at(t0)), 'ENOENT');
        assert.deepEqual(await names(svc, ROOT, t0), []);
        // t1: d/f and d/l exist, no xattrs, no data
        assert.deepEqual(await names(svc, d.ino, t1), ['f', 'l']);
        assert.equal((await svc.lookup(root, d.ino, 'f', at(t1))).ino, f.ino);
        assert.equal((await svc.getattr(f.ino, at(t1))).mode, 0o100644);
        assert.deepEqual(await svc.listxattr(f.ino, at(t1)), []);
        assert.equal((await svc.readSlices(f.ino, 0, 0, at(t1))).size, 0);
        assert.equal(await svc.readlink(l.ino, at(t1)), 'f');
        // t2: xattr v1, one slice, mode 0600
        assert.equal((await svc.getxattr(f.ino, 'user.k', at(t2))).toString(), 'v1');
        assert.deepEqual(await svc.listxattr(f.ino, at(t2)), ['user.k']);
        assert.equal((await svc.getattr(f.ino, at(t2))).mode, 0o100600);
        assert.equal((await svc.getattr(f.ino, at(t2))).sizeBytes, 4096);
        assert.deepEqual(
          (await svc.readSlices(f.ino, 0, 0, at(t2))).get(0)!.map((s) => s.id),
          [7],
        );
        // t3: renamed to /g, truncated, xattr v2
        assert.deepEqual(await names(svc, ROOT, t3), ['d', 'g']);
        assert.deepEqual(await names(svc, d.ino, t3), ['l']);
        await rejectsWith(svc.lookup(root, d.ino, 'f', at(t3)), 'ENOENT');
        assert.equal((await svc.getxattr(f.ino, 'user.k', at(t3))).toString(), 'v2');
        assert.deepEqual((await svc.listxattr(f.ino, at(t3))).sort(), ['user.k', 'user.other']);
        assert.equal((await svc.getattr(f.ino, at(t3))).sizeBytes, 0);
        assert.equal((await svc.readSlices(f.ino, 0, 0, at(t3))).size, 0);
        // t4: all gone; the current state agrees
        await rejectsWith(svc.getattr(f.ino, at(t4)), 'ENOENT');
        await rejectsWith(svc.readlink(l.ino, at(t4)), 'ENOENT');
        await rejectsWith(svc.getxattr(f.ino, 'user.k', at(t4)), 'ENOENT');
        assert.deepEqual(await names(svc, ROOT, t4), ['d']);
        assert.deepEqual(await names(svc, ROOT), ['d']);
        assert.deepEqual(await names(svc, d.ino), []);
        // and the past is still there
        assert.equal((await svc.getxattr(f.ino, 'user.k', at(t2))).toString(), 'v1');
        assert.equal((await svc.lookup(root, ROOT, 'g', at(t3))).ino, f.ino);
        // readdir with attributes as of t1 shows t1's attributes
        const page = await svc.readdir(root, d.ino, 0, 10, true, at(t1));
        assert.equal(page.find((e) => e.name === 'f')?.attr?.mode, 0o100644);
      }));

    it('a row changed several times in one transaction keeps one old image', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const f = await file(svc, ROOT, 'f');
        clock.advanceMs(1000);
        const before = (await svc.engine.stats()).historyRows;
        await svc.engine.write(async (tx) => {
          const row = (await tx.getInode(f.ino))!;
          await tx.putInode({ ...row, uid: 1 });
          await tx.putInode({ ...row, uid: 2 });
          await tx.putInode({ ...row, uid: 3 });
        });
        assert.equal((await svc.engine.stats()).historyRows, before + 1);
        assert.equal((await svc.getattr(f.ino)).uid, 3);
      }));

    it('as-of reads outside the retention window are refused, and pruning drops only what left it', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const f = await file(svc, ROOT, 'f');
          for (let i = 0; i < 20; i++) {
            clock.advanceMs(1000);
            await svc.setattr(root, f.ino, { uid: i });
          }
          const tOld = clock.nowUs();
          const early = (await svc.engine.stats()).historyRows;
          assert.ok(early >= 20);
          clock.advanceMs(45_000);
          for (let i = 0; i < 5; i++) {
            clock.advanceMs(1000);
            await svc.setattr(root, f.ino, { uid: 100 + i });
          }
          const tRecent = clock.nowUs() + 500_000;
          clock.advanceMs(1000);
          await svc.setattr(root, f.ino, { uid: 200 });
          clock.advanceMs(20_000); // the first 20 changes are now more than 60 s old
          await rejectsWith(svc.getattr(f.ino, { asOfUs: tOld - 10_000_000 }), 'EINVAL');
          const pruned = await svc.pruneHistory();
          assert.ok(pruned >= 20, `pruned ${pruned}`);
          const left = (await svc.engine.stats()).historyRows;
          assert.ok(left >= 5 && left < early, `history rows left: ${left}`);
          assert.equal((await svc.getattr(f.ino, { asOfUs: tRecent })).uid, 104);
          assert.equal((await svc.getattr(f.ino)).uid, 200);
          assert.equal(await svc.pruneHistory(), 0);
        },
        { historyRetentionMs: 60_000 },
      ));

    it('as-of reads of inodes that never existed or came later fail with ENOENT', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const t0 = clock.nowUs();
        clock.advanceMs(1000);
        const f = await file(svc, ROOT, 'f');
        await rejectsWith(svc.getattr(f.ino, { asOfUs: t0 }), 'ENOENT');
        await rejectsWith(svc.getattr(999_999 as Ino, { asOfUs: clock.nowUs() }), 'ENOENT');
      }));

    it('with background work on, old history is pruned and dead sessions expire without being asked', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const f = await file(svc, ROOT, 'f');
          const { sessionId } = await svc.openSession({
            hostname: 'h',
            mountpoint: '/m',
            pid: 1,
            version: 't',
          });
          await svc.open(root, sessionId, f.ino, 0);
          await svc.unlink(root, ROOT, 'f');
          for (let i = 0; i < 10; i++) await svc.setattr(root, ROOT, { uid: i });
          assert.ok((await svc.engine.stats()).historyRows >= 10);
          clock.advanceMs(120_000);
          const deadline = Date.now() + 10_000;
          while (Date.now() < deadline) {
            const rows = (await svc.engine.stats()).historyRows;
            const sessions = await svc.engine.read((tx) => tx.listSessions());
            if (rows <= 1 && sessions.length === 0) break;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          // what is left is the one old image the expiry itself made (the reclaimed inode): recent
          assert.ok((await svc.engine.stats()).historyRows <= 1);
          assert.deepEqual(await svc.engine.read((tx) => tx.listSessions()), []);
          await rejectsWith(svc.getattr(f.ino), 'ENOENT');
        },
        { historyRetentionMs: 60_000 },
        { background: true, pruneIntervalMs: 50, sessionTimeoutMs: 400 },
      ));
  });
}
