import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from '../../../src/meta/index.js';
import {
  ROOT,
  dir,
  file,
  names,
  rejectsWith,
  root,
  user,
  withVolume,
  type EngineFixture,
} from './fixture.js';

export function renameTests(fx: EngineFixture): void {
  describe(`${fx.name}: rename`, () => {
    it('rename over a file replaces it atomically and frees the old target', () =>
      withVolume(fx, async ({ svc }) => {
        const a = await file(svc, ROOT, 'a');
        const b = await file(svc, ROOT, 'b');
        await svc.rename(root, ROOT, 'a', ROOT, 'b', 0);
        assert.deepEqual(await names(svc, ROOT), ['b']);
        assert.equal((await svc.lookup(root, ROOT, 'b')).ino, a.ino);
        await rejectsWith(svc.getattr(b.ino), 'ENOENT');
        assert.equal((await svc.statfs()).inodesUsed, 2);
      }));

    it('rename over a hard link keeps the other links of the replaced inode', () =>
      withVolume(fx, async ({ svc }) => {
        await file(svc, ROOT, 'a');
        const b = await file(svc, ROOT, 'b');
        await svc.link(root, b.ino, ROOT, 'b2');
        await svc.rename(root, ROOT, 'a', ROOT, 'b', 0);
        assert.equal((await svc.getattr(b.ino)).nlink, 1);
      }));

    it('renaming one name of an inode onto another name of the same inode does nothing', () =>
      withVolume(fx, async ({ svc }) => {
        const a = await file(svc, ROOT, 'a');
        await svc.link(root, a.ino, ROOT, 'b');
        await svc.rename(root, ROOT, 'a', ROOT, 'b', 0);
        assert.deepEqual(await names(svc, ROOT), ['a', 'b']);
        assert.equal((await svc.getattr(a.ino)).nlink, 2);
      }));

    it('an empty directory can be replaced by a directory; a non-empty one gives ENOTEMPTY', () =>
      withVolume(fx, async ({ svc }) => {
        const src = await dir(svc, ROOT, 'src');
        const empty = await dir(svc, ROOT, 'empty');
        const full = await dir(svc, ROOT, 'full');
        await file(svc, full.ino, 'x');
        await rejectsWith(svc.rename(root, ROOT, 'src', ROOT, 'full', 0), 'ENOTEMPTY');
        await svc.rename(root, ROOT, 'src', ROOT, 'empty', 0);
        assert.equal((await svc.lookup(root, ROOT, 'empty')).ino, src.ino);
        await rejectsWith(svc.getattr(empty.ino), 'ENOENT');
        assert.equal((await svc.getattr(ROOT)).nlink, 4);
      }));

    it('type mismatches: directory over file is ENOTDIR, file over directory is EISDIR', () =>
      withVolume(fx, async ({ svc }) => {
        await dir(svc, ROOT, 'd');
        await dir(svc, ROOT, 'e');
        await file(svc, ROOT, 'f');
        await rejectsWith(svc.rename(root, ROOT, 'd', ROOT, 'f', 0), 'ENOTDIR');
        await rejectsWith(svc.rename(root, ROOT, 'f', ROOT, 'e', 0), 'EISDIR');
        assert.deepEqual(await names(svc, ROOT), ['d', 'e', 'f']);
      }));

    it('a directory renamed into its own subtree fails with EINVAL', () =>
      withVolume(fx, async ({ svc }) => {
        const a = await dir(svc, ROOT, 'a');
        const b = await dir(svc, a.ino, 'b');
        const c = await dir(svc, b.ino, 'c');
        await rejectsWith(svc.rename(root, ROOT, 'a', c.ino, 'a', 0), 'EINVAL');
        await rejectsWith(svc.rename(root, ROOT, 'a', a.ino, 'x', 0), 'EINVAL');
        await rejectsWith(svc.rename(root, b.ino, 'c', c.ino, 'x', RENAME_EXCHANGE), 'ENOENT');
      }));

    it('moving a directory moves its ".." and the link counts of both parents', () =>
      withVolume(fx, async ({ svc }) => {
        const p1 = await dir(svc, ROOT, 'p1');
        const p2 = await dir(svc, ROOT, 'p2');
        const d = await dir(svc, p1.ino, 'd');
        await svc.rename(root, p1.ino, 'd', p2.ino, 'd2', 0);
        assert.equal((await svc.getattr(p1.ino)).nlink, 2);
        assert.equal((await svc.getattr(p2.ino)).nlink, 3);
        assert.equal((await svc.lookup(root, d.ino, '..')).ino, p2.ino);
        assert.deepEqual(await names(svc, p1.ino), []);
        assert.deepEqual(await names(svc, p2.ino), ['d2']);
      }));

    it('RENAME_NOREPLACE fails with EEXIST when the target exists and renames otherwise', () =>
      withVolume(fx, async ({ svc }) => {
        await file(svc, ROOT, 'a');
        await file(svc, ROOT, 'b');
        await rejectsWith(svc.rename(root, ROOT, 'a', ROOT, 'b', RENAME_NOREPLACE), 'EEXIST');
        await svc.rename(root, ROOT, 'a', ROOT, 'c', RENAME_NOREPLACE);
        assert.deepEqual(await names(svc, ROOT), ['b', 'c']);
        await rejectsWith(
          svc.rename(root, ROOT, 'b', ROOT, 'c', RENAME_NOREPLACE | RENAME_EXCHANGE),
          'EINVAL',
        );
      }));

    it('RENAME_EXCHANGE swaps two entries, also a file and a directory across parents', () =>
      withVolume(fx, async ({ svc }) => {
        const p1 = await dir(svc, ROOT, 'p1');
        const p2 = await dir(svc, ROOT, 'p2');
        const f = await file(svc, p1.ino, 'f');
        const d = await dir(svc, p2.ino, 'd');
        await svc.rename(root, p1.ino, 'f', p2.ino, 'd', RENAME_EXCHANGE);
        assert.equal((await svc.lookup(root, p1.ino, 'f')).ino, d.ino);
        assert.equal((await svc.lookup(root, p2.ino, 'd')).ino, f.ino);
        assert.equal((await svc.lookup(root, d.ino, '..')).ino, p1.ino);
        assert.equal((await svc.getattr(p1.ino)).nlink, 3);
        assert.equal((await svc.getattr(p2.ino)).nlink, 2);
        await rejectsWith(svc.rename(root, p1.ino, 'f', p2.ino, 'missing', RENAME_EXCHANGE), 'ENOENT');
        // exchanging a directory with an entry inside it would make a cycle
        await file(svc, d.ino, 'inner');
        await rejectsWith(svc.rename(root, p1.ino, 'f', d.ino, 'inner', RENAME_EXCHANGE), 'EINVAL');
      }));

    it('rename of a missing source is ENOENT and leaves the target alone', () =>
      withVolume(fx, async ({ svc }) => {
        await file(svc, ROOT, 'b');
        await rejectsWith(svc.rename(root, ROOT, 'a', ROOT, 'b', 0), 'ENOENT');
        assert.deepEqual(await names(svc, ROOT), ['b']);
      }));

    it('rename moves the ctime of the renamed inode and the mtime of both parents', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const p1 = await dir(svc, ROOT, 'p1');
        const p2 = await dir(svc, ROOT, 'p2');
        const f = await file(svc, p1.ino, 'f');
        clock.advanceMs(10_000);
        await svc.rename(root, p1.ino, 'f', p2.ino, 'g', 0);
        const t = f.ctime.sec + 10;
        assert.equal((await svc.getattr(f.ino)).ctime.sec, t);
        assert.equal((await svc.getattr(p1.ino)).mtime.sec, t);
        assert.equal((await svc.getattr(p2.ino)).mtime.sec, t);
      }));

    it('RENAME_WHITEOUT moves the entry and leaves a 0:0 character device of mode 0 at the old name (overlayfs)', () =>
      withVolume(fx, async ({ svc }) => {
        const sgid = await dir(svc, ROOT, 'sgid', root, 0o777);
        await svc.setattr(root, sgid.ino, { mode: 0o2777, gid: 50 });
        const dst = await dir(svc, ROOT, 'dst', root, 0o777);
        const carol = user(1002, 1002);
        const a = await file(svc, sgid.ino, 'a', carol);
        await file(svc, dst.ino, 'victim', carol);
        await svc.rename(carol, sgid.ino, 'a', dst.ino, 'victim', RENAME_WHITEOUT);
        assert.equal((await svc.lookup(root, dst.ino, 'victim')).ino, a.ino);
        const whiteout = await svc.lookup(root, sgid.ino, 'a');
        assert.notEqual(whiteout.ino, a.ino);
        assert.deepEqual(
          [whiteout.mode, whiteout.rdev, whiteout.nlink, whiteout.uid, whiteout.gid],
          [0o20000, 0, 1, 1002, 50],
        );
        // victim replaced (-1), whiteout added (+1): root, sgid, dst, a, whiteout.
        assert.equal((await svc.statfs()).inodesUsed, 5);
        // With NOREPLACE it refuses an existing target and leaves no whiteout behind.
        await file(svc, ROOT, 'b');
        await file(svc, ROOT, 'c');
        await rejectsWith(
          svc.rename(root, ROOT, 'b', ROOT, 'c', RENAME_WHITEOUT | RENAME_NOREPLACE),
          'EEXIST',
        );
        assert.equal((await svc.lookup(root, ROOT, 'b')).mode & 0o170000, 0o100000);
        await svc.rename(root, ROOT, 'b', ROOT, 'd', RENAME_WHITEOUT | RENAME_NOREPLACE);
        assert.deepEqual(await names(svc, ROOT), ['b', 'c', 'd', 'dst', 'sgid']);
        assert.equal((await svc.lookup(root, ROOT, 'b')).mode, 0o20000);
        // A directory moves too; the whiteout takes its old name and the parents' links follow.
        const moved = await dir(svc, sgid.ino, 'sub');
        assert.equal((await svc.getattr(sgid.ino)).nlink, 3);
        await svc.rename(root, sgid.ino, 'sub', dst.ino, 'sub', RENAME_WHITEOUT);
        assert.equal((await svc.lookup(root, dst.ino, 'sub')).ino, moved.ino);
        assert.equal((await svc.getattr(sgid.ino)).nlink, 2);
        assert.equal((await svc.getattr(dst.ino)).nlink, 3);
        assert.equal((await svc.lookup(root, sgid.ino, 'sub')).mode, 0o20000);
        await rejectsWith(
          svc.rename(root, ROOT, 'c', ROOT, 'd', RENAME_WHITEOUT | RENAME_EXCHANGE),
          'EINVAL',
        );
      }));
  });
}
