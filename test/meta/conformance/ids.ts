import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ROOT, file, rejectsWith, withVolume, type EngineFixture } from './fixture.js';
import { formatVolume } from '../../../src/meta/index.js';

export function idTests(fx: EngineFixture): void {
  describe(`${fx.name}: ids and volume`, () => {
    it('inode and slice ids are never handed out twice, also across a restart', () =>
      withVolume(fx, async (v) => {
        const inos = new Set<number>();
        for (let i = 0; i < 20; i++) inos.add((await file(v.svc, ROOT, `a${i}`)).ino);
        const slice1 = await v.svc.allocateSliceIds(100);
        await v.reopen();
        for (let i = 0; i < 20; i++) {
          const ino = (await file(v.svc, ROOT, `b${i}`)).ino;
          assert.ok(!inos.has(ino), `inode ${ino} handed out twice`);
          assert.ok(ino > Math.max(...inos));
          inos.add(ino);
        }
        assert.ok((await v.svc.allocateSliceIds(1)) >= slice1 + 100);
        // concurrent creates never share a number
        const made = await Promise.all(Array.from({ length: 50 }, (_, i) => file(v.svc, ROOT, `c${i}`)));
        for (const m of made) {
          assert.ok(!inos.has(m.ino));
          inos.add(m.ino);
        }
      }));

    it('formatting an existing volume is refused unless forced; settings round-trip', () =>
      withVolume(
        fx,
        async (v) => {
          const vol = await v.svc.volume();
          assert.equal(vol.name, 'conformance');
          assert.equal(vol.maxLinks, 7);
          assert.equal(vol.historyRetentionMs, 3_600_000);
          assert.match(await v.svc.volumeSecret(), /^[0-9a-f]{64}$/);
          await v.svc.close();
          await rejectsWith(formatVolume(v.url, { name: 'again' }), 'EEXIST');
          await formatVolume(v.url, { name: 'again' }, { force: true });
          const svc = await v.reopen();
          assert.equal((await svc.volume()).name, 'again');
          await rejectsWith(svc.lookup({ uid: 0, gid: 0, pid: 1 }, ROOT, 'x'), 'ENOENT');
        },
        { maxLinks: 7, historyRetentionMs: 3_600_000 },
      ));
  });
}
