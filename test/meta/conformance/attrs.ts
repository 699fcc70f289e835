import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XATTR_CREATE, XATTR_REPLACE } from '../../../src/meta/index.js';
import { AclTag, encodeAcl } from '../../../src/meta/acl.js';
import { ROOT, dir, file, rejectsWith, root, user, withVolume, type EngineFixture } from './fixture.js';

export function attrTests(fx: EngineFixture): void {
  describe(`${fx.name}: setattr and xattrs`, () => {
    it('only the owner or root may chmod; a non-member loses set-group-id on chmod', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000, 1000);
        const f = await file(svc, ROOT, 'f', alice);
        await rejectsWith(svc.setattr(user(1001), f.ino, { mode: 0o777 }), 'EPERM');
        assert.equal((await svc.setattr(alice, f.ino, { mode: 0o4755 })).mode, 0o104755);
        await svc.setattr(root, f.ino, { gid: 2000 });
        const after = await svc.setattr(alice, f.ino, { mode: 0o2755 });
        assert.equal(after.mode, 0o100755, 'alice is not in group 2000: S_ISGID dropped');
        assert.equal((await svc.setattr(root, f.ino, { mode: 0o2755 })).mode, 0o102755);
      }));

    it('only root may chown; the owner may chgrp to a group of their own only', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000, 1000, [1000, 3000]);
        const f = await file(svc, ROOT, 'f', alice);
        await rejectsWith(svc.setattr(alice, f.ino, { uid: 1001 }), 'EPERM');
        await rejectsWith(svc.setattr(user(1001), f.ino, { gid: 1001 }), 'EPERM');
        await rejectsWith(svc.setattr(alice, f.ino, { gid: 4000 }), 'EPERM');
        assert.equal((await svc.setattr(alice, f.ino, { gid: 3000 })).gid, 3000);
        assert.equal(
          (await svc.setattr(alice, f.ino, { uid: 1000 })).uid,
          1000,
          'chown to oneself is allowed',
        );
        const g = await svc.setattr(root, f.ino, { uid: 7, gid: 8 });
        assert.equal(g.uid, 7);
        assert.equal(g.gid, 8);
      }));

    it('chown clears set-user-id and set-group-id (with group exec); killSuid does too', () =>
      withVolume(fx, async ({ svc }) => {
        const f = await file(svc, ROOT, 'f', root, 0o6755);
        assert.equal((await svc.setattr(root, f.ino, { uid: 5 })).mode, 0o100755);
        await svc.setattr(root, f.ino, { mode: 0o6755 });
        assert.equal((await svc.setattr(user(9), f.ino, { killSuid: true })).mode & 0o7777, 0o755);
        // S_ISGID without group exec is mandatory locking, not privilege: kept
        await svc.setattr(root, f.ino, { mode: 0o2745 });
        assert.equal((await svc.setattr(root, f.ino, { killSuid: true })).mode & 0o7777, 0o2745);
        const d = await svc.mkdir(root, ROOT, 'd', 0o2755, 0);
        assert.equal(
          (await svc.setattr(root, d.ino, { uid: 5 })).mode & 0o7777,
          0o2755,
          'directories keep it',
        );
      }));

    it('an access ACL is consulted only while the group bits (its mask) are not all zero', () =>
      withVolume(fx, async ({ svc }) => {
        const owner = user(2003, 2003);
        const bob = user(2002, 2002);
        const f = await file(svc, ROOT, 'f', owner, 0o503);
        const { USER_OBJ, GROUP_OBJ, GROUP, MASK, OTHER } = AclTag;
        const acl = (mask: number) =>
          encodeAcl([
            [USER_OBJ, 5, 0xffffffff],
            [GROUP_OBJ, 6, 0xffffffff],
            [GROUP, 3, 2002],
            [MASK, mask, 0xffffffff],
            [OTHER, 3, 0xffffffff],
          ]);
        await svc.setxattr(owner, f.ino, 'system.posix_acl_access', acl(0), 0);
        // group bits 0: the kernel ignores the ACL and bob gets the other bits (write)
        await svc.access(bob, f.ino, 2);
        await svc.setattr(owner, f.ino, { mode: 0o513 });
        await svc.setxattr(owner, f.ino, 'system.posix_acl_access', acl(1), 0);
        await rejectsWith(svc.access(bob, f.ino, 2), 'EACCES');
      }));

    it('setting or removing an access ACL by an owner outside the group drops S_ISGID (posix_acl_update_mode)', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(2002, 2002);
        const d = await svc.mkdir(root, ROOT, 'd', 0o2700, 0);
        await svc.setattr(root, d.ino, { uid: 2002, gid: 2003 });
        await svc.removexattr(root, d.ino, 'system.posix_acl_access');
        assert.equal((await svc.getattr(d.ino)).mode & 0o7777, 0o2700, 'root keeps it');
        await svc.removexattr(alice, d.ino, 'system.posix_acl_access');
        assert.equal((await svc.getattr(d.ino)).mode & 0o7777, 0o700);
        await svc.setattr(root, d.ino, { mode: 0o2700 });
        const { USER_OBJ, GROUP_OBJ, OTHER } = AclTag;
        const minimal = encodeAcl([
          [USER_OBJ, 7, 0xffffffff],
          [GROUP_OBJ, 0, 0xffffffff],
          [OTHER, 0, 0xffffffff],
        ]);
        await svc.setxattr(alice, d.ino, 'system.posix_acl_access', minimal, 0);
        assert.equal((await svc.getattr(d.ino)).mode & 0o7777, 0o700);
      }));

    it('removing a POSIX ACL that is not there succeeds and moves ctime; a missing user xattr is ENODATA', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const f = await file(svc, ROOT, 'f', root, 0o640);
        const before = (await svc.getattr(f.ino)).ctime;
        clock.advanceMs(10);
        await svc.removexattr(root, f.ino, 'system.posix_acl_access');
        assert.notDeepEqual((await svc.getattr(f.ino)).ctime, before);
        await rejectsWith(svc.removexattr(user(1001), f.ino, 'system.posix_acl_access'), 'EPERM');
        await rejectsWith(svc.removexattr(root, f.ino, 'user.none'), 'ENODATA');
      }));

    it('chmod rewrites the owner, mask and other entries of an access ACL; named entries stay (posix_acl_chmod)', () =>
      withVolume(fx, async ({ svc }) => {
        const f = await file(svc, ROOT, 'f', root, 0o640);
        const { USER_OBJ, USER, GROUP_OBJ, MASK, OTHER } = AclTag;
        const acl = (owner: number, mask: number, other: number) =>
          encodeAcl([
            [USER_OBJ, owner, 0xffffffff],
            [USER, 6, 2001],
            [GROUP_OBJ, 2, 0xffffffff],
            [MASK, mask, 0xffffffff],
            [OTHER, other, 0xffffffff],
          ]);
        await svc.setxattr(root, f.ino, 'system.posix_acl_access', acl(0, 5, 2), 0);
        await svc.setattr(root, f.ino, { mode: 0o555 });
        assert.deepEqual(await svc.getxattr(f.ino, 'system.posix_acl_access'), acl(5, 5, 5));
        await svc.setattr(root, f.ino, { mode: 0o3710 });
        assert.deepEqual(await svc.getxattr(f.ino, 'system.posix_acl_access'), acl(7, 1, 0));
      }));

    it("a write or truncate by a caller outside the file's group clears S_ISGID even without group exec; a member keeps it", () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(2001, 2001);
        const f = await file(svc, ROOT, 'f', alice, 0o2767);
        const member = user(2002, 2002, [2001]);
        assert.equal((await svc.setattr(member, f.ino, { killSuid: true })).mode & 0o7777, 0o2767);
        const outsider = user(2003, 2003);
        assert.equal((await svc.setattr(outsider, f.ino, { killSuid: true })).mode & 0o7777, 0o767);
        // chown judges by the group the file had: root gives it to 2003's group, kept
        await svc.setattr(root, f.ino, { mode: 0o2767 });
        assert.equal((await svc.setattr(root, f.ino, { gid: 2003 })).mode & 0o7777, 0o2767);
      }));

    it('chown(-1, -1) (a setattr that changes nothing) by the owner or root clears set-id bits of a non-directory (tmpfs)', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const alice = user(2001, 2001);
        const f = await file(svc, ROOT, 'f', alice, 0o6755);
        clock.advanceMs(1000);
        const a = await svc.setattr(alice, f.ino, {});
        assert.equal(a.mode & 0o7777, 0o755);
        assert.equal(a.ctime.sec, f.ctime.sec + 1, 'ctime moves');
        // S_ISGID without group exec: kept for a member of the file's group or root, cleared
        // for an owner outside it.
        await svc.setattr(alice, f.ino, { mode: 0o2745 });
        assert.equal((await svc.setattr(alice, f.ino, {})).mode & 0o7777, 0o2745);
        assert.equal((await svc.setattr(root, f.ino, {})).mode & 0o7777, 0o2745);
        await svc.setattr(root, f.ino, { gid: 4000 });
        await svc.setattr(root, f.ino, { mode: 0o2745 });
        assert.equal((await svc.setattr(alice, f.ino, {})).mode & 0o7777, 0o745, 'owner outside the group');
        // Root clears S_ISUID too (chown kills regardless of capabilities); directories keep theirs.
        await svc.setattr(root, f.ino, { mode: 0o4755 });
        assert.equal((await svc.setattr(root, f.ino, {})).mode & 0o7777, 0o755);
        const d = await svc.mkdir(alice, ROOT, 'd', 0o755, 0);
        await svc.setattr(alice, d.ino, { mode: 0o6755 });
        assert.equal((await svc.setattr(alice, d.ino, {})).mode & 0o7777, 0o6755);
        // A non-owner's empty setattr is also the kernel's file_remove_privs() before a
        // fallocate through a shared descriptor: it succeeds and leaves the bits to fallocate.
        await svc.setattr(root, f.ino, { mode: 0o4755 });
        clock.advanceMs(1000);
        const b = await svc.setattr(user(2003), f.ino, {});
        assert.equal(b.mode & 0o7777, 0o4755);
        assert.equal(b.ctime.sec, f.ctime.sec + 2, 'ctime moves');
      }));

    it('explicit times need ownership (EPERM); "now" needs write permission; ctime always moves', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const alice = user(1000);
        const f = await file(svc, ROOT, 'f', alice, 0o666);
        const t = { sec: 1234, nsec: 567_000_000 };
        await rejectsWith(svc.setattr(user(1001), f.ino, { mtime: t }), 'EPERM');
        clock.advanceMs(2000);
        const a = await svc.setattr(user(1001), f.ino, { mtime: 'now', atime: 'now' });
        assert.equal(a.mtime.sec, f.mtime.sec + 2);
        const b = await svc.setattr(alice, f.ino, { mtime: t, atime: t });
        assert.deepEqual(b.mtime, t);
        assert.deepEqual(b.atime, t);
        assert.equal(b.ctime.sec, f.ctime.sec + 2);
        await svc.setattr(alice, f.ino, { mode: 0o600 });
        await rejectsWith(svc.setattr(user(1001), f.ino, { mtime: 'now' }), 'EACCES');
      }));

    it('size changes apply to regular files only (EISDIR, EINVAL) and move mtime', () =>
      withVolume(fx, async ({ svc, clock }) => {
        const f = await file(svc, ROOT, 'f');
        const d = await dir(svc, ROOT, 'd');
        const l = await svc.symlink(root, ROOT, 'l', 'f');
        clock.advanceMs(1000);
        const g = await svc.setattr(root, f.ino, { sizeBytes: 100_000 });
        assert.equal(g.sizeBytes, 100_000);
        assert.equal(g.mtime.sec, f.mtime.sec + 1);
        await rejectsWith(svc.setattr(root, d.ino, { sizeBytes: 0 }), 'EISDIR');
        await rejectsWith(svc.setattr(root, l.ino, { sizeBytes: 0 }), 'EINVAL');
        // Past the largest file size: EFBIG, as Linux file systems answer truncate(2) there.
        await rejectsWith(svc.setattr(root, f.ino, { sizeBytes: 2 ** 62 }), 'EFBIG');
        // Growing by truncate adds a hole: no data, no usage (statfs counts allocated bytes).
        assert.equal((await svc.statfs()).usedBytes, 0);
        assert.equal(g.allocatedBytes, 0);
      }));

    it('xattrs: XATTR_CREATE/REPLACE, ENODATA, list and remove; ACLs are stored as sent', () =>
      withVolume(fx, async ({ svc }) => {
        const f = await file(svc, ROOT, 'f');
        await svc.setxattr(root, f.ino, 'user.a', Buffer.from('1'), 0);
        await rejectsWith(svc.setxattr(root, f.ino, 'user.a', Buffer.from('2'), XATTR_CREATE), 'EEXIST');
        await rejectsWith(svc.setxattr(root, f.ino, 'user.b', Buffer.from('2'), XATTR_REPLACE), 'ENODATA');
        await svc.setxattr(root, f.ino, 'user.a', Buffer.from('22'), XATTR_REPLACE);
        assert.equal((await svc.getxattr(f.ino, 'user.a')).toString(), '22');
        const acl = encodeAcl([
          [AclTag.USER_OBJ, 6, 0],
          [AclTag.GROUP_OBJ, 4, 0],
          [AclTag.OTHER, 4, 0],
        ]);
        await svc.setxattr(root, f.ino, 'system.posix_acl_access', acl, 0);
        assert.deepEqual(await svc.getxattr(f.ino, 'system.posix_acl_access'), acl);
        await svc.setxattr(root, f.ino, 'user.empty', Buffer.alloc(0), 0);
        assert.equal((await svc.getxattr(f.ino, 'user.empty')).length, 0);
        assert.deepEqual((await svc.listxattr(f.ino)).sort(), [
          'system.posix_acl_access',
          'user.a',
          'user.empty',
        ]);
        await svc.removexattr(root, f.ino, 'user.a');
        await rejectsWith(svc.getxattr(f.ino, 'user.a'), 'ENODATA');
        await rejectsWith(svc.removexattr(root, f.ino, 'user.a'), 'ENODATA');
        await rejectsWith(svc.setxattr(root, f.ino, 'bogus.x', Buffer.from('1'), 0), 'EOPNOTSUPP');
        // A bare prefix is EINVAL and system.* holds only the ACLs, as Linux's xattr handlers say.
        for (const bare of ['user.', 'trusted.', 'security.']) {
          await rejectsWith(svc.setxattr(root, f.ino, bare, Buffer.from('1'), 0), 'EINVAL');
          await rejectsWith(svc.getxattr(f.ino, bare), 'EINVAL');
          await rejectsWith(svc.removexattr(root, f.ino, bare), 'EINVAL');
        }
        for (const system of ['system.', 'system.foo']) {
          await rejectsWith(svc.setxattr(root, f.ino, system, Buffer.from('1'), 0), 'EOPNOTSUPP');
          await rejectsWith(svc.getxattr(f.ino, system), 'EOPNOTSUPP');
        }
        await rejectsWith(svc.setxattr(user(5), f.ino, 'system.posix_acl_access', acl, 0), 'EPERM');
        await rejectsWith(svc.setxattr(user(5), f.ino, 'user.x', Buffer.from('1'), 0), 'EACCES');
        await rejectsWith(svc.setxattr(root, f.ino, 'user.big', Buffer.alloc(70_000), 0), 'E2BIG');
      }));

    it('an access ACL grants a named user what the mode bits deny, within its mask', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000);
        const bob = user(1001);
        const carol = user(1002);
        const d = await dir(svc, ROOT, 'd', alice, 0o750);
        await rejectsWith(file(svc, d.ino, 'x', bob), 'EACCES');
        const acl = encodeAcl([
          [AclTag.USER_OBJ, 7, 0],
          [AclTag.USER, 7, 1001],
          [AclTag.USER, 7, 1002],
          [AclTag.GROUP_OBJ, 5, 0],
          [AclTag.MASK, 7, 0],
          [AclTag.OTHER, 0, 0],
        ]);
        await svc.setxattr(alice, d.ino, 'system.posix_acl_access', acl, 0);
        await file(svc, d.ino, 'x', bob);
        const masked = encodeAcl([
          [AclTag.USER_OBJ, 7, 0],
          [AclTag.USER, 7, 1002],
          [AclTag.GROUP_OBJ, 5, 0],
          [AclTag.MASK, 5, 0],
          [AclTag.OTHER, 0, 0],
        ]);
        await svc.setxattr(alice, d.ino, 'system.posix_acl_access', masked, 0);
        await rejectsWith(file(svc, d.ino, 'y', carol), 'EACCES');
        await svc.lookup(carol, d.ino, 'x');
        await rejectsWith(svc.lookup(bob, d.ino, 'x'), 'EACCES');
      }));

    it('a default ACL replaces the umask for new entries, becomes their access ACL, and passes to subdirectories', () =>
      withVolume(fx, async ({ svc }) => {
        const alice = user(1000);
        const bob = user(1001);
        const d = await dir(svc, ROOT, 'd', alice, 0o777);
        const inheritable = encodeAcl([
          [AclTag.USER_OBJ, 7, 0],
          [AclTag.USER, 7, 1001],
          [AclTag.GROUP_OBJ, 5, 0],
          [AclTag.MASK, 7, 0],
          [AclTag.OTHER, 0, 0],
        ]);
        await svc.setxattr(alice, d.ino, 'system.posix_acl_default', inheritable, 0);
        const f = await svc.mknod(alice, d.ino, 'f', 0o100666, 0, 0o022);
        assert.equal(f.mode & 0o777, 0o660, 'umask ignored; other masked to ---; group class = mask rw-');
        const access = await svc.getxattr(f.ino, 'system.posix_acl_access');
        assert.deepEqual(
          access,
          encodeAcl([
            [AclTag.USER_OBJ, 6, 0],
            [AclTag.USER, 7, 1001],
            [AclTag.GROUP_OBJ, 5, 0],
            [AclTag.MASK, 6, 0],
            [AclTag.OTHER, 0, 0],
          ]),
        );
        await svc.access(bob, f.ino, 6);
        await rejectsWith(svc.access(user(1002), f.ino, 4), 'EACCES');
        const sub = await svc.mkdir(alice, d.ino, 'sub', 0o777, 0o077);
        assert.equal(sub.mode & 0o777, 0o770);
        assert.deepEqual(await svc.getxattr(sub.ino, 'system.posix_acl_default'), inheritable);
        const plain = await svc.mknod(alice, ROOT, 'plain', 0o100666, 0, 0o022);
        assert.equal(plain.mode & 0o777, 0o644);
        await rejectsWith(svc.getxattr(plain.ino, 'system.posix_acl_access'), 'ENODATA');
      }));
  });
}
