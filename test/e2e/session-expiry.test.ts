import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, formatVolume, serveMeta, StrataProcess, tempDir, startMount } from './harness.js';

/**
 * A mount that goes silent longer than the metadata server's session timeout (here: its
 * process stopped with SIGSTOP, as a frozen VM or a partition would) loses its session: the
 * server releases its locks, another mount takes them. When it comes back it opens a new
 * session by itself; the descriptor that held the lock fails with EIO instead of writing on
 * as if it still held it, and everything else on the mount works. Real processes: `strata meta
 * serve --session-timeout 2s` and two `strata mount`s with a fast heartbeat.
 */
const hasPython = spawnSync('python3', ['-c', 'import fcntl']).status === 0;
const skip = hasPython ? undefined : 'python3 is not installed';

const root = tempDir('session-expiry');
const servers: StrataProcess[] = [];
const mountProcs: StrataProcess[] = [];
const mounts: string[] = [];
const children: ChildProcess[] = [];
let mountA = '';
let mountB = '';
let procA: StrataProcess | undefined;

// Takes the lock, writes, then on each line of stdin tries one more step and reports it.
const HOLDER = `
import errno, fcntl, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, b"A1")
print("locked", flush=True)
sys.stdin.readline()
try:
    os.pwrite(fd, b"A2", 0)
    print("write ok", flush=True)
except OSError as e:
    print("write " + errno.errorcode[e.errno], flush=True)
fd2 = os.open(path, os.O_RDWR)
fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("reopened " + os.pread(fd2, 100, 0).decode(), flush=True)
os.close(fd2)
os.close(fd)
`;

const TAKER = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, b"B1", 0)
os.close(fd)
print("taken", flush=True)
`;

async function mount(address: string, mountpoint: string, secretFile: string): Promise<StrataProcess> {
  mounts.push(mountpoint);
  return startMount(
    `${address}/vol`,
    mountpoint,
    ['--secret-file', secretFile, '--heartbeat', '200ms'],
    mountProcs,
  );
}

async function until(what: string, check: () => boolean, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not seen within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

before(async () => {
  const engine = `sqlite:${join(root, 'meta.db')}`;
  const secretFile = join(root, 'secret');
  formatVolume(engine, join(root, 'objects'), 'vol', secretFile);
  const served = await serveMeta(engine, ['--session-timeout', '2s']);
  servers.push(served.proc);
  mountA = join(root, 'a');
  mountB = join(root, 'b');
  procA = await mount(served.address, mountA, secretFile);
  await mount(served.address, mountB, secretFile);
});

after(async () => {
  // A stopped mount process would never see SIGTERM: continue it first.
  procA?.child.kill('SIGCONT');
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await cleanup(mountProcs, mounts, []);
  await cleanup(servers, [], [root]);
});

test(
  'a mount silent past the session timeout loses its locks to another mount, then reports EIO for them',
  { skip },
  async () => {
    const a = procA;
    assert.ok(a);
    const holder = spawn('python3', ['-c', HOLDER, join(mountA, 'shared')], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.push(holder);
    let said = '';
    holder.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    holder.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
    await until('the holder has the lock', () => said.includes('locked'));

    const taker = (): { status: number | null; out: string } => {
      const result = spawnSync('python3', ['-c', TAKER, join(mountB, 'shared')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { status: result.status, out: result.stdout + result.stderr };
    };
    assert.notEqual(taker().status, 0, 'the lock is held by the other mount');

    // Nothing touches mount A while its process is stopped (its callers would wait).
    const linesBefore = a.output.length;
    a.child.kill('SIGSTOP');
    try {
      let taken = taker();
      for (let i = 0; i < 100 && taken.status !== 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        taken = taker();
      }
      assert.equal(taken.status, 0, `mount B takes the lock once A's session ended: ${taken.out}`);
    } finally {
      a.child.kill('SIGCONT');
    }
    await until('mount A opened a new session', () => a.output.slice(linesBefore).includes('opened session'));
    assert.ok(
      a.output.slice(linesBefore).includes('1 descriptor(s) that held them now fails with EIO'),
      a.output,
    );

    holder.stdin.write('go\n');
    await until('the holder finished', () => holder.exitCode !== null || said.includes('reopened'));
    assert.match(said, /write EIO/, `the descriptor that held the lost lock fails: ${said}`);
    assert.match(said, /reopened B1/, `a new descriptor locks and reads B's write: ${said}`);
    assert.equal(readFileSync(join(mountB, 'shared'), 'utf8'), 'B1', 'A wrote nothing after losing the lock');
    assert.ok(!a.output.includes('heartbeat failed'), a.output);
  },
);
