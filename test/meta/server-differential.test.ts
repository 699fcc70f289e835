import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import {
  formatVolume,
  openMetaService,
  type Caller,
  type Clock,
  type MetaApi,
} from '../../src/meta/index.js';
import { startMetaServer } from '../../src/meta/server/index.js';
import { connectMeta } from '../../src/meta/client/index.js';
import { seededRandom } from '../rpc/helpers.js';

const OPS = Number(process.env.STRATA_DIFF_OPS ?? 400);
const S_IFREG = 0o100000;
const CALLERS: Caller[] = [
  { uid: 0, gid: 0, pid: 1 },
  { uid: 1000, gid: 1000, pid: 2 },
  { uid: 1001, gid: 1000, groups: [1000], pid: 3 },
];
const NAMES = ['a', 'b', 'c', 'dir', 'x'.repeat(256)];

/** Both volumes read the same hand-moved clock, so even timestamps must agree. */
class StepClock implements Clock {
  us = 1_800_000_000_000_000;
  nowUs(): number {
    return this.us;
  }
}

type Outcome = { ok: unknown } | { errno: number; message: string };

async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: await promise };
  } catch (error) {
    if (!isFsError(error)) throw error;
    return { errno: error.errno, message: error.message };
  }
}

test(`${OPS} random namespace operations give the same results over RPC as in process`, async () => {
  const seed = Number(process.env.STRATA_TEST_SEED ?? Date.now() % 1_000_000_007);
  console.log(`differential seed ${seed}`);
  const random = seededRandom(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const dir = mkdtempSync(join(tmpdir(), 'strata-rpc-diff-'));
  const clock = new StepClock();
  const urls = [`sqlite:${join(dir, 'local.db')}`, `sqlite:${join(dir, 'remote.db')}`];
  for (const url of urls) await formatVolume(url, { name: 'diff' }, { clock, rootMode: 0o777 });
  const local = await openMetaService({ engineUrl: urls[0], clock, background: false });
  const served = await openMetaService({ engineUrl: urls[1], clock, background: false });
  const secret = await served.volumeSecret();
  const server = await startMetaServer({ service: served, listen: join(dir, 'meta.sock'), secret });
  const remote = await connectMeta({ address: server.address, secret });
  try {
    const inos: Ino[] = [ROOT_INO];
    const dirs: Ino[] = [ROOT_INO];
    const operations: ((meta: MetaApi) => Promise<unknown>)[] = [];
    for (let i = 0; i < OPS; i++) {
      const caller = pick(CALLERS);
      const name = pick(NAMES);
      const parent = pick(dirs);
      const ino = pick(inos);
      const other = pick(dirs);
      const otherName = pick(NAMES);
      const mode = pick([0o644, 0o755, 0o600, 0o1777, 0o4755]);
      const choice = Math.floor(random() * 14);
      // Every random choice is made once, before the operation runs on both sides.
      const renameFlags = pick([0, 0, 1, 2]);
      const changes = pick([
        { mode },
        { sizeBytes: 100 },
        { uid: 1000, gid: 1000 },
        { mtime: 'now' as const },
      ]);
      const xattrFlags = pick([0, 1, 2]);
      const withAttrs = random() < 0.5;
      const mask = pick([0, 1, 2, 4, 7]);
      operations.push((meta) => {
        switch (choice) {
          case 0:
            return meta.mkdir(caller, parent, name, mode, 0o022);
          case 1:
            return meta.mknod(caller, parent, name, S_IFREG | mode, 0, 0o022);
          case 2:
            return meta.symlink(caller, parent, name, `target-${otherName}`);
          case 3:
            return meta.link(caller, ino, other, otherName);
          case 4:
            return meta.unlink(caller, parent, name);
          case 5:
            return meta.rmdir(caller, parent, name);
          case 6:
            return meta.rename(caller, parent, name, other, otherName, renameFlags);
          case 7:
            return meta.setattr(caller, ino, changes);
          case 8:
            return meta.setxattr(caller, ino, `user.${otherName.slice(0, 5)}`, Buffer.from(name), xattrFlags);
          case 9:
            return meta.getxattr(ino, `user.${otherName.slice(0, 5)}`);
          case 10:
            return meta.readdir(caller, parent, 0, 100, withAttrs);
          case 11:
            return meta.access(caller, ino, mask);
          case 12:
            return meta.readlink(ino);
          default:
            return meta.lookup(caller, parent, name);
        }
      });
      // Remember new inodes and directories (from the in-process run) for later operations.
      const run = operations[i];
      const [mine, theirs] = [await outcome(run(local)), await outcome(run(remote))];
      assert.deepEqual(theirs, mine, `operation ${i} (kind ${choice}) differs over RPC`);
      const made = (mine as { ok?: { ino?: Ino; mode?: number } }).ok;
      if (made && typeof made === 'object' && typeof made.ino === 'number' && choice <= 2) {
        inos.push(made.ino);
        if (choice === 0) dirs.push(made.ino);
      }
      clock.us += 1_000;
    }
    const stats = await Promise.all([local.statfs(), remote.statfs()]);
    assert.deepEqual(stats[1], stats[0]);
  } finally {
    await remote.close();
    await server.close();
    await served.close();
    await local.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
