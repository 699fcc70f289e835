import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LockRange, MetaService } from '../../../src/meta/index.js';
import { ROOT, file, rejectsWith, withVolume, type EngineFixture } from './fixture.js';

const EOF_POS = Number.MAX_SAFE_INTEGER;
const r = (type: LockRange['type'], start: number, end: number, pid = 1): LockRange => ({
  type,
  start,
  end,
  pid,
});
const session = async (svc: MetaService) =>
  (await svc.openSession({ hostname: 'h', mountpoint: '/m', pid: 1, version: 't' })).sessionId;

export function lockTests(fx: EngineFixture): void {
  describe(`${fx.name}: locks`, () => {
    it('POSIX locks: write conflicts across owners (EAGAIN), reads share, getlk names the holder', () =>
      withVolume(fx, async ({ svc }) => {
        const s = await session(svc);
        const f = await file(svc, ROOT, 'f');
        const a = { sessionId: s, owner: '1' };
        const b = { sessionId: s, owner: '2' };
        await svc.setlk(f.ino, a, r('write', 0, 99, 10), false);
        await rejectsWith(svc.setlk(f.ino, b, r('read', 50, 60), false), 'EAGAIN');
        await svc.setlk(f.ino, b, r('write', 100, 199), false);
        assert.deepEqual(await svc.getlk(f.ino, b, r('write', 90, 95)), r('write', 0, 99, 10));
        assert.equal(await svc.getlk(f.ino, a, r('write', 0, 99)), null, 'own locks never conflict');
        await svc.setlk(f.ino, a, r('read', 0, 99, 10), false);
        await svc.setlk(f.ino, b, r('read', 0, 49), false);
      }));

    it('unlocking the middle of a range splits it; re-locking merges it', () =>
      withVolume(fx, async ({ svc }) => {
        const s = await session(svc);
        const f = await file(svc, ROOT, 'f');
        const a = { sessionId: s, owner: '1' };
        const b = { sessionId: s, owner: '2' };
        await svc.setlk(f.ino, a, r('write', 0, EOF_POS), false);
        await svc.setlk(f.ino, a, r('unlock', 100, 199), false);
        await svc.setlk(f.ino, b, r('write', 120, 150), false);
        await rejectsWith(svc.setlk(f.ino, b, r('write', 99, 120), false), 'EAGAIN');
        await rejectsWith(svc.setlk(f.ino, b, r('write', 200, 200), false), 'EAGAIN');
        await svc.setlk(f.ino, b, r('unlock', 0, EOF_POS), false);
        await svc.setlk(f.ino, a, r('write', 100, 199), false);
        const locks = await svc.engine.read((tx) => tx.listLocks(f.ino));
        assert.equal(locks.length, 1, 'merged back into one range');
        assert.equal(locks[0].start, 0);
        assert.equal(locks[0].end, EOF_POS);
      }));

    it('flock: exclusive excludes everyone else, shared coexists, and it ignores POSIX locks', () =>
      withVolume(fx, async ({ svc }) => {
        const s1 = await session(svc);
        const s2 = await session(svc);
        const f = await file(svc, ROOT, 'f');
        const a = { sessionId: s1, owner: '7' };
        const b = { sessionId: s2, owner: '7' };
        await svc.setlk(f.ino, a, r('read', 0, 0), true);
        await svc.setlk(f.ino, b, r('read', 0, 0), true);
        await rejectsWith(svc.setlk(f.ino, b, r('write', 0, 0), true), 'EAGAIN');
        await svc.setlk(f.ino, a, r('unlock', 0, 0), true);
        await svc.setlk(f.ino, b, r('write', 0, 0), true);
        await rejectsWith(svc.setlk(f.ino, a, r('read', 0, 0), true), 'EAGAIN');
        // b holds the file exclusively by flock, yet a POSIX lock on it is granted
        await svc.setlk(f.ino, a, r('write', 0, 10), false);
      }));

    it('closing a session releases its locks', () =>
      withVolume(fx, async ({ svc }) => {
        const s1 = await session(svc);
        const s2 = await session(svc);
        const f = await file(svc, ROOT, 'f');
        await svc.setlk(f.ino, { sessionId: s1, owner: '1' }, r('write', 0, EOF_POS), false);
        await rejectsWith(svc.setlk(f.ino, { sessionId: s2, owner: '1' }, r('write', 0, 0), false), 'EAGAIN');
        await svc.closeSession(s1);
        await svc.setlk(f.ino, { sessionId: s2, owner: '1' }, r('write', 0, 0), false);
        await rejectsWith(
          svc.setlk(f.ino, { sessionId: s1, owner: '1' }, r('write', 5, 5), false),
          'ENOTCONN',
        );
      }));
  });
}
