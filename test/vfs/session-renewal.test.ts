import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { Errno, ROOT_INO, isFsError, type Ino } from '../../src/common/index.js';
import { LockType } from '../../src/fuse/index.js';
import type { MetaService } from '../../src/meta/index.js';
import type { Vfs } from '../../src/vfs/index.js';
import { rootContext as ctx, VfsTestVolume } from './volume-fixture.js';

// A mount whose session the metadata service ended (no heartbeat within the session timeout:
// a partition, a stopped process) opens a new one and goes on working; what the service
// released with the old session (locks) is reported as EIO, never silently assumed held.
// The real service (SQLite) and data path, called as the FUSE layer calls the VFS.
const SESSION_TIMEOUT_MS = 300;
const { O_RDWR, O_CREAT } = constants;
const whole = { start: 0, end: Number.MAX_SAFE_INTEGER, type: LockType.F_WRLCK, pid: 1 };
let meta: MetaService;
let volume: VfsTestVolume;
const logged: string[] = [];

/** A mount whose heartbeat runs every `heartbeatIntervalMs` (long: the session lapses). */
function mount(heartbeatIntervalMs: number): Promise<Vfs> {
  return volume.mount(meta, {
    heartbeatIntervalMs,
    compactSlicesThreshold: 8,
    log: (m) => logged.push(m),
  });
}

/** Waits until the service has ended every session that has not sent a heartbeat lately. */
async function lapse(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, SESSION_TIMEOUT_MS + 50));
  await meta.expireSessions();
}

async function create(vfs: Vfs, name: string): Promise<{ ino: Ino; fh: number }> {
  const reply = await vfs.create(ctx(), ROOT_INO, name, 0o100644, O_RDWR | O_CREAT);
  return { ino: reply.attr.ino, fh: reply.fh };
}

function isErrno(errno: number): (err: unknown) => boolean {
  return (err) => isFsError(err) && err.errno === errno;
}

before(async () => {
  volume = await VfsTestVolume.open('renewal', { sessionTimeoutMs: SESSION_TIMEOUT_MS });
  meta = volume.meta;
});

after(async () => {
  await volume?.close();
});

test('after the service ends the session, locks and removals of open files work under a new one', async () => {
  const vfs = await mount(3_600_000);
  const { ino, fh } = await create(vfs, 'after-lapse');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('kept while open'), 0);
  await vfs.flush(ctx(), ino, fh, 1n);
  const sessionsBefore = (await meta.engine.read((tx) => tx.listSessions())).length;
  await lapse();
  assert.equal((await meta.engine.read((tx) => tx.listSessions())).length, sessionsBefore - 1);

  // Both name the session: they failed with ENOTCONN ("the client must remount") before.
  await vfs.setlk(ctx(), ino, fh, 7n, whole, false, false);
  await vfs.unlink(ctx(), ROOT_INO, 'after-lapse');
  assert.equal((await meta.engine.read((tx) => tx.listSessions())).length, sessionsBefore);
  assert.ok(logged.some((line) => line.includes('opened session') && line.includes('No locks were held')));

  // The unlinked file is registered under the new session: it lives until its last close.
  assert.equal((await vfs.read(ctx(), ino, fh, 0, 100)).toString(), 'kept while open');
  await vfs.setlk(ctx(), ino, fh, 7n, { ...whole, type: LockType.F_UNLCK }, false, false);
  await vfs.release(ctx(), ino, fh, 0, 7n, false);
  await assert.rejects(meta.getattr(ino), isErrno(Errno.ENOENT), 'the last close freed it');
});

test('a file open across the lapse and unlinked under the new session keeps its data until closed', async () => {
  const vfs = await mount(3_600_000);
  const { ino, fh } = await create(vfs, 'registered-then-lapse');
  await vfs.write(ctx(), ino, fh, 0, Buffer.from('registered'), 0);
  await vfs.flush(ctx(), ino, fh, 1n);
  const other = await create(vfs, 'other-name');
  // Registers the open file with the session (as a rename over its name would).
  await vfs.link(ctx(), ino, ROOT_INO, 'second-name');
  await vfs.unlink(ctx(), ROOT_INO, 'registered-then-lapse');
  await lapse();
  await vfs.setlk(ctx(), other.ino, other.fh, 9n, whole, false, false); // renews the session
  await vfs.unlink(ctx(), ROOT_INO, 'second-name'); // nlink 0: only the registration keeps it
  await meta.expireSessions();
  assert.equal((await vfs.read(ctx(), ino, fh, 0, 100)).toString(), 'registered');
  assert.equal((await meta.getattr(ino)).nlink, 0, 'still there, unlinked, while open');
  await vfs.release(ctx(), ino, fh, 0, 1n, false);
  await assert.rejects(meta.getattr(ino), isErrno(Errno.ENOENT), 'the last close freed it');
  await vfs.release(ctx(), other.ino, other.fh, 0, 9n, false);
});

