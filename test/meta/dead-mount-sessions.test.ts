import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { formatVolume, openMetaService, type LockRange, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';

// A mount killed with its locks held, remounted at the same place on the same host: the new
// session ends the dead one's at once (its locks go), instead of after the session timeout.
const dir = mkdtempSync('/tmp/strata-dbworkloads-sessions-');
const root = { uid: 0, gid: 0, pid: 1 };
const writeLock: LockRange = { type: 'write', start: 0, end: 9, pid: 7 };
let meta: MetaService;
let ino: Ino;

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'sessions', storageUrl: `file:${join(dir, 'objects')}` });
  // The default 60 s timeout: nothing here may be released by expiry.
  meta = await openMetaService({ engineUrl });
  ino = (await meta.mknod(root, ROOT_INO, 'db', 0o100644, 0, 0o022)).ino;
});

after(async () => {
  await meta.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A pid no process has any more: one of a child that ran and was reaped. */
function deadPid(): number {
  const child = spawnSync('true');
  assert.equal(child.status, 0);
  return child.pid;
}

async function lockedSession(mountpoint: string, pid: number, host = hostname()): Promise<string> {
  const { sessionId } = await meta.openSession({ hostname: host, mountpoint, pid, version: 't' });
  await meta.setlk(ino, { sessionId, owner: '1' }, writeLock, false);
  return sessionId;
}

async function holder(sessionId: string): Promise<LockRange | null> {
  return meta.getlk(ino, { sessionId, owner: 'probe' }, { ...writeLock, pid: 1 });
}

test('a new session at the same mountpoint of this host ends the sessions whose process is gone', async () => {
  const dead = await lockedSession('/mnt/a', deadPid());
  const { sessionId: fresh } = await meta.openSession({
    hostname: hostname(),
    mountpoint: '/mnt/a',
    pid: process.pid,
    version: 't',
  });
  assert.equal(await holder(fresh), null, 'the dead mount no longer holds its lock');
  await assert.rejects(meta.heartbeat(dead), /ENOTCONN|session/i);
  await meta.closeSession(fresh);
});

test('a live process, another mountpoint or another host keeps its session and locks', async () => {
  // A file of its own: the first test's lock must not decide this one.
  ino = (await meta.mknod(root, ROOT_INO, 'db2', 0o100644, 0, 0o022)).ino;
  const cases: [string, number, string][] = [
    ['/mnt/b', process.pid, hostname()],
    ['/mnt/other', deadPid(), hostname()],
    ['/mnt/b', deadPid(), `not-${hostname()}`],
  ];
  for (const [mountpoint, pid, host] of cases) {
    const old = await lockedSession(mountpoint, pid, host);
    const { sessionId } = await meta.openSession({
      hostname: hostname(),
      mountpoint: '/mnt/b',
      pid: process.pid,
      version: 't',
    });
    assert.deepEqual(await holder(sessionId), writeLock, `${mountpoint} pid ${pid} on ${host}: still locked`);
    await meta.heartbeat(old);
    await meta.closeSession(sessionId);
    await meta.closeSession(old);
  }
});
