import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  serveMeta,
  sh,
  startUp,
  strata,
  StrataProcess,
  tempDir,
  startMount,
} from './harness.js';

// O_TMPFILE on a real mount: an unnamed file that linkat names, or that vanishes at close. Once
// on the embedded volume (SQLite), once on a volume whose metadata server runs on PostgreSQL
// (the engines keep unnamed inodes and reclaim them at release each in their own SQL).
const PG_URL = process.env.STRATA_PG_TEST_URL;
const root = tempDir('tmpfile');
const script = join(root, 'tmpfile.py');
const procs: StrataProcess[] = [];
const mounts: string[] = [];
const database = `strata_tmpfile_${process.pid}`;

// Python 3.11's os.link calls link(2), which does not follow /proc/self/fd links: linkat with
// AT_SYMLINK_FOLLOW (or AT_EMPTY_PATH on the descriptor) is what applications use.
const TMPFILE_PY = `
import ctypes, errno, hashlib, json, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = -100, 0x400, 0x1000
def linkat(fd, name, path, flags):
    if libc.linkat(fd, name, AT_FDCWD, path.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
def inodes_used(d):
    s = os.statvfs(d)
    return s.f_files - s.f_ffree
d = sys.argv[1]
out = {}
before = inodes_used(d)
data = os.urandom(3 << 20)
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
os.write(fd, data)
out["nlink_unnamed"] = os.fstat(fd).st_nlink
out["listed_unnamed"] = sorted(os.listdir(d))
linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), os.path.join(d, "via-proc"), AT_SYMLINK_FOLLOW)
out["nlink_named"] = os.fstat(fd).st_nlink
os.pwrite(fd, b"after-link", 0)
os.close(fd)
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)
os.write(fd, b"empty path")
linkat(fd, b"", os.path.join(d, "via-empty-path"), AT_EMPTY_PATH)
os.close(fd)
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
try:
    linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), os.path.join(d, "excl"), AT_SYMLINK_FOLLOW)
    out["excl"] = "linked"
except OSError as e:
    out["excl"] = errno.errorcode[e.errno]
os.close(fd)
fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)
os.write(fd, os.urandom(2 << 20))
os.close(fd)
# RELEASE reaches the file system after close(2) returns: wait for the unnamed files to go.
deadline = time.time() + 10
while inodes_used(d) != before + 2 and time.time() < deadline:
    time.sleep(0.05)
out["inodes_added"] = inodes_used(d) - before
out["listed"] = sorted(os.listdir(d))
out["via_proc_sha"] = hashlib.sha256(b"after-link" + data[10:]).hexdigest()
out["mode"] = oct(os.stat(os.path.join(d, "via-proc")).st_mode)
print(json.dumps(out))
`;

function sha256Of(file: string): string {
  return sh(`sha256sum ${file}`).split(' ')[0];
}

before(() => {
  writeFileSync(script, TMPFILE_PY);
});

after(async () => {
  await cleanup(procs, mounts, [root]);
  if (PG_URL) await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
});

/** A mounted volume the check can restart: `remount` stops the mount and mounts it again. */
interface Volume {
  mnt: string;
  remount(): Promise<void>;
  stop(): Promise<void>;
  fsckEngine: string;
}

async function checkTmpfile(volume: Volume): Promise<void> {
  const { mnt } = volume;
  sh(`umask 022 && mkdir ${mnt}/dir`);
  const out = JSON.parse(sh(`umask 022 && python3 ${script} ${mnt}/dir`)) as Record<string, unknown>;
  assert.equal(out.nlink_unnamed, 0);
  assert.deepEqual(out.listed_unnamed, []);
  assert.equal(out.nlink_named, 1);
  assert.equal(out.excl, 'ENOENT');
  assert.deepEqual(out.listed, ['via-empty-path', 'via-proc']);
  assert.equal(out.inodes_added, 2, 'the two unnamed files that were never linked are freed at close');
  assert.equal(out.mode, '0o100640');
  assert.equal(sha256Of(`${mnt}/dir/via-proc`), out.via_proc_sha);
  assert.equal(sh(`cat ${mnt}/dir/via-empty-path`), 'empty path');

  // After a remount the named files read back from the volume; then fsck finds it clean.
  await volume.remount();
  assert.equal(sha256Of(`${mnt}/dir/via-proc`), out.via_proc_sha);
  assert.equal(sh(`cat ${mnt}/dir/via-empty-path`), 'empty path');
  assert.equal(sh(`ls -A ${mnt}/dir`).trim().split('\n').join(' '), 'via-empty-path via-proc');
  await volume.stop();
  const fsck = strata(['fsck', '--engine', volume.fsckEngine]);
  assert.equal(fsck.status, 0, `fsck found problems:\n${fsck.stdout}\n${fsck.stderr}`);
}

test('O_TMPFILE on the embedded volume (SQLite): unnamed while open, linkat names it, O_EXCL refuses, an unnamed one leaves nothing', async () => {
  const mnt = join(root, 'mnt-sqlite');
  const dataDir = join(root, 'data');
  mounts.push(mnt);
  let up: StrataProcess | undefined = await startUp(dataDir, mnt);
  procs.push(up);
  await checkTmpfile({
    mnt,
    remount: async () => {
      await up?.stop();
      up = await startUp(dataDir, mnt);
      procs.push(up);
    },
    stop: async () => {
      await up?.stop();
    },
    fsckEngine: `sqlite:${join(dataDir, 'meta.db')}`,
  });
});

test(
  'O_TMPFILE on a volume served from PostgreSQL: the same rules, and fsck clean',
  {
    skip: PG_URL ? undefined : 'STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first',
  },
  async () => {
    const engine = await createPgDatabase(database);
    const secretFile = join(root, 'vol.secret');
    formatVolume(engine, join(root, 'objects-pg'), 'vol', secretFile);
    const { address, proc: server } = await serveMeta(engine);
    procs.push(server);
    const mnt = join(root, 'mnt-pg');
    mounts.push(mnt);
    const mountOnce = (): Promise<StrataProcess> =>
      startMount(`${address}/vol`, mnt, ['--secret-file', secretFile], procs);
    let mount = await mountOnce();
    await checkTmpfile({
      mnt,
      remount: async () => {
        await mount.stop();
        mount = await mountOnce();
      },
      stop: async () => {
        await mount.stop();
        await server.stop();
      },
      fsckEngine: engine,
    });
  },
);
