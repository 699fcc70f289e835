import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Errno, ROOT_INO, isFsError } from '../../src/common/index.js';
import { formatVolume, openMetaService, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';

// The metadata side of O_TMPFILE on the real service (SQLite in a temp dir).
const dir = mkdtempSync('/tmp/strata-seek-meta-tmpfile-');
const root = { uid: 0, gid: 0, pid: 1 };
const user = { uid: 1000, gid: 1000, pid: 2 };
let meta: MetaService;

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, { name: 'tmpfile', storageUrl: `file:${join(dir, 'objects')}` });
  meta = await openMetaService({ engineUrl });
});

after(async () => {
  await meta.close();
  rmSync(dir, { recursive: true, force: true });
});

async function newSession(): Promise<string> {
  return (await meta.openSession({ hostname: 'h', mountpoint: '/m', pid: 1, version: 't' })).sessionId;
}

const errno = (code: number) => (err: unknown) => isFsError(err) && err.errno === code;

test('a tmpfile has no name and nlink 0, applies the umask, and is freed at its last release', async () => {
  const session = await newSession();
  const before = (await meta.statfs()).inodesUsed;
  const attr = await meta.tmpfile(root, session, ROOT_INO, 0o666, 0o022);
  assert.equal(attr.nlink, 0);
  assert.equal(attr.mode, 0o100644);
  assert.equal((await meta.statfs()).inodesUsed, before + 1);
  await meta.release(session, attr.ino);
  assert.equal((await meta.statfs()).inodesUsed, before);
  await assert.rejects(meta.getattr(attr.ino), errno(Errno.ENOENT));
  await assert.rejects(meta.linkTmpfile(root, attr.ino, ROOT_INO, 'late'), errno(Errno.ENOENT));
  await meta.closeSession(session);
});

test('linkTmpfile gives the first name; the file then outlives its release', async () => {
  const session = await newSession();
  const attr = await meta.tmpfile(root, session, ROOT_INO, 0o600, 0);
  const named = await meta.linkTmpfile(root, attr.ino, ROOT_INO, 'kept');
  assert.equal(named.nlink, 1);
  await assert.rejects(meta.linkTmpfile(root, attr.ino, ROOT_INO, 'kept'), errno(Errno.EEXIST));
  await meta.release(session, attr.ino);
  assert.equal((await meta.lookup(root, ROOT_INO, 'kept')).ino, attr.ino);
  // Named, it is an ordinary file: a second name is an ordinary link.
  assert.equal((await meta.linkTmpfile(root, attr.ino, ROOT_INO, 'kept2')).nlink, 2);
  await meta.closeSession(session);
});

test('an ended session frees its unnamed files; a caller without write access gets EACCES', async () => {
  const session = await newSession();
  const before = (await meta.statfs()).inodesUsed;
  await meta.tmpfile(root, session, ROOT_INO, 0o600, 0);
  await meta.closeSession(session);
  assert.equal((await meta.statfs()).inodesUsed, before);
  const other = await newSession();
  await assert.rejects(meta.tmpfile(user, other, ROOT_INO, 0o600, 0), errno(Errno.EACCES));
  await meta.closeSession(other);
});
