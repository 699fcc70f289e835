import type { Database } from 'better-sqlite3';

/**
 * The SQLite schema. Current tables hold the live namespace and are all that current-state
 * reads touch; `*_hist` tables hold old row images with their validity [from_us, to_us).
 * `ver` is the commit instant (µs) of the transaction that wrote the current row.
 *
 * Two shapes of history table (measured, bench/RESULTS.md "Metadata engine", session 6):
 * - Rowid tables with a key index (inode, xattr, chunk): rows are appended in commit order, so
 *   recent history sits together (as-of reads of the recent past stay in cache), a group commit
 *   of 64 creates in 64 directories appends its 64 directory images to one or two pages, and
 *   pruning deletes from the front in rowid order without a time index.
 * - Clustered on its lookup key (dentry: WITHOUT ROWID, primary key ending in to_us): a removed
 *   or renamed name costs one page write instead of a row page plus a key index page (one WAL
 *   frame of ~9 per serial unlink or rename). Pruning sweeps it in key order (history-prune.ts).
 *   Clustering inode_hist too saved more frames per serial change, but under group commit a
 *   create wrote 4% more frames and its directory image cost ~3 µs more CPU (a mid-tree insert
 *   of a 90-byte row instead of an append plus a small index entry).
 */
/**
 * 2: call outcomes keyed by an integer client number (call_client) instead of the text id.
 * 3: call outcomes stored one row per client per commit (call_batch) instead of one per change.
 * 4: dentry_hist clustered on (parent, name, to_us) instead of a rowid table with a key index
 *    (history-keys.ts migrates schema 3 in place).
 * 5: session.slice_floor, the lowest slice id a mount may still commit (NULL: not reported;
 *    migrateSessionFloor adds the column in place).
 * 6: inode.alloc and inode_hist.alloc, a regular file's allocated bytes (st_blocks), computed
 *    from the chunks by migrateAllocatedBytes (allocated.ts); used_bytes counts them.
 */
export const SCHEMA_VERSION = 6;

export const HISTORY_TABLES = ['inode_hist', 'dentry_hist', 'xattr_hist', 'chunk_hist'] as const;
export type HistoryTable = (typeof HISTORY_TABLES)[number];

/** History tables clustered on their key (the others are rowid tables with a key index). */
export const CLUSTERED_HISTORY: readonly HistoryTable[] = ['dentry_hist'];

/** Each history table's lookup key (clustered: primary key), in order; the last column is to_us. */
export const HISTORY_KEYS: Record<HistoryTable, readonly string[]> = {
  inode_hist: ['ino', 'to_us'],
  dentry_hist: ['parent', 'name', 'to_us'],
  xattr_hist: ['ino', 'name', 'to_us'],
  chunk_hist: ['ino', 'idx', 'to_us'],
};

/** Column definitions of each history table (the primary key is HISTORY_KEYS). */
const HISTORY_COLUMNS: Record<HistoryTable, string> = {
  inode_hist: `
  ino INTEGER NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,
  size INTEGER NOT NULL, rdev INTEGER NOT NULL,
  atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,
  mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
  gen INTEGER NOT NULL, parent INTEGER NOT NULL, target TEXT, alloc INTEGER NOT NULL DEFAULT 0`,
  dentry_hist: `
  parent INTEGER NOT NULL, name TEXT NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  ino INTEGER NOT NULL, type INTEGER NOT NULL, cursor INTEGER NOT NULL`,
  xattr_hist: `
  ino INTEGER NOT NULL, name TEXT NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  value BLOB NOT NULL`,
  chunk_hist: `
  ino INTEGER NOT NULL, idx INTEGER NOT NULL, from_us INTEGER NOT NULL, to_us INTEGER NOT NULL,
  slices BLOB NOT NULL`,
};

/** The CREATE statements of history table `table`, with its key index if it is a rowid table. */
export function historyTableSql(table: HistoryTable): string {
  const key = HISTORY_KEYS[table].join(', ');
  if (CLUSTERED_HISTORY.includes(table)) {
    return `CREATE TABLE IF NOT EXISTS ${table} (${HISTORY_COLUMNS[table]},\n  PRIMARY KEY (${key})\n) WITHOUT ROWID;`;
  }
  return (
    `CREATE TABLE IF NOT EXISTS ${table} (${HISTORY_COLUMNS[table]}\n);\n` +
    `CREATE INDEX IF NOT EXISTS ${table}_key ON ${table}(${key});`
  );
}

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS inode (
  ino INTEGER PRIMARY KEY,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,
  size INTEGER NOT NULL, rdev INTEGER NOT NULL,
  atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,
  mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
  gen INTEGER NOT NULL, parent INTEGER NOT NULL, target TEXT,
  ver INTEGER NOT NULL, alloc INTEGER NOT NULL DEFAULT 0
);
${historyTableSql('inode_hist')}

