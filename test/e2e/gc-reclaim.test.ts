// Reclaiming leaked blocks for real: `strata meta serve` on PostgreSQL (a short session timeout),
// `strata mount`s over it, writers that upload blocks and hold their commit, and
// `strata gc --reclaim-leaked` beside them. A live mount's uploaded, uncommitted blocks stay and
// its close commits them whole; the blocks of a mount killed with -9 before its commit go once
// its session expired; a mount that comes back after its session expired and its blocks were
// reclaimed gets EIO at close, never a file with a hole; a session that reports no floor (an
// older mount) stops the pass, named.
// `strata fsck` is clean after each.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { connectMeta } from '../../src/meta/client/index.js';
import {
  StrataProcess,
  adminQuery,
  cleanup,
  createPgDatabase,
  formatVolume,
  serveMeta,
  storedObjects,
  strata,
  tempDir,
  waitUntil,
  startMount,
} from './harness.js';

const PG_SKIP = process.env.STRATA_PG_TEST_URL ? undefined : 'STRATA_PG_TEST_URL is not set';
const hasPython = spawnSync('python3', ['-c', 'import os']).status === 0;
const skip = PG_SKIP ?? (hasPython ? undefined : 'python3 is not installed');

const MiB = 1024 * 1024;
/** 9 MiB: two full 4 MiB blocks upload while the file is open, the rest waits for the close. */
const FILE_BYTES = 9 * MiB;

const root = tempDir('gc-reclaim');
const database = `strata_reclaim_e2e_${process.pid}`;
const objects = join(root, 'objects');
const secretFile = join(root, 'secret');
const procs: StrataProcess[] = [];
const mountpoints: string[] = [];
const children: ChildProcess[] = [];
let engine = '';
let address = '';

// Writes FILE_BYTES of a pattern through one descriptor, says so, and closes on a line of stdin.
const WRITER = `
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
block = bytes((i * 7 + 3) % 251 for i in range(1 << 20))
for _ in range(${FILE_BYTES / MiB}):
    os.write(fd, block)
print("written", flush=True)
sys.stdin.readline()
try:
    os.close(fd)
    print("closed", flush=True)
except OSError as e:
    print("close " + errno.errorcode[e.errno], flush=True)
`;

function expectedSha(): string {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i++) block[i] = (i * 7 + 3) % 251;
  const hash = createHash('sha256');
  for (let i = 0; i < FILE_BYTES / MiB; i++) hash.update(block);
  return hash.digest('hex');
}

