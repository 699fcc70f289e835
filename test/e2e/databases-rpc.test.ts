import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  cleanup,
  formatVolume,
  freePort,
  sh,
  StrataProcess,
  tempDir,
  waitUntil,
  startMount,
} from './harness.js';
import {
  AckedInserts,
  PgCluster,
  pgbenchCommitted,
  pgbenchInBackground,
  postgresBinDir,
  verifyRecovered,
} from './databases-pg.js';

// PostgreSQL on the separate-process deployment: `strata meta serve` (SQLite engine) and
// `strata mount` over RPC. kill -9 of the metadata server while PostgreSQL commits, and a
// restart of it on the same address: the mount retries, PostgreSQL goes on without an error
// and keeps every commit it acknowledged, before and after. Then kill -9 of the mount itself:
// after a remount, recovery keeps every acknowledged commit.
const bin = postgresBinDir();
const skip = bin ? undefined : 'PostgreSQL is not installed (.ci/run installs Debian postgresql)';

const root = tempDir('databases-rpc');
const mnt = join(root, 'mnt');
const engine = `sqlite:${join(root, 'meta.db')}`;
let address = '';
let server: StrataProcess | undefined;
let mount: StrataProcess | undefined;
let cluster: PgCluster | undefined;
let pgbenchTotal = 0;

async function serve(): Promise<StrataProcess> {
  const proc = new StrataProcess(['meta', 'serve', '--engine', engine, '--listen', address]);
  try {
    await proc.waitFor(() => proc.output.includes('listening'), 'the metadata server to listen');
  } catch (err) {
    proc.kill();
    throw err;
  }
  return proc;
}

function mountVolume(): Promise<StrataProcess> {
  return startMount(`${address}/vol`, mnt, ['--secret-file', `${join(root, 'meta.db')}.secret`]);
}

before(async () => {
  if (skip) return;
  formatVolume(engine, join(root, 'objects'), 'vol');
  address = `127.0.0.1:${await freePort()}`;
  server = await serve();
  mkdirSync(mnt);
  mount = await mountVolume();
  cluster = PgCluster.onMount(bin!, root, mnt, 5434);
  cluster.initdb();
  cluster.start();
  cluster.mustRun('pgbench', ['-i', '-s', '1', '-q', 'postgres']);
  cluster.query('CREATE TABLE acks(id bigint PRIMARY KEY, pad text)');
});

after(async () => {
  await cluster?.shutDown(mount !== undefined && mount.exitCode === undefined);
  await cleanup([mount], [mnt], []);
  await cleanup([server], [], [root]);
});

test(
  'kill -9 of the metadata server while PostgreSQL commits: once a new one is up, every acknowledged commit is there',
  { skip },
  async (t) => {
    const c = cluster!;
    const inserts = new AckedInserts(c, 3, 1);
    const bench = pgbenchInBackground(c, ['-c', '2', '-T', '10', '--no-vacuum']);
    let restartMs = 0;
    try {
      await inserts.waitFor(300);
      server!.kill();
      await server!.exited;
      const killedAt = Date.now();
      server = await serve();
      restartMs = Date.now() - killedAt;
      // Either the mount's retries covered the gap and the clients go on, or a call failed
      // with EIO, PostgreSQL PANICked on it and every client saw its connection end.
      const target = inserts.acked.length + 300;
      await waitUntil(
        () => inserts.acked.length >= target || inserts.errors.length === 3,
        'commits or a crash',
      );
    } finally {
      await inserts.stop();
    }
    const benchOutput = await bench;
    pgbenchTotal += pgbenchCommitted(benchOutput);
    const panicked = inserts.errors.length > 0;
    t.diagnostic(
      `metadata server back ${restartMs} ms after the kill; PostgreSQL ${panicked ? `PANICked (${inserts.errors[0]})` : 'went on'}`,
    );
    if (panicked) await c.recoverAfterPanic();
    // Whatever happened, the commits are in the WAL on the mount: a PostgreSQL crash now must replay every one.
    c.stop('immediate');
    c.start();
    verifyRecovered(c, inserts.acked, pgbenchTotal, 'after the metadata server restart');
  },
);

test(
  'kill -9 of the mount on the RPC deployment: after a remount, recovery keeps every acknowledged commit',
  { skip },
  async () => {
    const c = cluster!;
    const inserts = new AckedInserts(c, 3, Number(c.query('SELECT coalesce(max(id), 0) + 1 FROM acks')));
    const bench = pgbenchInBackground(c, ['-c', '2', '-T', '60', '--no-vacuum']);
    try {
      await inserts.waitFor(300);
    } catch (err) {
      await inserts.stop();
      throw err;
    }
    mount!.kill();
    await mount!.exited;
    await c.reapAfterMountLoss();
    await inserts.settled();
    pgbenchTotal += pgbenchCommitted(await bench);
    assert.ok(inserts.errors.length > 0, 'the clients saw the crash');
    sh(`umount -l ${mnt}`);
    mount = await mountVolume();
    c.start();
    verifyRecovered(c, inserts.acked, pgbenchTotal, 'after kill -9 of the mount over RPC');
    c.stop('fast');
  },
);
