import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { asIno, asSliceId, isFsError, type SliceRef } from '../../src/common/index.js';
import type { Clock, InodeRow, ReadTx } from '../../src/meta/engine.js';
import { SqliteEngine } from '../../src/meta/engines/sqlite/index.js';
import { HISTORY_TABLES, SCHEMA_VERSION } from '../../src/meta/engines/sqlite/schema.js';

const base = mkdtempSync(join(tmpdir(), 'strata-historykeys-test-'));
let n = 0;
after(() => rmSync(base, { recursive: true, force: true }));

class ManualClock implements Clock {
  us = 1_800_000_000_000_000;
  nowUs(): number {
    return this.us;
  }
}

/** The history tables of schema 3, verbatim: rowid tables with a separate key index. */
const SCHEMA_3_HISTORY = `
CREATE TABLE inode_hist (
  ino INTEGER NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,
  size INTEGER NOT NULL, rdev INTEGER NOT NULL,
  atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,
  mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
  gen INTEGER NOT NULL, parent INTEGER NOT NULL, target TEXT
);
CREATE INDEX inode_hist_key ON inode_hist(ino, to_us);
CREATE TABLE dentry_hist (
  parent INTEGER NOT NULL, name TEXT NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  ino INTEGER NOT NULL, type INTEGER NOT NULL, cursor INTEGER NOT NULL
);
CREATE INDEX dentry_hist_key ON dentry_hist(parent, name, to_us);
CREATE TABLE xattr_hist (
  ino INTEGER NOT NULL, name TEXT NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  value BLOB NOT NULL
);
CREATE INDEX xattr_hist_key ON xattr_hist(ino, name, to_us);
CREATE TABLE chunk_hist (
  ino INTEGER NOT NULL, idx INTEGER NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  slices BLOB NOT NULL
);
CREATE INDEX chunk_hist_key ON chunk_hist(ino, idx, to_us);
`;

function inodeRow(ino: number, uid: number): InodeRow {
  return {
    ino: asIno(ino),
    mode: 0o100644,
    uid,
    gid: 0,
    nlink: 1,
    sizeBytes: uid * 10,
    rdev: 0,
    atimeSec: uid,
    atimeNsec: 0,
    mtimeSec: uid,
    mtimeNsec: 0,
    ctimeSec: uid,
    ctimeNsec: 0,
    generation: 1,
    parent: asIno(1),
    target: null,
    allocatedBytes: 0,
  };
}

const slice = (id: number): SliceRef[] => [
  {
    id: asSliceId(id),
    sliceSizeBytes: 4096,
    chunkOffsetBytes: 0,
    sliceOffsetBytes: 0,
    lengthBytes: 4096,
    blockSizeBytes: 4096,
  },
];

const INOS = [10, 11, 12, 13];
const NAMES = ['a', 'b', 'c'];

/**
 * A history over every table: 12 instants, each changing inodes, names, xattrs and chunks,
 * some of them deleted and put again. Returns the instants between the changes.
 */
async function buildHistory(engine: SqliteEngine, clock: ManualClock): Promise<number[]> {
  const instants: number[] = [];
  for (let step = 0; step < 12; step++) {
    clock.us += 1_000_000;
    await engine.write(async (tx) => {
      for (const ino of INOS) {
        if (step === 7 && ino === 13) await tx.deleteInode(asIno(ino));
        else if (step < 7 || ino !== 13) await tx.putInode(inodeRow(ino, step * 100 + ino), step === 0);
      }
      const name = NAMES[step % NAMES.length];
      if (step % 4 === 3) await tx.deleteDentry(asIno(1), name);
      else await tx.putDentry(asIno(1), name, asIno(INOS[step % INOS.length]), 0o100000, step === 0);
      if (step % 5 === 4) await tx.deleteXattr(asIno(10), 'user.k');
      else await tx.putXattr(asIno(10), 'user.k', Buffer.from(`v${step}`));
      await tx.putXattr(asIno(11), `user.s${step % 2}`, Buffer.from(`w${step}`));
      await tx.putChunk(asIno(12), step % 2, step % 3 === 2 ? [] : slice(1000 + step));
    });
    clock.us += 1_000_000;
    instants.push(clock.us - 500_000);
  }
  return instants;
}

