import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { ROOT_INO, type Ino } from '../../src/common/index.js';
import { GroupCommitter } from '../../src/meta/engines/postgres/group-commit.js';
import { quoteLiteral } from '../../src/meta/engines/postgres/sql.js';
import type { TxConnection } from '../../src/meta/engines/postgres/tx.js';
import { formatVolume, openMetaService, type Caller, type MetaService } from '../../src/meta/index.js';
import {
  createTestDatabase,
  PG_SKIP_REASON,
  postgresEngineOf,
  type TestDatabase,
} from './postgres-fixture.js';

/**
 * Group commit (src/meta/engines/postgres/group-commit.ts): transactions decided from a server's
 * cache commit several per PostgreSQL transaction, each in its own subtransaction (strata_try,
 * migration 4), so a failing one never undoes or blocks its neighbours.
 */

const root: Caller = { uid: 0, gid: 0, pid: 1 };
const S_IFREG = 0o100000;

test('a batch is quoted exactly as pg.escapeLiteral quotes it', () => {
  const text = fc.string({ unit: fc.constantFrom("'", '\\', 'a', 'é', ';', '\n', '$') });
  fc.assert(fc.property(text, (s) => quoteLiteral(s) === pg.escapeLiteral(s)));
});

describe('PostgreSQL group commit', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  before(async () => {
    db = await createTestDatabase();
    await formatVolume(db.url, { name: 'grouped' }); // applies the migrations (strata_try)
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    await pool.query('CREATE TABLE probe (k text PRIMARY KEY)');
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** A committer on the test pool with one group in flight, so what is queued behind it groups. */
  const committer = (): GroupCommitter =>
    new GroupCommitter(
      async (): Promise<TxConnection> => ({
        client: await pool.connect(),
        prepared: new Set(),
        begin: 'BEGIN',
        endsOpenRead: false,
      }),
      (conn, broken) => conn.client.release(broken),
      1,
    );
  const keys = async (): Promise<string[]> =>
    (await pool.query<{ k: string }>('SELECT k FROM probe ORDER BY k')).rows.map((r) => r.k);

  test('a failing batch undoes only its own writes and reports its SQLSTATE; its group commits', async () => {
    const group = committer();
    const settle = (work: Promise<void>) =>
      work.then(
        () => 'ok',
        (error: { code?: string; constraint?: string }) => `${error.code} ${error.constraint ?? '-'}`,
      );
    const outcomes = await Promise.all([
      settle(group.commit(["INSERT INTO probe VALUES ('alone')"], [])), // sent at once, alone
      settle(group.commit(["INSERT INTO probe VALUES ('a1')", "INSERT INTO probe VALUES ('a2')"], [])),
      // a stale cached row: its first insert must vanish with it
      settle(
        group.commit(["INSERT INTO probe VALUES ('b1')", "SELECT strata_expect(false, 'inode', '7')"], []),
      ),
      // a name another transaction inserted meanwhile
      settle(group.commit(["INSERT INTO probe VALUES ('c1')", "INSERT INTO probe VALUES ('alone')"], [])),
      // quotes and backslashes survive the batch's own quoting (standard_conforming_strings)
      settle(
        group.commit(["INSERT INTO probe VALUES ('d1''\\x')", "INSERT INTO probe VALUES (E'd2\\\\')"], []),
      ),
    ]);
    assert.deepEqual(outcomes, ['ok', 'ok', 'SR001 -', '23505 probe_pkey', 'ok']);
    assert.deepEqual(await keys(), ['a1', 'a2', 'alone', "d1'\\x", 'd2\\']);
    // The first went alone, the four behind it in one PostgreSQL transaction.
    assert.equal(group.groups, 2);
    assert.equal(group.groupedTransactions, 5);
  });

  test('a group that fails as a whole fails each of its transactions, and the connection stays usable', async () => {
    const group = committer();
    const blocker = group.commit(["INSERT INTO probe VALUES ('e1')"], []);
    // Not inside strata_try (a syntax error of the batch text itself cannot be): the whole group fails.
    const broken = group.commit(["INSERT INTO probe VALUES ('f1')"], [{ name: 'x', text: 'SELEC 1' }]);
    const neighbour = group.commit(["INSERT INTO probe VALUES ('g1')"], []);
    await blocker;
    await assert.rejects(broken, { code: '42601' });
    await assert.rejects(neighbour, { code: '42601' });
    assert.deepEqual(
      (await keys()).filter((k) => k >= 'e'),
      ['e1'],
    );
    await group.commit(["INSERT INTO probe VALUES ('h1')"], []);
    assert.ok((await keys()).includes('h1'));
  });

  describe('through the metadata service', () => {
    let service: MetaService;
    before(async () => {
      service = await openMetaService({ engineUrl: db.url, background: false });
    });
    after(async () => {
      await service?.close();
    });

    test('concurrent creates in known directories share PostgreSQL transactions, and all of them land', async () => {
      const engine = postgresEngineOf(service);
      assert.ok(engine.committer);
      const dirs: Ino[] = [];
      for (let d = 0; d < 8; d++) {
        const dir = (await service.mkdir(root, ROOT_INO, `d${d}`, 0o755, 0)).ino;
        await service.mknod(root, dir, 'warm', S_IFREG | 0o644, 0, 0); // the directory is cached
        dirs.push(dir);
      }
      const groupsBefore = engine.committer.groups;
      const groupedBefore = engine.committer.groupedTransactions;
      await Promise.all(
        dirs.map(async (dir) => {
          for (let n = 0; n < 10; n++) await service.mknod(root, dir, `f${n}`, S_IFREG | 0o644, 0, 0);
        }),
      );
      const groups = engine.committer.groups - groupsBefore;
      const grouped = engine.committer.groupedTransactions - groupedBefore;
      assert.ok(grouped >= 70, `${grouped} of 80 creates went through group commit`);
      assert.ok(groups < grouped, `${grouped} creates in ${groups} PostgreSQL transactions`);
      for (const dir of dirs) {
        const names = (await service.readdir(root, dir, 0, 100, false)).map((e) => e.name).sort();
        assert.deepEqual(
          names.filter((n) => n.startsWith('f')),
          Array.from({ length: 10 }, (_, n) => `f${n}`).sort(),
        );
        assert.equal((await service.getattr(dir)).nlink, 2);
      }
    });
  });
});