CREATE TABLE IF NOT EXISTS dentry (
  parent INTEGER NOT NULL, name TEXT NOT NULL, ino INTEGER NOT NULL, type INTEGER NOT NULL,
  cursor INTEGER NOT NULL, ver INTEGER NOT NULL,
  PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dentry_cursor ON dentry(parent, cursor);
${historyTableSql('dentry_hist')}

CREATE TABLE IF NOT EXISTS xattr (
  ino INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, ver INTEGER NOT NULL,
  PRIMARY KEY (ino, name)
) WITHOUT ROWID;
${historyTableSql('xattr_hist')}

CREATE TABLE IF NOT EXISTS chunk (
  ino INTEGER NOT NULL, idx INTEGER NOT NULL, slices BLOB NOT NULL, ver INTEGER NOT NULL,
  PRIMARY KEY (ino, idx)
) WITHOUT ROWID;
${historyTableSql('chunk_hist')}

CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS session (
  id TEXT PRIMARY KEY, info TEXT NOT NULL, started_us INTEGER NOT NULL, heartbeat_us INTEGER NOT NULL,
  slice_floor INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lock (
  ino INTEGER NOT NULL, session TEXT NOT NULL, owner TEXT NOT NULL, flock INTEGER NOT NULL,
  type INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lock_ino ON lock(ino);
CREATE INDEX IF NOT EXISTS lock_session ON lock(session);
CREATE TABLE IF NOT EXISTS open_file (
  session TEXT NOT NULL, ino INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (session, ino)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS open_file_ino ON open_file(ino);

CREATE TABLE IF NOT EXISTS slice_ref (
  id INTEGER PRIMARY KEY, size INTEGER NOT NULL, refs INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted_slice (
  id INTEGER NOT NULL, size INTEGER NOT NULL, deleted_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_slice_time ON deleted_slice(deleted_us);
-- The GC looks up a slice's latest deletion and forgets single rows by slice id. An index
-- only: volumes made before it get it at their next open (this script runs at every open).
CREATE INDEX IF NOT EXISTS deleted_slice_id ON deleted_slice(id, deleted_us);

-- At-most-once replies of numbered calls (src/meta/call-outcomes.ts); rowid order is age order.
-- Keyed by a small client number, not the client's text id (call-clients.ts). One row per client
-- per group commit holds the outcomes of that client's changes in it (call-batch.ts).
CREATE TABLE IF NOT EXISTS call_client (num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS call_batch (
  client INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  replies BLOB NOT NULL, at_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS call_batch_key ON call_batch(client, last_seq);
`;

/** Schema 1 kept call outcomes under the text client id: move them to schema 2's call_result first. */
export const MIGRATE_CALL_OUTCOMES_SQL = `
CREATE TABLE IF NOT EXISTS call_result (
  client INTEGER NOT NULL, seq INTEGER NOT NULL, reply BLOB NOT NULL, at_us INTEGER NOT NULL
);
INSERT OR IGNORE INTO call_client (id) SELECT DISTINCT client_id FROM call_outcome;
INSERT INTO call_result (client, seq, reply, at_us)
  SELECT c.num, o.seq, o.reply, o.at_us FROM call_outcome o JOIN call_client c ON c.id = o.client_id
  ORDER BY o.rowid;
DROP TABLE call_outcome;
`;

export const ALL_TABLES = [
  'inode',
  'dentry',
  'xattr',
  'chunk',
  ...HISTORY_TABLES,
  'setting',
  'counter',
  'session',
  'lock',
  'open_file',
  'slice_ref',
  'deleted_slice',
  'call_batch',
  'call_client',
] as const;

/**
 * Schema 5 adds session.slice_floor. CREATE TABLE IF NOT EXISTS leaves an older session table as
 * it was, so add the column there; sessions of that time keep NULL (no floor reported).
 */
export function migrateSessionFloor(db: Database): boolean {
  const columns = db.prepare('PRAGMA table_info(session)').all() as { name: string }[];
  if (columns.some((c) => c.name === 'slice_floor')) return false;
  db.exec('ALTER TABLE session ADD COLUMN slice_floor INTEGER');
  return true;
}