/**
 * Everything the engine answers as of `t` (undefined: now) about the rows buildHistory wrote.
 * Allocated bytes aside: a schema-3 volume has none, schema 6 computes them from the chunks
 * (sqlite-allocated-migrate.test.ts), where buildHistory wrote 0 beside its chunks.
 */
async function answers(tx: ReadTx, t?: number): Promise<unknown> {
  const out: unknown[] = [];
  for (const ino of INOS) {
    const inode = await tx.getInode(asIno(ino), t);
    out.push(inode && { ...inode, allocatedBytes: undefined });
    out.push(await tx.listXattrs(asIno(ino), t));
    for (const name of ['user.k', 'user.s0', 'user.s1']) out.push(await tx.getXattr(asIno(ino), name, t));
    out.push(await tx.listChunkIndexes(asIno(ino), 0, 10, t));
    for (const idx of [0, 1]) out.push(await tx.getChunk(asIno(ino), idx, t));
  }
  for (const name of NAMES) out.push(await tx.lookup(asIno(1), name, t));
  out.push(await tx.listDir(asIno(1), 0, 100, t));
  return JSON.parse(JSON.stringify(out, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
}

function historyRows(path: string): Record<string, unknown[]> {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    const rows: Record<string, unknown[]> = {};
    for (const table of HISTORY_TABLES) {
      const cols = (
        db.prepare(`SELECT name FROM pragma_table_info('${table}') ORDER BY name`).pluck().all() as string[]
      )
        .filter((c) => c !== 'alloc') // see answers()
        .map((c) => `quote(${c}) AS ${c}`)
        .join(', ');
      rows[table] = db
        .prepare(`SELECT ${cols} FROM ${table}`)
        .all()
        .map((r) => JSON.stringify(r))
        .sort();
    }
    return rows;
  } finally {
    db.close();
  }
}

/** Rewrites the history tables of a closed database into schema 3's shape, rows unchanged. */
function downgradeToSchema3(path: string): void {
  const db = new BetterSqlite3(path);
  try {
    db.transaction(() => {
      for (const table of HISTORY_TABLES) {
        db.exec(`DROP INDEX IF EXISTS ${table}_key`);
        db.exec(`ALTER TABLE ${table} RENAME TO ${table}_new`);
      }
      db.exec(SCHEMA_3_HISTORY);
      for (const table of HISTORY_TABLES) {
        // Commit order, as schema 3 appended them; its columns only (schema 6 added alloc).
        const columns = (
          db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]
        ).join(', ');
        db.exec(`INSERT INTO ${table} SELECT ${columns} FROM ${table}_new ORDER BY to_us`);
        db.exec(`DROP TABLE ${table}_new`);
      }
      db.exec('ALTER TABLE inode DROP COLUMN alloc');
      db.pragma('user_version = 3');
    })();
  } finally {
    db.close();
  }
}

function shape(path: string): { version: number; rowidTables: string[]; indexes: string[] } {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name LIKE '%hist%' ORDER BY name",
      )
      .all() as { name: string; sql: string }[];
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      rowidTables: tables.filter((t) => !t.sql.includes('WITHOUT ROWID')).map((t) => t.name),
      indexes: db
        .prepare(
          "SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE '%hist_key' ORDER BY name",
        )
        .pluck()
        .all() as string[],
    };
  } finally {
    db.close();
  }
}

/** A schema-3 database holding buildHistory's rows, with every answer it gave before. */
async function schema3Volume() {
  const path = join(base, `v${++n}.db`);
  const clock = new ManualClock();
  const engine = new SqliteEngine(path, { clock });
  let instants: number[];
  const expected = new Map<number | undefined, unknown>();
  try {
    instants = await buildHistory(engine, clock);
    for (const t of [undefined, ...instants]) expected.set(t, await engine.read((tx) => answers(tx, t)));
  } finally {
    await engine.close();
  }
  const rows = historyRows(path);
  downgradeToSchema3(path);
  assert.deepEqual(shape(path), {
    version: 3,
    rowidTables: ['chunk_hist', 'dentry_hist', 'inode_hist', 'xattr_hist'],
    indexes: ['chunk_hist_key', 'dentry_hist_key', 'inode_hist_key', 'xattr_hist_key'],
  });
  assert.deepEqual(historyRows(path), rows, 'the downgrade keeps every row');
  return { path, clock, instants, expected, rows };
}