function startWriter(path: string): { child: ChildProcess; said: () => string } {
  const child = spawn('python3', ['-c', WRITER, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let said = '';
  child.stdout?.on('data', (chunk: Buffer) => (said += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (said += chunk.toString()));
  return { child, said: () => said };
}

async function mount(name: string): Promise<{ proc: StrataProcess; mnt: string }> {
  const mnt = join(root, name);
  mountpoints.push(mnt);
  const proc = await startMount(
    `${address}/vol`,
    mnt,
    ['--secret-file', secretFile, '--heartbeat', '200ms'],
    procs,
  );
  return { proc, mnt };
}

/**
 * A mount that has reported its slice floor, with a writer on it that wrote its file and left
 * it open, two full blocks of it uploaded and not committed. `before`: block objects before it.
 */
async function mountHoldingUploads(
  name: string,
  file: string,
): Promise<{ proc: StrataProcess; mnt: string; writer: ReturnType<typeof startWriter>; before: number }> {
  const { proc, mnt } = await mount(name);
  await waitUntil(
    async () => (await sessionFloors()).some((s) => s.mountpoint === mnt && s.floor !== null),
    `${name} reports its slice floor with its heartbeat`,
    30_000,
    100,
  );
  const before = blockObjects();
  const writer = startWriter(join(mnt, file));
  await waitUntil(() => writer.said().includes('written'), 'the writer wrote its data', 60_000, 50);
  await waitUntil(() => blockObjects() >= before + 2, 'two full blocks uploaded', 30_000, 100);
  return { proc, mnt, writer, before };
}

async function sessionFloors(): Promise<{ host: string; mountpoint: string; floor: number | null }[]> {
  const client = new pg.Client({ connectionString: engine });
  await client.connect();
  try {
    const result = await client.query<{ info: string; slice_floor: string | null }>(
      'SELECT info, slice_floor FROM session ORDER BY id',
    );
    return result.rows.map((r) => {
      const info = JSON.parse(r.info) as { hostname: string; mountpoint: string };
      return {
        host: info.hostname,
        mountpoint: info.mountpoint,
        floor: r.slice_floor === null ? null : Number(r.slice_floor),
      };
    });
  } finally {
    await client.end();
  }
}

/** Block objects in the store (none before the first upload made chunks/). */
function blockObjects(): number {
  return existsSync(join(objects, 'chunks')) ? storedObjects(objects).objects : 0;
}

function fsckClean(): void {
  const checked = strata(['fsck', '--engine', engine]);
  assert.equal(checked.status, 0, `fsck: ${checked.stdout}${checked.stderr}`);
}

before(async () => {
  if (skip) return;
  engine = await createPgDatabase(database);
  formatVolume(engine, objects, 'vol', secretFile);
  const served = await serveMeta(engine, ['--session-timeout', '2s']);
  procs.push(served.proc);
  address = served.address;
});

after(async () => {
  // A stopped mount process would never see SIGTERM: continue it first.
  for (const proc of procs) proc.child.kill('SIGCONT');
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await cleanup(procs, mountpoints, [root]);
  if (!PG_SKIP) await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

test(
  'a live mount holding uploaded, uncommitted blocks keeps them through a reclaim; its close commits them whole',
  { skip },
  async () => {
    const { mnt, writer } = await mountHoldingUploads('live', 'open-file');
    const uploaded = blockObjects();

    const reclaim = strata(['gc', '--engine', engine, '--reclaim-leaked']);
    assert.equal(reclaim.status, 0, reclaim.stderr);
    assert.match(reclaim.stdout, /deleted 0 object\(s\)/);
    assert.match(reclaim.stdout, /1 slice\(s\) .* at or above the floor: a mount may still commit them/);
    assert.equal(blockObjects(), uploaded, "the open file's blocks stay");

    writer.child.stdin?.write('close\n');
    await waitUntil(() => writer.child.exitCode !== null, 'the writer closed its file', 60_000, 50);
    assert.equal(writer.child.exitCode, 0, writer.said());
    assert.match(writer.said(), /closed/);
    const sha = createHash('sha256')
      .update(readFileSync(join(mnt, 'open-file')))
      .digest('hex');
    assert.equal(sha, expectedSha(), 'the file reads back whole');
    fsckClean();
  },
);

test(
  'the blocks of a mount killed with -9 before its commit are reclaimed once its session expired',
  { skip },
  async () => {
    const { proc, mnt, writer, before } = await mountHoldingUploads('doomed', 'never-closed');
    const leaked = blockObjects() - before;
    proc.kill();
    await proc.exited;
    writer.child.kill('SIGKILL');
    spawnSync('umount', ['-l', mnt]);
    await waitUntil(
      async () => !(await sessionFloors()).some((s) => s.mountpoint === mnt),
      "the server ended the killed mount's session (2 s timeout)",
      30_000,
      200,
    );

    const reclaim = strata(['gc', '--engine', engine, '--reclaim-leaked']);
    assert.equal(reclaim.status, 0, reclaim.stderr);
    assert.match(reclaim.stdout, new RegExp(`deleted ${leaked} object\\(s\\)`), reclaim.stdout);
    assert.equal(blockObjects(), before);
    const scan = strata(['gc', '--engine', engine, '--scan-leaked']);
    assert.equal(scan.status, 0, scan.stderr);
    assert.match(scan.stdout, /0 object\(s\), 0 B of 0 slice\(s\) the metadata knows nothing of/);
    fsckClean();
  },
);

test(
  'a mount back after its session expired and its blocks were reclaimed gets EIO at close, never a hole',
  { skip },
  async () => {
    const { proc, mnt, writer, before } = await mountHoldingUploads('away', 'written-while-away');
    const uploaded = blockObjects() - before;
    // A frozen VM or a partition: the mount says nothing past the server's session timeout.
    proc.child.kill('SIGSTOP');
    try {
      await waitUntil(
        async () => !(await sessionFloors()).some((s) => s.mountpoint === mnt),
        "the server ended the silent mount's session",
        30_000,
        200,
      );
      const reclaim = strata(['gc', '--engine', engine, '--reclaim-leaked']);
      assert.equal(reclaim.status, 0, reclaim.stderr);
      assert.match(reclaim.stdout, new RegExp(`deleted ${uploaded} object\\(s\\)`), reclaim.stdout);
    } finally {
      proc.child.kill('SIGCONT');
    }
    writer.child.stdin?.write('close\n');
    await waitUntil(() => writer.child.exitCode !== null, 'the writer tried to close', 60_000, 50);
    assert.match(writer.said(), /close EIO/, `the close reports the loss: ${writer.said()}`);
    await proc.waitFor(() => /reclaimed as leaked/.test(proc.output), 'the mount to log why');
    assert.match(proc.output, /below the reclaim floor/);
    // Nothing of the lost data was committed: the file is empty, not 9 MiB pointing at nothing.
    assert.equal(readFileSync(join(mnt, 'written-while-away')).length, 0);
    fsckClean();
  },
);

test(
  'a session whose mount reports no floor (an older client) stops the reclaim, named',
  { skip },
  async () => {
    // An older mount speaks the same RPC without the floor argument.
    const client = await connectMeta({ address, secret: readFileSync(secretFile, 'utf8').trim() });
    const { sessionId } = await client.openSession({
      hostname: 'old-client-host',
      mountpoint: '/mnt/old',
      pid: 4321,
      version: '0.8.0',
    });
    const beat = setInterval(() => void client.heartbeat(sessionId).catch(() => undefined), 200);
    try {
      const reclaim = strata(['gc', '--engine', engine, '--reclaim-leaked']);
      assert.equal(reclaim.status, 1, reclaim.stdout);
      assert.match(
        reclaim.stderr,
        /stopped, nothing deleted: session .* of old-client-host:\/mnt\/old \(pid 4321, version 0\.8\.0/,
      );
      assert.match(reclaim.stderr, /reports no slice floor/);
    } finally {
      clearInterval(beat);
      await client.closeSession(sessionId);
      await client.close();
    }
    const after = strata(['gc', '--engine', engine, '--reclaim-leaked']);
    assert.equal(after.status, 0, after.stderr);
    fsckClean();
  },
);
