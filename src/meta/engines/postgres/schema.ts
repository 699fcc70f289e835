import type { Migration } from './migrate.js';

/**
 * The PostgreSQL schema: the same model as the SQLite engine (src/meta/engines/sqlite/schema.ts),
 * table for table. Current tables hold the live namespace and are all that current-state reads
 * touch; `*_hist` tables hold old row images valid over [from_us, to_us). `ver` is the commit
 * instant (µs) of the transaction that wrote the current row.
 *
 * Differences that matter for several servers on one database:
 * - `dentry_cursor_seq` hands out readdir cursors (unique and increasing across servers).
 * - history rows get a bigserial `seq` so pruning can delete from the front in small batches.
 * - text columns use the "C" collation: names compare bytewise, like the kernel does.
 * - statistics counters (inodes used, bytes used) change in nearly every transaction: they are
 *   spread over `counter_shard` rows so concurrent transactions do not queue on one row lock.
 *
 * Released migrations are never edited; a schema change is a new entry at the end.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'namespace, history, sessions, locks, slices',
    sql: `
CREATE TABLE inode (
  ino bigint PRIMARY KEY,
  mode integer NOT NULL, uid bigint NOT NULL, gid bigint NOT NULL, nlink integer NOT NULL,
  size bigint NOT NULL, rdev bigint NOT NULL,
  atime_s bigint NOT NULL, atime_ns integer NOT NULL,
  mtime_s bigint NOT NULL, mtime_ns integer NOT NULL,
  ctime_s bigint NOT NULL, ctime_ns integer NOT NULL,
  gen bigint NOT NULL, parent bigint NOT NULL, target text COLLATE "C",
  ver bigint NOT NULL
);
CREATE TABLE inode_hist (
  seq bigserial PRIMARY KEY,
  ino bigint NOT NULL, from_us bigint NOT NULL, to_us bigint NOT NULL,
  mode integer NOT NULL, uid bigint NOT NULL, gid bigint NOT NULL, nlink integer NOT NULL,
  size bigint NOT NULL, rdev bigint NOT NULL,
  atime_s bigint NOT NULL, atime_ns integer NOT NULL,
  mtime_s bigint NOT NULL, mtime_ns integer NOT NULL,
  ctime_s bigint NOT NULL, ctime_ns integer NOT NULL,
  gen bigint NOT NULL, parent bigint NOT NULL, target text COLLATE "C"
);
CREATE INDEX inode_hist_key ON inode_hist (ino, to_us);

CREATE SEQUENCE dentry_cursor_seq;
CREATE TABLE dentry (
  parent bigint NOT NULL, name text COLLATE "C" NOT NULL, ino bigint NOT NULL, type integer NOT NULL,
  cursor bigint NOT NULL, ver bigint NOT NULL,
  PRIMARY KEY (parent, name)
);
CREATE INDEX dentry_cursor ON dentry (parent, cursor);
CREATE TABLE dentry_hist (
  seq bigserial PRIMARY KEY,
  parent bigint NOT NULL, name text COLLATE "C" NOT NULL, from_us bigint NOT NULL, to_us bigint NOT NULL,
  ino bigint NOT NULL, type integer NOT NULL, cursor bigint NOT NULL
);
CREATE INDEX dentry_hist_key ON dentry_hist (parent, name, to_us);
CREATE INDEX dentry_hist_cursor ON dentry_hist (parent, cursor);

CREATE TABLE xattr (
  ino bigint NOT NULL, name text COLLATE "C" NOT NULL, value bytea NOT NULL, ver bigint NOT NULL,
  PRIMARY KEY (ino, name)
);
CREATE TABLE xattr_hist (
  seq bigserial PRIMARY KEY,
  ino bigint NOT NULL, name text COLLATE "C" NOT NULL, from_us bigint NOT NULL, to_us bigint NOT NULL,
  value bytea NOT NULL
);
CREATE INDEX xattr_hist_key ON xattr_hist (ino, name, to_us);

CREATE TABLE chunk (
  ino bigint NOT NULL, idx integer NOT NULL, slices bytea NOT NULL, ver bigint NOT NULL,
  PRIMARY KEY (ino, idx)
);
CREATE TABLE chunk_hist (
  seq bigserial PRIMARY KEY,
  ino bigint NOT NULL, idx integer NOT NULL, from_us bigint NOT NULL, to_us bigint NOT NULL,
  slices bytea NOT NULL
);
CREATE INDEX chunk_hist_key ON chunk_hist (ino, idx, to_us);

CREATE TABLE setting (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE counter (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE counter_shard (
  name text COLLATE "C" NOT NULL, shard integer NOT NULL, value bigint NOT NULL,
  PRIMARY KEY (name, shard)
);

CREATE TABLE session (
  id text COLLATE "C" PRIMARY KEY, info text NOT NULL, started_us bigint NOT NULL, heartbeat_us bigint NOT NULL
);
CREATE TABLE lock (
  ino bigint NOT NULL, session text COLLATE "C" NOT NULL, owner text COLLATE "C" NOT NULL,
  flock boolean NOT NULL, type text NOT NULL, start bigint NOT NULL, "end" bigint NOT NULL,
  pid integer NOT NULL
);
CREATE INDEX lock_ino ON lock (ino);
CREATE INDEX lock_session ON lock (session);
CREATE TABLE open_file (
  session text COLLATE "C" NOT NULL, ino bigint NOT NULL, count integer NOT NULL,
  PRIMARY KEY (session, ino)
);
CREATE INDEX open_file_ino ON open_file (ino);

CREATE TABLE slice_ref (id bigint PRIMARY KEY, size bigint NOT NULL, refs bigint NOT NULL);
CREATE TABLE deleted_slice (id bigint NOT NULL, size bigint NOT NULL, deleted_us bigint NOT NULL);
CREATE INDEX deleted_slice_time ON deleted_slice (deleted_us);
`,
  },
  {
    version: 2,
    name: 'at-most-once replies of numbered calls',
    sql: `
CREATE TABLE call_outcome (
  seq_no bigserial,
  client_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, reply bytea NOT NULL, at_us bigint NOT NULL,
  PRIMARY KEY (client_id, seq)
);
CREATE INDEX call_outcome_age ON call_outcome (seq_no);
`,
  },
  {
    version: 3,
    name: 'checks of cached reads (one round trip per change)',
    sql: `
-- A write transaction may decide from rows this server cached instead of reading them first;
-- its batch then checks each such row (locking it) before writing, and a mismatch aborts the
-- transaction with SQLSTATE SR001, which the server retries reading PostgreSQL.
CREATE FUNCTION strata_expect(ok boolean, what text, id text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'cached % % changed meanwhile', what, id USING ERRCODE = 'SR001';
  END IF;
END
$fn$;
`,
  },
  {
    version: 4,
    name: 'group commit: each transaction of a group in its own subtransaction',
    sql: `
-- Group commit: a server sends the batches of several of its transactions in one PostgreSQL
-- transaction (one round trip, one WAL flush). Each batch runs here, in the subtransaction of
-- the exception block, so one that fails (SR001 from strata_expect, a duplicate name, a
-- deadlock) undoes only its own writes and returns its SQLSTATE, constraint and message for
-- the server to handle as if it had run alone, while the group goes on and commits.
CREATE FUNCTION strata_try(statements text) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
  failed_constraint text;
BEGIN
  EXECUTE statements;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS failed_constraint = CONSTRAINT_NAME;
  RETURN ARRAY[SQLSTATE, failed_constraint, SQLERRM];
END
$fn$;
`,
  },
];

export const HISTORY_TABLES = ['inode_hist', 'dentry_hist', 'xattr_hist', 'chunk_hist'] as const;

export const ALL_TABLES = [
  'inode',
  'dentry',
  'xattr',
  'chunk',
  ...HISTORY_TABLES,
  'setting',
  'counter',
  'counter_shard',
  'session',
  'lock',
  'open_file',
  'slice_ref',
  'deleted_slice',
  'call_outcome',
] as const;
