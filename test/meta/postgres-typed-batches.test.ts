import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { formatVolume } from '../../src/meta/index.js';
import { encodeBatch, type BatchOp } from '../../src/meta/engines/postgres/apply.js';
import { GroupCommitter } from '../../src/meta/engines/postgres/group-commit.js';
import { SQL, executeStatement } from '../../src/meta/engines/postgres/sql.js';
import type { TxConnection } from '../../src/meta/engines/postgres/tx.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

/**
 * Typed batches (src/meta/engines/postgres/apply.ts, strata_apply3 of migration 9 in front of
 * strata_apply2 of migration 8): group commit sends op codes and values instead of SQL text. Every op must write exactly what the prepared
 * statement of the same name writes, history rows included, and a failing member must undo only
 * its own writes, as with strata_try.
 */

const DIR = 0o040755;
const FILE = 0o100644;

/** An inode row's values in the inode statements' parameter order (tx-reads.ts inodeValues). */
const inode = (
  ino: number,
  mode: number,
  over: { nlink?: number; size?: number; t?: number; target?: string | null; alloc?: number } = {},
) => {
  const t = over.t ?? 1_000;
  return [
    ino,
    mode,
    0,
    0,
    over.nlink ?? 1,
    over.size ?? 0,
    0,
    t,
    5,
    t,
    6,
    t,
    7,
    0,
    mode === DIR ? 1 : 0,
    over.target ?? null,
    over.alloc ?? 0,
  ];
};
const op = (statement: BatchOp['statement'], ...values: unknown[]): BatchOp => ({ statement, values });
/** A new entry in the root directory (inode 99), as a create's batch inserts it. */
const entry = (name: string, cursor: number): BatchOp => op(SQL.insertDentry, 1, name, 99, 8, cursor, 5_000);
/** 'ok', or the SQLSTATE and constraint a commit failed with. */
const outcomeOf = (work: Promise<void>): Promise<string> =>
  work.then(
    () => 'ok',
    (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint ?? '-'}`,
  );

/** Three transactions that use every statement strata_apply knows, each writing over the one before. */
function members(): BatchOp[][] {
  const v1 = 1_000;
  const v2 = 2_000;
  const v3 = 3_000;
  const dir = inode(10, DIR, { nlink: 2 });
  const dir2 = inode(10, DIR, { nlink: 3, t: 1_500 });
  const file = inode(11, FILE, { size: 5, alloc: 3 });
  const file2 = inode(11, FILE, { size: 9, t: 1_800, alloc: 7 });
  const link = inode(12, 0o120777, { target: "it's a \\ target" });
  return [
    [
      op(SQL.insertInode, ...dir, v1),
      op(SQL.insertDentry, 1, 'a', 10, 4, 101, v1),
      op(SQL.putInode, ...file, v1, v1),
      op(SQL.putDentry, 1, 'b "q"', 11, 8, 102, v1, v1),
      op(SQL.insertInode, ...link, v1),
      op(SQL.putXattr, 10, 'user.x', Buffer.from('one'), v1, v1),
      op(SQL.putChunk, 11, 0, Buffer.from([1, 2, 3]), v1, v1),
      op(SQL.addShardedCounter, 'inodes', 3, 2),
      op(SQL.putCallOutcome, 'client-1', 1, Buffer.from('reply'), v1),
      op(SQL.recordDeletedSlice, 77, 4096, v1),
    ],
    [
      op(SQL.expectInode, ...dir),
      op(SQL.updateInode, ...dir2, v2, v2),
      op(SQL.expectDentry, 1, 'a', 10, 4, 101),
      op(SQL.expectNoDentry, 1, 'zz'),
      op(SQL.expectXattr, 10, 'user.x', Buffer.from('one')),
      op(SQL.expectNoXattr, 10, 'user.y'),
      op(SQL.updateCheckedInode, ...file, ...file2.slice(1), v2, v2),
      op(SQL.putDentry, 1, 'b "q"', 12, 10, 103, v2, v2),
      op(SQL.putXattr, 10, 'user.x', Buffer.from('two'), v2, v2),
      op(SQL.putChunk, 11, 0, Buffer.from([4, 5]), v2, v2),
      op(SQL.putInode, ...inode(12, 0o120777, { nlink: 2, target: null }), v2, v2),
      op(SQL.addShardedCounter, 'inodes', 3, -1),
      op(SQL.putCallOutcome, 'client-1', 1, Buffer.from('again'), v2),
    ],
    [
      op(SQL.deleteDentry, 1, 'b "q"', v3, v3),
      op(SQL.deleteXattr, 10, 'user.x', v3, 0), // history off: no copy
      op(SQL.putXattr, 11, 'user.z', Buffer.from('z'), v3, v3),
      op(SQL.deleteChunk, 11, 0, v3, 0), // history off: no copy
      op(SQL.putChunk, 12, 1, Buffer.from([9]), v3, v3),
      op(SQL.deleteInode, 11, v3, v3),
      op(SQL.deleteInode, 12, v3, v3),
      op(SQL.addShardedCounter, 'bytes', 0, 42),
    ],
  ];
}

/** Every row the ops can write, without the serial columns; history by key (the set-based path numbers its rows in another order). */
async function dump(pool: pg.Pool): Promise<Record<string, unknown[]>> {
  const queries: Record<string, string> = {
    // Not the root directory: formatVolume wrote it, at a different instant in each database.
    inode: 'SELECT * FROM inode WHERE ino >= 10 ORDER BY ino',
    inode_hist: 'SELECT * FROM inode_hist WHERE ino >= 10 ORDER BY ino, from_us, to_us',
    dentry: 'SELECT * FROM dentry ORDER BY parent, name',
    dentry_hist: 'SELECT * FROM dentry_hist ORDER BY parent, name, from_us, to_us',
    xattr: 'SELECT * FROM xattr ORDER BY ino, name',
    xattr_hist: 'SELECT * FROM xattr_hist ORDER BY ino, name, from_us, to_us',
    chunk: 'SELECT * FROM chunk ORDER BY ino, idx',
    chunk_hist: 'SELECT * FROM chunk_hist ORDER BY ino, idx, from_us, to_us',
    // A counter's value, not its shards: a group adds to its connection's shard (apply.ts).
    counter_shard:
      "SELECT name, sum(value)::text AS value FROM counter_shard WHERE name IN ('inodes', 'bytes') GROUP BY name ORDER BY name",
    call_outcome: 'SELECT client_id, seq, reply, at_us FROM call_outcome ORDER BY client_id, seq',
    deleted_slice: 'SELECT * FROM deleted_slice ORDER BY id',
  };
  const tables: Record<string, unknown[]> = {};
  for (const [table, query] of Object.entries(queries)) {
    const rows = (await pool.query<Record<string, unknown>>(query)).rows;
    // History rows' seq only numbers them: compare everything else.
    if (table.endsWith('_hist')) for (const row of rows) delete row.seq;
    tables[table] = rows;
  }
  return tables;
}

describe('PostgreSQL group commit with typed batches', { skip: PG_SKIP_REASON }, () => {
  const dbs: TestDatabase[] = [];
  const pools: pg.Pool[] = [];

  async function fresh(inFlight = 1, stallMs = 0): Promise<{ pool: pg.Pool; committer: GroupCommitter }> {
    const db = await createTestDatabase();
    dbs.push(db);
    await formatVolume(db.url, { name: 'typed' }); // applies the migrations
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => undefined);
    pools.push(pool);
    // The statements PREPAREd on each pooled connection (the text path prepares what is new).
    const prepared = new Map<pg.PoolClient, Set<string>>();
    const committer = new GroupCommitter(
      async (): Promise<TxConnection> => {
        const client = await pool.connect();
        if (!prepared.has(client)) prepared.set(client, new Set());
        return { client, prepared: prepared.get(client)!, begin: 'BEGIN', endsOpenRead: false };
      },
      (conn, broken) => conn.client.release(broken),
      inFlight,
      undefined,
      async () => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        return client;
      },
      stallMs,
    );
    return { pool, committer };
  }

  after(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await Promise.all(dbs.map((db) => db.drop()));
  });

  test('every op writes what its prepared statement writes, history rows included', async () => {
    const text = await fresh();
    const typed = await fresh();
    try {
      for (const batch of members()) {
        const encoded = encodeBatch(batch);
        assert.ok(encoded, 'strata_apply knows every statement of the batch');
        await typed.committer.commitTyped(encoded);
        await text.committer.commit(
          batch.map((o) => executeStatement(o.statement, o.values)),
          [...new Set(batch.map((o) => o.statement))],
        );
      }
      const expected = await dump(text.pool);
      assert.ok(expected.inode_hist.length >= 4 && expected.dentry_hist.length >= 2, 'history was written');
      const actual = await dump(typed.pool);
      for (const table of Object.keys(expected)) assert.deepEqual(actual[table], expected[table], table);
    } finally {
      await text.committer.close();
      await typed.committer.close();
    }
  });

  test('a failing member undoes only its own writes and reports its SQLSTATE; its group commits', async () => {
    const { pool, committer } = await fresh();
    const names = async () =>
      (await pool.query<{ name: string }>('SELECT name FROM dentry WHERE parent = 1 ORDER BY name')).rows.map(
        (r) => r.name,
      );
    const commit = (...batch: BatchOp[]) => outcomeOf(committer.commitTyped(encodeBatch(batch)!));
    try {
      const outcomes = await Promise.all([
        commit(entry('alone', 1)), // sent at once, alone
        commit(entry('a1', 2), entry('a2', 3)),
        // a stale cached inode: its entry must vanish with it
        commit(entry('b1', 4), op(SQL.expectInode, ...inode(12345, FILE))),
        // a name another transaction inserted meanwhile
        commit(entry('c1', 5), entry('alone', 6)),
        commit(entry("d1'\\x", 7)),
      ]);
      assert.deepEqual(outcomes, ['ok', 'ok', 'SR001 -', '23505 dentry_pkey', 'ok']);
      assert.deepEqual(await names(), ['a1', 'a2', 'alone', "d1'\\x"]);
      assert.equal(committer.groups, 2);
      assert.equal(committer.groupedTransactions, 5);
    } finally {
      await committer.close();
    }
  });

  /**
   * Independent members (no row touched twice in the group), as creates, renames and attribute
   * changes in different directories look: every op strata_apply3's set-based path knows.
   */
  function independentMembers(round: number): BatchOp[][] {
    const v = 10_000 * (round + 1);
    const before = v - 10_000;
    const members: BatchOp[][] = [];
    for (let lane = 0; lane < 4; lane++) {
      const dir = 100 + lane;
      const dirNow = inode(dir, DIR, { nlink: 2, t: round === 0 ? 1_000 : before });
      const dirNext = inode(dir, DIR, { nlink: 2, t: v });
      const file = 1_000 + 10 * lane + round;
      members.push([
        // create: the directory checked and changed, the name checked absent, entry and inode new
        op(SQL.updateCheckedInode, ...dirNow, ...dirNext.slice(1), v, v),
        op(SQL.expectNoXattr, dir, 'system.posix_acl_default'),
        op(SQL.insertDentry, dir, `f${round}`, file, 8, 10 * lane + round + 1, v),
        op(SQL.addShardedCounter, 'inodes', lane % 2, 1),
        op(SQL.insertInode, ...inode(file, FILE, { t: v }), v),
        op(SQL.putCallOutcome, `client-${lane}`, round, Buffer.from(`reply ${lane} ${round}`), v),
      ]);
      if (round > 0) {
        // rename of the file made in the round before, over a name that exists (put) or not
        const old = 1_000 + 10 * lane + round - 1 + 500;
        members.push([
          op(SQL.expectDentry, 200 + lane, `f${round - 1}`, old, 8, 10 * lane + round),
          op(SQL.expectInode, ...inode(old, FILE, { t: before })),
          op(SQL.deleteDentry, 200 + lane, `f${round - 1}`, v, v),
          op(
            lane % 2 ? SQL.putDentry : SQL.insertDentry,
            200 + lane,
            lane % 2 ? `r${round}` : `n${round}`,
            old,
            8,
            500 + lane,
            v,
            ...(lane % 2 ? [v] : []),
          ),
          op(SQL.expectNoDentry, 200 + lane, `gone${round}`),
          op(SQL.expectXattr, 300 + 10 * (round - 1) + lane, 'user.k', Buffer.from(`value ${round - 1}`)),
        ]);
      }
      members.push([
        // the setup of what the next round's renames find (its own rows, in other directories)
        op(SQL.insertDentry, 200 + lane, `f${round}`, file + 500, 8, 10 * lane + round + 1, v),
        op(SQL.putDentry, 200 + lane, `r${round + 1}`, 7, 8, 1, v, v),
        op(SQL.insertInode, ...inode(file + 500, FILE, { t: v }), v),
        op(SQL.putXattr, 300 + 10 * round + lane, 'user.k', Buffer.from(`value ${round}`), v, v),
      ]);
    }
    return members;
  }

  test('a group of independent members takes the set-based path and writes what member by member writes', async () => {
    const text = await fresh();
    const typed = await fresh();
    try {
      for (const tables of [text, typed])
        for (let lane = 0; lane < 4; lane++)
          await tables.pool.query(SQL.insertInode.text, [...inode(100 + lane, DIR, { nlink: 2 }), 1_000]);
      for (let round = 0; round < 3; round++) {
        const batches = independentMembers(round);
        // Each round's members in one group: the first one alone (nothing in flight), the rest together.
        await Promise.all(batches.map((batch) => typed.committer.commitTyped(encodeBatch(batch)!)));
        for (const [index, batch] of batches.entries())
          await text.committer
            .commit(
              batch.map((o) => executeStatement(o.statement, o.values)),
              [...new Set(batch.map((o) => o.statement))],
            )
            .catch((error: Error) => assert.fail(`round ${round}, member ${index}: ${error.message}`));
      }
      assert.ok(
        typed.committer.setGroups >= 3,
        `${typed.committer.setGroups} groups offered the set-based path`,
      );
      assert.equal(typed.committer.setFallbacks, 0);
      const expected = await dump(text.pool);
      assert.ok(expected.inode_hist.length >= 8 && expected.dentry_hist.length >= 4, 'history was written');
      const actual = await dump(typed.pool);
      for (const table of Object.keys(expected)) assert.deepEqual(actual[table], expected[table], table);
      const extra = await typed.pool.query('SELECT * FROM inode WHERE ino >= 100 AND ino < 104 ORDER BY ino');
      const extraText = await text.pool.query(
        'SELECT * FROM inode WHERE ino >= 100 AND ino < 104 ORDER BY ino',
      );
      assert.deepEqual(extra.rows, extraText.rows, 'the directories changed alike');
    } finally {
      await text.committer.close();
      await typed.committer.close();
    }
  });

  test('when one member of a set-based group fails, the group runs member by member and only it fails', async () => {
    const { pool, committer } = await fresh();
    const commit = (...batch: BatchOp[]) => outcomeOf(committer.commitTyped(encodeBatch(batch)!));
    try {
      await pool.query(SQL.insertDentry.text, [1, 'taken', 5, 8, 1, 1_000]);
      const outcomes = await Promise.all([
        commit(entry('first', 2)), // sent at once, alone
        commit(entry('a1', 3), entry('a2', 4)),
        commit(entry('b1', 5), op(SQL.expectInode, ...inode(12345, FILE))), // a stale cached inode
        commit(entry('c1', 6)),
        commit(entry('taken', 7)), // a name inserted meanwhile
        commit(entry('d1', 8), op(SQL.addShardedCounter, 'inodes', 1, 1)),
      ]);
      assert.deepEqual(outcomes, ['ok', 'ok', 'SR001 -', 'ok', '23505 dentry_pkey', 'ok']);
      const names = await pool.query<{ name: string }>(
        'SELECT name FROM dentry WHERE parent = 1 ORDER BY name',
      );
      assert.deepEqual(
        names.rows.map((r) => r.name),
        ['a1', 'a2', 'c1', 'd1', 'first', 'taken'],
      );
      assert.equal(committer.setGroups, 1, 'the second group was offered the set-based path');
      assert.equal(committer.setFallbacks, 1);
    } finally {
      await committer.close();
    }
  });

  test('a group that touches one row twice runs member by member', async () => {
    const { committer } = await fresh();
    try {
      await Promise.all([
        committer.commitTyped(encodeBatch([entry('x', 1)])!),
        committer.commitTyped(encodeBatch([entry('y', 2), op(SQL.addShardedCounter, 'inodes', 1, 1)])!),
        committer
          .commitTyped(
            encodeBatch([op(SQL.expectNoDentry, 1, 'y'), op(SQL.addShardedCounter, 'inodes', 1, 1)])!,
          )
          .catch(() => undefined),
      ]);
      assert.equal(committer.setGroups, 0);
    } finally {
      await committer.close();
    }
  });

  test('a group held up by a row lock lets the next group leave once it has stalled', async () => {
    const { pool, committer } = await fresh(2, 30);
    const locker = await pool.connect();
    try {
      await pool.query(SQL.insertDentry.text, [1, 'locked', 5, 8, 1, 1_000]);
      await locker.query('BEGIN');
      await locker.query("SELECT 1 FROM dentry WHERE parent = 1 AND name = 'locked' FOR UPDATE");
      let blockedDone = false;
      const blocked = committer
        .commitTyped(encodeBatch([op(SQL.expectDentry, 1, 'locked', 5, 8, 1), entry('after-lock', 2)])!)
        .then(() => (blockedDone = true));
      const startMs = performance.now();
      const stuck = new Promise<never>((_, reject) => {
        const timer = setTimeout(() => reject(new Error('the second group never left')), 10_000);
        timer.unref();
      });
      await Promise.race([committer.commitTyped(encodeBatch([entry('free', 3)])!), stuck]);
      const waitedMs = performance.now() - startMs;
      assert.equal(blockedDone, false, 'the first group still waits for the row lock');
      assert.ok(waitedMs >= 25, `the second group left after ${waitedMs.toFixed(1)} ms, not at once`);
      await locker.query('COMMIT');
      await blocked;
      const names = await pool.query<{ name: string }>(
        'SELECT name FROM dentry WHERE parent = 1 ORDER BY name',
      );
      assert.deepEqual(
        names.rows.map((r) => r.name),
        ['after-lock', 'free', 'locked'],
      );
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await committer.close();
    }
  });

  test('a typed-group connection that PostgreSQL ended is replaced, not reused', async () => {
    const { pool, committer } = await fresh();
    try {
      await committer.commitTyped(encodeBatch([entry('before', 1)])!);
      // The committer's own connection, idle now: the one that ran strata_apply3.
      const { rows } = await pool.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%strata_apply3(%' AND pid <> pg_backend_pid()",
      );
      assert.equal(rows.length, 1);
      await pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      for (let n = 0; n < 100; n++) {
        const left = await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0].pid]);
        if (left.rows.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // the client sees its socket close
      await committer.commitTyped(encodeBatch([entry('after', 2)])!);
      const names = await pool.query<{ name: string }>(
        'SELECT name FROM dentry WHERE parent = 1 ORDER BY name',
      );
      assert.deepEqual(
        names.rows.map((r) => r.name),
        ['after', 'before'],
      );
    } finally {
      await committer.close();
    }
  });

  test('a statement strata_apply does not know leaves the batch to SQL text', () => {
    assert.equal(encodeBatch([op(SQL.putSetting, 'k', 'v')]), undefined);
    assert.equal(encodeBatch([op(SQL.insertDentry, 1, 'x', 2, 8, 3)]), undefined, 'a value missing');
    assert.equal(encodeBatch([op(SQL.deleteInode, 1, 2.5, 3)]), undefined, 'not an integer');
  });
});