/** Schema 4: dentry_hist clustered on its key; the other history tables as in schema 3. */
const SCHEMA_4_SHAPE = {
  version: SCHEMA_VERSION,
  rowidTables: ['chunk_hist', 'inode_hist', 'xattr_hist'],
  indexes: ['chunk_hist_key', 'inode_hist_key', 'xattr_hist_key'],
};

describe('SQLite engine: dentry history clustered on its key (schema 4)', () => {
  it('a schema-3 volume is migrated in place when opened: every history row and as-of answer survives', async () => {
    const { path, clock, instants, expected, rows } = await schema3Volume();
    for (const table of HISTORY_TABLES) assert.ok(rows[table].length >= 5, `${table} has history`);
    const engine = new SqliteEngine(path, { clock });
    try {
      assert.deepEqual(shape(path), SCHEMA_4_SHAPE);
      assert.deepEqual(historyRows(path), rows);
      for (const t of [undefined, ...instants]) {
        assert.deepEqual(await engine.read((tx) => answers(tx, t)), expected.get(t), `as of ${t ?? 'now'}`);
      }
      // It keeps working: a new change adds history, older answers stay.
      clock.us += 1_000_000;
      await engine.write((tx) => tx.putInode(inodeRow(10, 9999)));
      assert.equal((await engine.read((tx) => tx.getInode(asIno(10))))?.uid, 9999);
      assert.deepEqual(await engine.read((tx) => answers(tx, instants[11])), expected.get(instants[11]));
      assert.deepEqual(await engine.read((tx) => answers(tx, instants[3])), expected.get(instants[3]));
    } finally {
      await engine.close();
    }
  });

  it('a migration that fails part way leaves schema 3 whole, and the next open completes it', async () => {
    const { path, clock, instants, expected, rows } = await schema3Volume();
    // Call outcomes left by schema 2 are moved first (call-batch.ts); then the name the history
    // migration moves dentry_hist to is taken, so it fails after that move.
    const db = new BetterSqlite3(path);
    db.exec(`CREATE TABLE call_result (client INTEGER NOT NULL, seq INTEGER NOT NULL, reply BLOB NOT NULL, at_us INTEGER NOT NULL);
      INSERT INTO call_result VALUES (1, 41, x'01', 1);
      CREATE VIEW dentry_hist_v3 AS SELECT 1`);
    db.close();
    assert.throws(
      () => new SqliteEngine(path, { clock }),
      (e: unknown) => e instanceof Error && /dentry_hist_v3/.test(e.message),
    );
    const left = new BetterSqlite3(path, { readonly: true });
    assert.equal(
      left.prepare('SELECT count(*) FROM call_result').pluck().get(),
      1,
      'the first move was undone',
    );
    left.close();
    assert.deepEqual(shape(path), {
      version: 3,
      rowidTables: ['chunk_hist', 'dentry_hist', 'inode_hist', 'xattr_hist'],
      indexes: ['chunk_hist_key', 'dentry_hist_key', 'inode_hist_key', 'xattr_hist_key'],
    });
    assert.deepEqual(historyRows(path), rows);
    const fix = new BetterSqlite3(path);
    fix.exec('DROP VIEW dentry_hist_v3');
    fix.close();
    const engine = new SqliteEngine(path, { clock });
    try {
      assert.deepEqual(shape(path), SCHEMA_4_SHAPE);
      assert.deepEqual(historyRows(path), rows);
      for (const t of [undefined, ...instants]) {
        assert.deepEqual(await engine.read((tx) => answers(tx, t)), expected.get(t), `as of ${t ?? 'now'}`);
      }
    } finally {
      await engine.close();
    }
  });

  it('a history table of the wrong shape (inode_hist clustered by an early schema-4 build) is rebuilt with its rows', async () => {
    const { path, clock, instants, expected, rows } = await schema3Volume();
    await new SqliteEngine(path, { clock }).close(); // schema 4 as this build makes it
    const db = new BetterSqlite3(path);
    db.transaction(() => {
      db.exec('DROP INDEX inode_hist_key; ALTER TABLE inode_hist RENAME TO inode_hist_rowid');
      db.exec(`CREATE TABLE inode_hist (ino INTEGER NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
        mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,
        size INTEGER NOT NULL, rdev INTEGER NOT NULL, atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,
        mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
        gen INTEGER NOT NULL, parent INTEGER NOT NULL, target TEXT, PRIMARY KEY (ino, to_us)) WITHOUT ROWID;
        INSERT INTO inode_hist SELECT ino, from_us, to_us, mode, uid, gid, nlink, size, rdev, atime_s,
          atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target FROM inode_hist_rowid;
        DROP TABLE inode_hist_rowid;`);
    })();
    db.close();
    assert.ok(shape(path).indexes.every((name) => name !== 'inode_hist_key'));
    const engine = new SqliteEngine(path, { clock });
    try {
      assert.deepEqual(shape(path), SCHEMA_4_SHAPE);
      assert.deepEqual(historyRows(path), rows);
      for (const t of [undefined, ...instants]) {
        assert.deepEqual(await engine.read((tx) => answers(tx, t)), expected.get(t), `as of ${t ?? 'now'}`);
      }
    } finally {
      await engine.close();
    }
  });

  it('a volume of a newer schema is refused with a message that says to upgrade', () => {
    const path = join(base, `v${++n}.db`);
    const db = new BetterSqlite3(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(
      () => new SqliteEngine(path, {}),
      (e: unknown) =>
        isFsError(e) && e.code === 'EINVAL' && /newer than this build.*upgrade strata/.test(e.message),
    );
  });

  it('pruning takes rowid tables oldest first and sweeps the clustered one in key order: only rows that ended before the instant, at most maxRows per call, resumed after a restart', async () => {
    const path = join(base, `v${++n}.db`);
    const clock = new ManualClock();
    let engine = new SqliteEngine(path, { clock });
    try {
      const instants = await buildHistory(engine, clock);
      const cut = instants[6];
      const total = (): number => {
        const rows = historyRows(path);
        return HISTORY_TABLES.reduce((sum, table) => sum + rows[table].length, 0);
      };
      const young = (): number => {
        const db = new BetterSqlite3(path, { readonly: true });
        try {
          return HISTORY_TABLES.reduce(
            (sum, t) =>
              sum + (db.prepare(`SELECT count(*) FROM ${t} WHERE to_us >= ?`).pluck().get(cut) as number),
            0,
          );
        } finally {
          db.close();
        }
      };
      const all = total();
      const keep = young();
      assert.ok(all - keep >= 20, `old rows: ${all - keep}`);
      const expected = new Map<number, unknown>();
      for (const t of instants.slice(6)) expected.set(t, await engine.read((tx) => answers(tx, t)));
      let deleted = 0;
      let calls = 0;
      let restarted = false;
      while (deleted < all - keep) {
        const got = await engine.pruneHistory(cut, 2);
        assert.ok(got <= 2, `deleted ${got} rows with maxRows 2`);
        deleted += got;
        assert.equal(total(), all - deleted);
        const position = setting(path);
        if (
          !restarted &&
          position !== undefined &&
          (JSON.parse(position) as { after: unknown }).after !== null
        ) {
          // A restart while the sweep stands inside dentry_hist: it goes on from there.
          restarted = true;
          await engine.close();
          engine = new SqliteEngine(path, { clock });
          assert.equal(setting(path), position);
        }
        assert.ok(++calls < 200, 'the sweep makes progress');
      }
      assert.ok(restarted, 'the sweep stopped inside dentry_hist at least once');
      assert.equal(deleted, all - keep);
      assert.equal(young(), keep, 'no row that ended at or after the instant went');
      assert.equal(await engine.pruneHistory(cut, 3), 0);
      for (const t of instants.slice(6)) {
        assert.deepEqual(await engine.read((tx) => answers(tx, t)), expected.get(t), `as of ${t}`);
      }
    } finally {
      await engine.close();
    }
  });
});

function setting(path: string): string | undefined {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return db
      .prepare("SELECT value FROM setting WHERE key = 'engine.history_prune_position'")
      .pluck()
      .get() as string | undefined;
  } finally {
    db.close();
  }
}
