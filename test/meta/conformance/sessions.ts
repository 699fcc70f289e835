import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ROOT, file, rejectsWith, root, withVolume, type EngineFixture } from './fixture.js';

export function sessionTests(fx: EngineFixture): void {
  describe(`${fx.name}: sessions`, () => {
    it('a session without heartbeat expires: its locks go and its unlinked open files are reclaimed', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const info = { hostname: 'node1', mountpoint: '/mnt', pid: 42, version: 'test' };
          const { sessionId: dead, volume } = await svc.openSession(info);
          assert.equal(volume.name, 'conformance');
          const { sessionId: alive } = await svc.openSession(info);
          const f = await file(svc, ROOT, 'f');
          const kept = await file(svc, ROOT, 'kept');
          await svc.open(root, dead, f.ino, 0);
          await svc.open(root, dead, kept.ino, 0);
          await svc.open(root, alive, kept.ino, 0);
          await svc.setlk(
            f.ino,
            { sessionId: dead, owner: '1' },
            { type: 'write', start: 0, end: 9, pid: 1 },
            false,
          );
          await svc.unlink(root, ROOT, 'f');
          await svc.unlink(root, ROOT, 'kept');
          clock.advanceMs(20_000);
          await svc.heartbeat(alive);
          assert.deepEqual(await svc.expireSessions(), []);
          clock.advanceMs(20_000);
          await svc.heartbeat(alive);
          assert.deepEqual(await svc.expireSessions(), [dead]);
          await rejectsWith(svc.getattr(f.ino), 'ENOENT');
          assert.equal((await svc.getattr(kept.ino)).nlink, 0, 'still open in the live session');
          const locks = await svc.engine.read((tx) => tx.listLocks(f.ino));
          assert.equal(locks.length, 0);
          await rejectsWith(svc.heartbeat(dead), 'ENOTCONN');
          await svc.closeSession(alive);
          await rejectsWith(svc.getattr(kept.ino), 'ENOENT');
        },
        {},
        { sessionTimeoutMs: 30_000 },
      ));

    it('sessions and open files survive a restart; expiry afterwards still reclaims', () =>
      withVolume(
        fx,
        async (v) => {
          const { sessionId } = await v.svc.openSession({
            hostname: 'h',
            mountpoint: '/m',
            pid: 1,
            version: 't',
          });
          const f = await file(v.svc, ROOT, 'f');
          await v.svc.open(root, sessionId, f.ino, 0);
          await v.svc.unlink(root, ROOT, 'f');
          const svc = await v.reopen();
          assert.equal((await svc.getattr(f.ino)).nlink, 0);
          v.clock.advanceMs(120_000);
          assert.deepEqual(await svc.expireSessions(), [sessionId]);
          await rejectsWith(svc.getattr(f.ino), 'ENOENT');
        },
        {},
        { sessionTimeoutMs: 60_000 },
      ));
  });
}
