import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { processScope, ROOT_INO, type Ino } from '../../src/common/index.js';
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

async function lockedSession(
  mountpoint: string,
  pid: number,
  scope: string | null = processScope(),
): Promise<string> {
  // null: an older client, which does not say its scope.
  const info = { hostname: hostname(), mountpoint, pid, version: 't', processScope: scope ?? undefined };
  const { sessionId } = await meta.openSession(info);
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
    processScope: processScope(),
  });
  assert.equal(await holder(fresh), null, 'the dead mount no longer holds its lock');
  await assert.rejects(meta.heartbeat(dead), /ENOTCONN|session/i);
  await meta.closeSession(fresh);
});

test('a live process, another mountpoint, another host or pid namespace, or a client that does not say, keeps its session and locks', async () => {
  // A file of its own: the first test's lock must not decide this one.
  ino = (await meta.mknod(root, ROOT_INO, 'db2', 0o100644, 0, 0o022)).ino;
  // Same hostname, other pid namespace: a container with host networking, whose pids this
  // service cannot see (they all look gone).
  const otherNamespace = processScope().replace(/\d+\]$/, '1]');
  const cases: [string, number, string | null][] = [
    ['/mnt/b', process.pid, processScope()],
    ['/mnt/other', deadPid(), processScope()],
    ['/mnt/b', deadPid(), `another-boot/${processScope().split('/')[1]}`],
    ['/mnt/b', deadPid(), otherNamespace],
    ['/mnt/b', deadPid(), null],
  ];
  for (const [mountpoint, pid, scope] of cases) {
    const old = await lockedSession(mountpoint, pid, scope);
    const { sessionId } = await meta.openSession({
      hostname: hostname(),
      mountpoint: '/mnt/b',
      pid: process.pid,
      version: 't',
      processScope: processScope(),
    });
    assert.deepEqual(
      await holder(sessionId),
      writeLock,
      `${mountpoint} pid ${pid} in ${scope}: still locked`,
    );
    await meta.heartbeat(old);
    await meta.closeSession(sessionId);
    await meta.closeSession(old);
  }
});
