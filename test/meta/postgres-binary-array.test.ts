import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { byteaArray, int4Array, int8Array, textArray } from '../../src/meta/engines/postgres/binary-array.js';
import { createTestDatabase, PG_SKIP_REASON, type TestDatabase } from './postgres-fixture.js';

describe('PostgreSQL binary array parameters', { skip: PG_SKIP_REASON }, () => {
  let db: TestDatabase;
  let client: pg.Client;

  before(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await db?.drop();
  });

  /** The array as PostgreSQL read it, element by element as text (NULL as null). */
  async function received(param: Buffer, type: string): Promise<(string | null)[]> {
    const { rows } = await client.query<{ element: string | null }>(
      `SELECT e::text AS element FROM unnest($1::${type}) WITH ORDINALITY AS u(e, n) ORDER BY n`,
      [param],
    );
    return rows.map((row) => row.element);
  }

  test('bigint[] keeps every safe integer, negative ones and those past 32 bits included', async () => {
    const values = [
      0,
      1,
      -1,
      2 ** 31,
      2 ** 32,
      2 ** 32 + 1,
      -(2 ** 32) - 1,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
      1795784103325537,
    ];
    assert.deepEqual(await received(int8Array(values), 'bigint[]'), values.map(String));
  });

  test('int[] keeps 32-bit values', async () => {
    const values = [0, 7, -7, 2 ** 31 - 1, -(2 ** 31)];
    assert.deepEqual(await received(int4Array(values), 'int[]'), values.map(String));
  });

  test('text[] keeps NULLs, empty strings, quotes, braces and multi-byte characters', async () => {
    const values = [null, '', 'a', 'with "quotes", {braces} and \\backslash', 'née 名前 🗂', null];
    assert.deepEqual(await received(textArray(values), 'text[]'), values);
  });

  test('bytea[] keeps every byte, and empty values', async () => {
    const values = [Buffer.alloc(0), Buffer.from([0, 255, 92, 39, 34]), Buffer.alloc(300, 7)];
    const { rows } = await client.query<{ element: Buffer }>(
      'SELECT e AS element FROM unnest($1::bytea[]) WITH ORDINALITY AS u(e, n) ORDER BY n',
      [byteaArray(values)],
    );
    assert.deepEqual(
      rows.map((row) => row.element),
      values,
    );
  });

  test('empty arrays of each type arrive empty', async () => {
    for (const [param, type] of [
      [int4Array([]), 'int[]'],
      [int8Array([]), 'bigint[]'],
      [textArray([]), 'text[]'],
      [byteaArray([]), 'bytea[]'],
    ] as const) {
      const { rows } = await client.query<{ n: number }>(`SELECT cardinality($1::${type}) AS n`, [param]);
      assert.equal(rows[0].n, 0, type);
    }
  });
});
