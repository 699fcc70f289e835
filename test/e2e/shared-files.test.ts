import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, startServedPair, type StrataProcess, tempDir } from './harness.js';

// Files two mounts of one volume share (`strata up --listen` and a `strata mount`, kernel
// caches kept for minutes). Locks order their writes, as on NFS: a process that takes a lock
// sees what another mount wrote under it before releasing it, through a descriptor it keeps
// open (its kernel's page cache and size are not trusted past the lock), and what it writes
// under the lock is committed before the unlock lets the other mount in. And a file open on
// one mount whose last name the other removes stays readable there, as on a local disk.
const root = tempDir('shared-files');
const dataDir = join(root, 'data');
const mntA = join(root, 'a');
const mntB = join(root, 'b');
const procs: StrataProcess[] = [];
const CACHE = ['--attr-timeout', '300s', '--entry-timeout', '300s'];

before(async () => {
  mkdirSync(mntA, { recursive: true });
  mkdirSync(mntB);
  await startServedPair(dataDir, mntA, mntB, CACHE, procs);
});

after(async () => {
  // The client first, then the mount that serves it.
  await cleanup(procs.slice(1), [mntB], []);
  await cleanup(procs.slice(0, 1), [mntA], [root]);
});

/** Runs a python program on both mounts at once, the file's path on that mount as argv[1]. */
async function onBothMounts(program: string, name: string, args: string[]): Promise<void> {
  const runs = [mntA, mntB].map(
    (mnt) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn('python3', ['-c', program, join(mnt, name), ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`python on ${mnt} exited ${code}: ${stderr}`)),
        );
      }),
  );
  await Promise.all(runs);
}

test('a counter incremented under fcntl locks through open descriptors on two mounts loses no increment', async () => {
  // Read, add one, write back in place (same size: the kernel's size says nothing changed), no fsync.
  const counter = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
for _ in range(int(sys.argv[2])):
    fcntl.lockf(fd, fcntl.LOCK_EX)
    raw = os.pread(fd, 32, 0).strip(b'\\0 \\n')
    os.pwrite(fd, b'%-20d\\n' % (int(raw or b'0') + 1), 0)
    fcntl.lockf(fd, fcntl.LOCK_UN)
os.close(fd)
`;
  await onBothMounts(counter, 'counter', ['150']);
  assert.equal(readFileSync(join(mntA, 'counter'), 'utf8').trim(), '300');
  assert.equal(readFileSync(join(mntB, 'counter'), 'utf8').trim(), '300');
});

test('records appended under flock through open O_APPEND descriptors on two mounts are all there, whole', async () => {
  const appender = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(int(sys.argv[2])):
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b'%d %05d\\n' % (os.getpid(), i))
    fcntl.flock(fd, fcntl.LOCK_UN)
os.close(fd)
`;
  await onBothMounts(appender, 'log', ['150']);
  const lines = readFileSync(join(mntA, 'log'), 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  assert.equal(lines.length, 300, 'every record is there');
  for (const line of lines) assert.match(line, /^\d+ \d{5}$/);
  assert.equal(new Set(lines).size, 300, 'no record is there twice');
});

test('a file open on one mount whose last name the other removes keeps its attributes and reads on', async () => {
  // Written on B; A opens it, reads the first MiB, B removes it; A waits past its attribute
  // timeout (and the pushed invalidation), then fstats and reads the rest.
  const payload = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
  writeFileSync(join(mntB, 'shared.bin'), payload);
  const reader = `
import hashlib, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
first = os.read(fd, 1 << 20)
print('opened', flush=True)
sys.stdin.readline()
time.sleep(1.5)
st = os.fstat(fd)
rest = b''
while True:
    chunk = os.read(fd, 1 << 20)
    if not chunk: break
    rest += chunk
print(st.st_nlink, st.st_size, hashlib.sha256(first + rest).hexdigest(), flush=True)
`;
  const child = spawn('python3', ['-c', reader, join(mntA, 'shared.bin')], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    while (!out.includes('opened')) {
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    unlinkSync(join(mntB, 'shared.bin'));
    child.stdin.end('go\n');
    assert.equal(await closed, 0, `the reader failed: ${err}`);
  } finally {
    child.kill('SIGKILL');
  }
  const [nlink, size, digest] = out.split('\n')[1].split(' ');
  assert.equal(nlink, '0');
  assert.equal(Number(size), payload.length);
  assert.equal(digest, createHash('sha256').update(payload).digest('hex'), 'the reader got the whole file');
});
