import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanup, isLongProfile, isMounted, sh, startUp, tempDir, type StrataProcess } from './harness.js';
import {
  AckedInserts,
  PgCluster,
  pgbenchCommitted,
  pgbenchInBackground,
  postgresBinDir,
  verifyRecovered,
} from './databases-pg.js';

// PostgreSQL with its data directory on a `strata up` mount: it must work, and lose nothing
// it acknowledged through a PostgreSQL crash (pg_ctl stop -m immediate) and through a kill -9
// of the mount itself. "Acknowledged" is counted by our own clients (every INSERT that
// returned under synchronous_commit=on) and by pgbench (transactions it reports processed);
// pgbench's balances must still add up, and pg_amcheck must find every page (checksummed
// by initdb -k) and every index sound.
const bin = postgresBinDir();
const skip = bin ? undefined : 'PostgreSQL is not installed (.ci/run installs Debian postgresql)';

const root = tempDir('databases');
const dataDir = join(root, 'data');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;
let cluster: PgCluster | undefined;
/** Every transaction pgbench reported processed, over all runs: its history table holds one row each. */
let pgbenchTotal = 0;

before(async () => {
  if (skip) return;
  up = await startUp(dataDir, mnt);
  cluster = PgCluster.onMount(bin!, root, mnt, 5433);
});

after(async () => {
  await cluster?.shutDown(up !== undefined && up.exitCode === undefined);
  await cleanup([up], [mnt], [root]);
});

/** Our inserters and a pgbench run, both going until the crash `crash` makes them fail. */
async function commitThrough(crash: () => Promise<void>, what: string): Promise<number[]> {
  const c = cluster!;
  const inserts = new AckedInserts(c, 3, Number(c.query('SELECT coalesce(max(id), 0) + 1 FROM acks')));
  const bench = pgbenchInBackground(c, ['-c', '2', '-T', '60', '--no-vacuum']);
  try {
    await inserts.waitFor(400);
  } catch (err) {
    await inserts.stop();
    throw err;
  }
  await crash();
  await inserts.settled();
  const benchOutput = await bench;
  pgbenchTotal += pgbenchCommitted(benchOutput);
  assert.ok(inserts.errors.length > 0, `${what}: the clients saw the crash`);
  return inserts.acked;
}

test('initdb, pgbench and queries on the mount; a clean restart keeps every row', { skip }, () => {
  const c = cluster!;
  c.initdb();
  c.start();
  c.mustRun('pgbench', ['-i', '-s', '1', '-q', 'postgres']);
  const bench = c.mustRun('pgbench', ['-c', '2', '-t', '150', '--no-vacuum', 'postgres']);
  pgbenchTotal += pgbenchCommitted(bench);
  assert.equal(pgbenchCommitted(bench), 300, bench);
  c.query('CREATE TABLE acks(id bigint PRIMARY KEY, pad text)');
  c.query(`INSERT INTO acks SELECT g, 'row ' || g FROM generate_series(1, 5000) g`);
  const before = c.query("SELECT count(*), sum(id), md5(string_agg(pad, ',' ORDER BY id)) FROM acks");
  c.stop('fast');
  c.start();
  assert.equal(c.query("SELECT count(*), sum(id), md5(string_agg(pad, ',' ORDER BY id)) FROM acks"), before);
  assert.equal(c.query('SELECT count(*) FROM pgbench_accounts'), '100000');
  verifyRecovered(c, [], pgbenchTotal, 'after a clean restart');
});

test('pg_ctl stop -m immediate mid-commit: recovery keeps every acknowledged commit', { skip }, async () => {
  const c = cluster!;
  const acked = await commitThrough(async () => c.stop('immediate'), 'immediate stop');
  c.start();
  assert.match(c.log(), /database system was interrupted|not properly shut down/);
  verifyRecovered(c, acked, pgbenchTotal, 'after pg_ctl stop -m immediate');
});

test(
  'kill -9 of the mount while PostgreSQL commits: after a remount, recovery keeps every acknowledged commit',
  { skip },
  async () => {
    const c = cluster!;
    // The long profile kills the mount under the same cluster again and again.
    const crashes = isLongProfile ? 6 : 1;
    for (let crash = 1; crash <= crashes; crash++) {
      const acked = await commitThrough(async () => {
        up!.child.kill('SIGKILL');
        await up!.exited;
        // PostgreSQL meets ENOTCONN on its next file access and PANICs; what is left is reaped.
        await c.reapAfterMountLoss();
      }, 'mount killed');
      up = undefined;
      sh(`umount -l ${mnt}`);
      assert.ok(!isMounted(mnt));
      up = await startUp(dataDir, mnt);
      c.start();
      verifyRecovered(c, acked, pgbenchTotal, `after kill -9 of the mount (${crash} of ${crashes})`);
    }
    // And it keeps working: a further pgbench run commits.
    const bench = c.mustRun('pgbench', ['-c', '2', '-t', '50', '--no-vacuum', 'postgres']);
    pgbenchTotal += pgbenchCommitted(bench);
    c.stop('fast');
  },
);
