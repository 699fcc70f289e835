import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  applyMigrations,
  planMigrationsWith,
  type Migration,
} from '../../src/meta/engines/postgres/migrate.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

const v1: Migration = { version: 1, name: 'a table', sql: 'CREATE TABLE t1 (id int PRIMARY KEY)' };
const v2: Migration = { version: 2, name: 'a column', sql: 'ALTER TABLE t1 ADD COLUMN note text' };

describe('PostgreSQL schema migrations', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  const pools: pg.Pool[] = [];
  const pool = () => {
    const p = new pg.Pool({ connectionString: db.url, max: 2 });
    // pool.end() resolves before its connections have closed; dropping the database then
    // terminates them, and an idle client's error without a listener would crash the file.
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
  });

  test('the dry run of an empty database lists every migration and changes nothing', async () => {
    const plan = await planMigrationsWith(db.url, [v1, v2]);
    assert.match(plan, /schema version 0 \(empty/);
    assert.match(plan, /-- version 1: a table\nCREATE TABLE t1/);
    assert.match(plan, /-- version 2: a column/);
    const check = await pool().query(`SELECT to_regclass('t1') IS NULL AS absent`);
    assert.equal(check.rows[0].absent, true);
  });

  test('servers starting at once apply each migration exactly once', async () => {
    const results = await Promise.all([applyMigrations(pool(), [v1]), applyMigrations(pool(), [v1])]);
    assert.deepEqual(results.flat(), [1]);
    assert.deepEqual(await applyMigrations(pool(), [v1, v2]), [2]);
    assert.match(await planMigrationsWith(db.url, [v1, v2]), /schema version 2\nup to date/);
  });

  test('a database newer than this StrataFS is refused with a message saying what to do', async () => {
    await assert.rejects(applyMigrations(pool(), [v1]), /schema is at version 2 .* upgrade StrataFS/);
  });
});
