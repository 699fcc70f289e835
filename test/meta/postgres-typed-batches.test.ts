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
 * Typed batches (src/meta/engines/postgres/apply.ts, strata_apply2 of migration 8): group commit
 * sends op codes and values instead of SQL text. Every op must write exactly what the prepared
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

/** Every row the ops can write, without the serial columns (their order only). */
async function dump(pool: pg.Pool): Promise<Record<string, unknown[]>> {
  const queries: Record<string, string> = {
    // Not the root directory: formatVolume wrote it, at a different instant in each database.
    inode: 'SELECT * FROM inode WHERE ino >= 10 ORDER BY ino',
    inode_hist: 'SELECT * FROM inode_hist WHERE ino >= 10 ORDER BY seq',
    dentry: 'SELECT * FROM dentry ORDER BY parent, name',
    dentry_hist: 'SELECT * FROM dentry_hist ORDER BY seq',
    xattr: 'SELECT * FROM xattr ORDER BY ino, name',
    xattr_hist: 'SELECT * FROM xattr_hist ORDER BY seq',
    chunk: 'SELECT * FROM chunk ORDER BY ino, idx',
    chunk_hist: 'SELECT * FROM chunk_hist ORDER BY seq',
    // (formatVolume counted the root directory in a random shard of its own)
    counter_shard: "SELECT * FROM counter_shard WHERE name IN ('inodes', 'bytes') ORDER BY name, shard",
    call_outcome: 'SELECT client_id, seq, reply, at_us FROM call_outcome ORDER BY client_id, seq',
    deleted_slice: 'SELECT * FROM deleted_slice ORDER BY id',
  };
  const tables: Record<string, unknown[]> = {};
  for (const [table, query] of Object.entries(queries)) {
    const rows = (await pool.query<Record<string, unknown>>(query)).rows;
    // History rows' seq only orders them (a bigserial): compare everything else.
    if (table.endsWith('_hist')) for (const row of rows) delete row.seq;
    tables[table] = rows;
  }
  return tables;
}

describe('PostgreSQL group commit with typed batches', { skip: PG_SKIP_REASON }, () => {
  const dbs: TestDatabase[] = [];
  const pools: pg.Pool[] = [];

  async function fresh(): Promise<{ pool: pg.Pool; committer: GroupCommitter }> {
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
      1,
      undefined,
      async () => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        return client;
      },
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
    const entry = (name: string, cursor: number) => op(SQL.insertDentry, 1, name, 99, 8, cursor, 5_000);
    const settle = (work: Promise<void>) =>
      work.then(
        () => 'ok',
        (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint ?? '-'}`,
      );
    const commit = (...batch: BatchOp[]) => settle(committer.commitTyped(encodeBatch(batch)!));
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

  test('a typed-group connection that PostgreSQL ended is replaced, not reused', async () => {
    const { pool, committer } = await fresh();
    const entry = (name: string, cursor: number) =>
      encodeBatch([op(SQL.insertDentry, 1, name, 99, 8, cursor, 5_000)])!;
    try {
      await committer.commitTyped(entry('before', 1));
      // The committer's own connection, idle now: the one that ran strata_apply2.
      const { rows } = await pool.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%strata_apply2(%' AND pid <> pg_backend_pid()",
      );
      assert.equal(rows.length, 1);
      await pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      for (let n = 0; n < 100; n++) {
        const left = await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0].pid]);
        if (left.rows.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // the client sees its socket close
      await committer.commitTyped(entry('after', 2));
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