test('locks released with the ended session: another mount takes them, and I/O here fails with EIO', async () => {
  const holder = await mount(3_600_000);
  const rival = await mount(50);
  const { ino, fh } = await create(holder, 'locked-across-lapse');
  await holder.setlk(ctx(), ino, fh, 3n, whole, false, false);
  await holder.write(ctx(), ino, fh, 0, Buffer.from('holder, not committed'), 0);
  const rivalHandle = await rival.open(ctx(), ino, O_RDWR);
  await assert.rejects(
    rival.setlk(ctx(), ino, rivalHandle.fh, 4n, whole, false, false),
    isErrno(Errno.EAGAIN),
    'held by the first mount',
  );
  await lapse();
  await rival.setlk(ctx(), ino, rivalHandle.fh, 4n, whole, false, false);
  await rival.write(ctx(), ino, rivalHandle.fh, 0, Buffer.from('rival'), 0);
  await rival.flush(ctx(), ino, rivalHandle.fh, 4n);

  // The holder notices at its next call that names the session (here: another lock).
  const unrelated = await create(holder, 'unrelated');
  await holder.setlk(ctx(), unrelated.ino, unrelated.fh, 5n, whole, false, false);
  await assert.rejects(holder.write(ctx(), ino, fh, 0, Buffer.from('stale'), 0), isErrno(Errno.EIO));
  await assert.rejects(holder.read(ctx(), ino, fh, 0, 10), isErrno(Errno.EIO));
  await assert.rejects(holder.setlk(ctx(), ino, fh, 3n, whole, false, false), isErrno(Errno.EIO));
  assert.ok(logged.some((line) => line.includes('1 descriptor(s) that held them now fails with EIO')));
  // A new descriptor works and sees the rival's write.
  const reopened = await holder.open(ctx(), ino, O_RDWR);
  assert.equal((await holder.read(ctx(), ino, reopened.fh, 0, 10)).toString(), 'rival');
  await holder.release(ctx(), ino, reopened.fh, 0, 6n, false);
  // close(2) of the descriptor reports the dropped writes; they never overwrite the rival's.
  await assert.rejects(holder.flush(ctx(), ino, fh, 3n), isErrno(Errno.EIO));
  await holder.release(ctx(), ino, fh, 0, 3n, false);
  const check = await rival.open(ctx(), ino, O_RDWR);
  assert.equal((await rival.read(ctx(), ino, check.fh, 0, 100)).toString(), 'rival');
  await rival.release(ctx(), ino, check.fh, 0, 10n, false);
  await holder.release(ctx(), unrelated.ino, unrelated.fh, 0, 5n, false);
  await rival.release(ctx(), ino, rivalHandle.fh, 0, 4n, false);
});

test('a heartbeat that finds the session ended opens a new one by itself', async () => {
  const before = new Set((await meta.engine.read((tx) => tx.listSessions())).map((s) => s.sessionId));
  const vfs = await mount(100);
  const sessions = (await meta.engine.read((tx) => tx.listSessions())).map((s) => s.sessionId);
  const own = sessions.filter((sessionId) => !before.has(sessionId));
  const [ownSession] = own;
  assert.ok(own.length === 1 && ownSession !== undefined);
  // The rival mount of the test before renews too when its own session lapses: end this one only.
  const linesBefore = logged.length;
  await meta.closeSession(ownSession);
  for (
    let i = 0;
    i < 100 && !logged.slice(linesBefore).some((l) => l.includes(`session ${ownSession}`));
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(
    logged.slice(linesBefore).some((l) => l.includes(`session ${ownSession}`)),
    logged.join('\n'),
  );
  assert.ok(!logged.slice(linesBefore).some((l) => l.includes('heartbeat failed')), logged.join('\n'));
  const { ino, fh } = await create(vfs, 'heartbeat-renewed');
  await vfs.setlk(ctx(), ino, fh, 8n, whole, false, false);
  await vfs.release(ctx(), ino, fh, 0, 8n, false);
});
