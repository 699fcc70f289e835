import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ino } from '../../../src/common/index.js';
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

export function namespaceTests(fx: EngineFixture): void {
  describe(`${fx.name}: namespace`, () => {
    it('mknod, mkdir and symlink create entries with the asked mode (umask applied) and the caller as owner', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000, 1000);
        const f = await svc.mknod(alice, ROOT, 'f', 0o100666, 0, 0o022);
        assert.equal(f.mode, 0o100644);
        assert.equal(f.uid, 1000);
        assert.equal(f.gid, 1000);
        assert.equal(f.nlink, 1);
        const d = await svc.mkdir(alice, ROOT, 'd', 0o777, 0o027);
        assert.equal(d.mode, 0o040750);
        assert.equal(d.nlink, 2);
        const fifo = await svc.mknod(alice, ROOT, 'p', 0o010600, 0, 0);
        assert.equal(fifo.mode & 0o170000, 0o010000);
        const dev = await svc.mknod(root, ROOT, 'c', 0o020600, 0x0501, 0);
        assert.equal(dev.rdev, 0x0501);
        const l = await svc.symlink(alice, ROOT, 'l', '../some/target');
        assert.equal(l.mode, 0o120777);
        assert.equal(l.sizeBytes, Buffer.byteLength('../some/target'));
        assert.equal(await svc.readlink(l.ino), '../some/target');
        await rejectsWith(svc.readlink(f.ino), 'EINVAL');
        assert.deepEqual(await names(svc, ROOT), ['c', 'd', 'f', 'l', 'p']);
        assert.equal((await svc.lookup(root, ROOT, 'd')).ino, d.ino);
        assert.equal((await svc.lookup(root, d.ino, '..')).ino, ROOT);
        assert.equal((await svc.lookup(root, d.ino, '.')).ino, d.ino);
      }));

    it('creating an existing name fails with EEXIST, whatever the types', () =>
      withVolume(fx, async ({ svc }) => {
        await file(svc, ROOT, 'a');
        await dir(svc, ROOT, 'b');
        await rejectsWith(file(svc, ROOT, 'a'), 'EEXIST');
        await rejectsWith(dir(svc, ROOT, 'a'), 'EEXIST');
        await rejectsWith(file(svc, ROOT, 'b'), 'EEXIST');
        await rejectsWith(svc.symlink(root, ROOT, 'b', 'x'), 'EEXIST');
        await rejectsWith(dir(svc, ROOT, '.'), 'EEXIST');
      }));

    it('missing names fail with ENOENT and files used as directories with ENOTDIR', () =>
      withVolume(fx, async ({ svc }) => {
        const f = await file(svc, ROOT, 'f');
        await rejectsWith(svc.lookup(root, ROOT, 'nope'), 'ENOENT');
        await rejectsWith(svc.getattr(12345 as Ino), 'ENOENT');
        await rejectsWith(svc.unlink(root, ROOT, 'nope'), 'ENOENT');
        await rejectsWith(file(svc, 999 as Ino, 'x'), 'ENOENT');
        await rejectsWith(file(svc, f.ino, 'x'), 'ENOTDIR');
        await rejectsWith(svc.lookup(root, f.ino, 'x'), 'ENOTDIR');
        await rejectsWith(svc.readdir(root, f.ino, 0, 10, false), 'ENOTDIR');
      }));

    it('names over 255 bytes fail with ENAMETOOLONG; 255 bytes are fine', () =>
      withVolume(fx, async ({ svc }) => {
        await file(svc, ROOT, 'x'.repeat(255));
        await rejectsWith(file(svc, ROOT, 'x'.repeat(256)), 'ENAMETOOLONG');
        // 128 two-byte characters: 256 bytes although only 128 UTF-16 units
        await rejectsWith(file(svc, ROOT, 'é'.repeat(128)), 'ENAMETOOLONG');
        await rejectsWith(svc.lookup(root, ROOT, 'y'.repeat(300)), 'ENAMETOOLONG');
      }));

    it('unlink of a directory is EISDIR, rmdir of a file ENOTDIR, rmdir of a non-empty directory ENOTEMPTY', () =>
      withVolume(fx, async ({ svc }) => {
        const d = await dir(svc, ROOT, 'd');
        await file(svc, ROOT, 'f');
        await file(svc, d.ino, 'inner');
        await rejectsWith(svc.unlink(root, ROOT, 'd'), 'EISDIR');
        await rejectsWith(svc.rmdir(root, ROOT, 'f'), 'ENOTDIR');
        await rejectsWith(svc.rmdir(root, ROOT, 'd'), 'ENOTEMPTY');
        await svc.unlink(root, d.ino, 'inner');
        await svc.rmdir(root, ROOT, 'd');
        await rejectsWith(svc.getattr(d.ino), 'ENOENT');
        await rejectsWith(svc.rmdir(root, ROOT, '.'), 'EINVAL');
      }));

    it('directory link counts are 2 + subdirectories; files count their names', () =>
      withVolume(fx, async ({ svc }) => {
        const d = await dir(svc, ROOT, 'd');
        await dir(svc, d.ino, 's1');
        await dir(svc, d.ino, 's2');
        await file(svc, d.ino, 'f');
        assert.equal((await svc.getattr(d.ino)).nlink, 4);
        assert.equal((await svc.getattr(ROOT)).nlink, 3);
        await svc.rmdir(root, d.ino, 's1');
        assert.equal((await svc.getattr(d.ino)).nlink, 3);
        const f = await svc.lookup(root, d.ino, 'f');
        const l = await svc.link(root, f.ino, ROOT, 'hard');
        assert.equal(l.nlink, 2);
        assert.equal((await svc.getattr(d.ino)).nlink, 3, 'hard links to files do not count on directories');
        await svc.unlink(root, d.ino, 'f');
        assert.equal((await svc.getattr(f.ino)).nlink, 1);
        assert.equal((await svc.lookup(root, ROOT, 'hard')).ino, f.ino);
      }));

    it('link refuses directories (EPERM), existing names (EEXIST) and, with maxLinks, one link too many (EMLINK)', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const d = await dir(svc, ROOT, 'd');
          await rejectsWith(svc.link(root, d.ino, ROOT, 'd2'), 'EPERM');
          const f = await file(svc, ROOT, 'f');
          await rejectsWith(svc.link(root, f.ino, ROOT, 'd'), 'EEXIST');
          await svc.link(root, f.ino, ROOT, 'f2');
          await svc.link(root, f.ino, ROOT, 'f3');
          await rejectsWith(svc.link(root, f.ino, ROOT, 'f4'), 'EMLINK');
          // directories: nlink 2 + subdirs must stay <= 3
          await dir(svc, d.ino, 's');
          await rejectsWith(dir(svc, d.ino, 't'), 'EMLINK');
        },
        { maxLinks: 3 },
      ));

    it('creating and removing entries moves the parent mtime and ctime; link moves the inode ctime', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const d = await dir(svc, ROOT, 'd');
        clock.advanceMs(5000);
        const f = await file(svc, d.ino, 'f');
        const after = await svc.getattr(d.ino);
        assert.equal(after.mtime.sec, d.mtime.sec + 5);
        assert.deepEqual(after.ctime, after.mtime);
        clock.advanceMs(3000);
        await svc.link(root, f.ino, ROOT, 'l');
        assert.equal((await svc.getattr(f.ino)).ctime.sec, d.mtime.sec + 8);
        clock.advanceMs(2000);
        await svc.unlink(root, d.ino, 'f');
        assert.equal((await svc.getattr(d.ino)).mtime.sec, d.mtime.sec + 10);
        assert.equal((await svc.getattr(f.ino)).ctime.sec, d.mtime.sec + 10);
      }));

    it('creating or removing needs write and search permission on the parent (EACCES)', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000);
        const bob = user(1001);
        const home = await dir(svc, ROOT, 'home', alice, 0o755);
        await file(svc, home.ino, 'mine', alice);
        await rejectsWith(file(svc, home.ino, 'x', bob), 'EACCES');
        await rejectsWith(dir(svc, home.ino, 'x', bob), 'EACCES');
        await rejectsWith(svc.unlink(bob, home.ino, 'mine'), 'EACCES');
        await rejectsWith(svc.rename(bob, home.ino, 'mine', ROOT, 'stolen', 0), 'EACCES');
        const locked = await dir(svc, ROOT, 'locked', alice, 0o700);
        await rejectsWith(svc.lookup(bob, locked.ino, 'anything'), 'EACCES');
        await file(svc, home.ino, 'byroot', root);
      }));

    it('in a sticky directory only the owner of the entry, of the directory, or root may remove it (EPERM)', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000);
        const bob = user(1001);
        const tmp = await dir(svc, ROOT, 'tmp', root, 0o1777);
        await file(svc, tmp.ino, 'a', alice);
        await file(svc, tmp.ino, 'b', bob);
        await rejectsWith(svc.unlink(bob, tmp.ino, 'a'), 'EPERM');
        await rejectsWith(svc.rename(bob, tmp.ino, 'a', tmp.ino, 'c', 0), 'EPERM');
        await rejectsWith(svc.rename(alice, tmp.ino, 'a', tmp.ino, 'b', 0), 'EPERM');
        await svc.unlink(alice, tmp.ino, 'a');
        await svc.unlink(root, tmp.ino, 'b');
        assert.deepEqual(await names(svc, tmp.ino), []);
      }));

    it('a set-group-id directory passes its group (and the bit, to subdirectories) down', () =>
      withVolume(fx, async ({ svc }) => {
        const shared = await svc.mkdir(root, ROOT, 'shared', 0o2777, 0);
        await svc.setattr(root, shared.ino, { gid: 500 });
        await svc.setattr(root, shared.ino, { mode: 0o2777 });
        const alice = user(1000);
        const f = await file(svc, shared.ino, 'f', alice);
        assert.equal(f.gid, 500);
        const d = await dir(svc, shared.ino, 'd', alice);
        assert.equal(d.gid, 500);
        assert.ok(d.mode & 0o2000);
        const outside = await file(svc, ROOT, 'g', alice);
        assert.equal(outside.gid, 1000);
      }));

    it('readdir pages by cursor: every entry once, "." and ".." first, attributes on request', () =>
      withVolume(fx, async ({ svc }) => {
        const d = await dir(svc, ROOT, 'd');
        for (let i = 0; i < 25; i++) await file(svc, d.ino, `f${i}`);
        const seen: string[] = [];
        let cursor = 0;
        for (;;) {
          const page = await svc.readdir(root, d.ino, cursor, 7, true);
          if (page.length === 0) break;
          assert.ok(page.length <= 7);
          for (const e of page) {
            seen.push(e.name);
            assert.equal(e.attr?.ino, e.ino);
          }
          cursor = page[page.length - 1].cursor;
        }
        assert.equal(seen[0], '.');
        assert.equal(seen[1], '..');
        assert.equal(seen.length, 27);
        assert.equal(new Set(seen).size, 27);
        const dotdot = (await svc.readdir(root, d.ino, 1, 1, false))[0];
        assert.equal(dotdot.name, '..');
        assert.equal(dotdot.ino, ROOT);
      }));

    it('statfs counts inodes as they come and go', () =>
      withVolume(fx, async ({ svc }) => {
        const before = await svc.statfs();
        assert.equal(before.inodesUsed, 1);
        await file(svc, ROOT, 'a');
        await dir(svc, ROOT, 'b');
        assert.equal((await svc.statfs()).inodesUsed, 3);
        await svc.unlink(root, ROOT, 'a');
        await svc.rmdir(root, ROOT, 'b');
        assert.equal((await svc.statfs()).inodesUsed, 1);
        assert.ok(before.capacityBytes > 0);
      }));

    it('access checks mode bits for the caller (EACCES), root passes', () =>
      withVolume(fx, async ({ svc }) => {
        const f = await file(svc, ROOT, 'f', user(1000), 0o640);
        await svc.access(user(1000), f.ino, 6);
        await svc.access(user(1001, 1000), f.ino, 4);
        await rejectsWith(svc.access(user(1001, 1000), f.ino, 2), 'EACCES');
        await rejectsWith(svc.access(user(1002), f.ino, 4), 'EACCES');
        await svc.access(root, f.ino, 6);
        await rejectsWith(svc.access(root, f.ino, 1), 'EACCES');
      }));
  });
}
