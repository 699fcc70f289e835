import type { Migration } from './migrate.js';
import { SET_APPLY_MIGRATION } from './schema-set-apply.js';
import { ALLOCATED_BYTES_MIGRATION } from './schema-allocated.js';

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
  {
    version: 5,
    name: 'group commit: typed batches (strata_apply)',
    sql: `
-- Group commit with typed batches: instead of SQL text (EXECUTEs of prepared statements with
-- literal values, parsed again inside strata_try), a server sends the changes of a whole group
-- as one call with arrays of values: op codes, and the numbers, texts and byte strings they
-- consume in order. Each op runs the same SQL as the prepared statement of the same name
-- (src/meta/engines/postgres/sql.ts) with its plan cached in this session, so PostgreSQL
-- parses nothing per change. Each member (one server transaction) runs in the
-- subtransaction of its own exception block, as in strata_try: a member that fails undoes only
-- its own writes and is returned as a row (member, SQLSTATE, constraint, message); the others
-- commit with the call's transaction. The *_end arrays give where each member's ops and values
-- end (1-based, inclusive).
CREATE FUNCTION strata_apply(ops int[], nums bigint[], texts text[], blobs bytea[],
  op_end int[], num_end int[], text_end int[], blob_end int[])
RETURNS TABLE (member int, state text, constraint_name text, message text)
LANGUAGE plpgsql AS $fn$
DECLARE
  o int := 1; n int := 1; t int := 1; b int := 1; m int; ok boolean;
BEGIN
  FOR m IN 1 .. coalesce(array_length(op_end, 1), 0) LOOP
    BEGIN
      WHILE o <= op_end[m] LOOP
        CASE ops[o]
        WHEN 1 THEN -- expect_inode
          PERFORM 1 FROM inode WHERE ino = nums[n] AND mode = nums[n+1] AND uid = nums[n+2] AND gid = nums[n+3] AND nlink = nums[n+4] AND size = nums[n+5] AND rdev = nums[n+6] AND atime_s = nums[n+7] AND atime_ns = nums[n+8] AND mtime_s = nums[n+9] AND mtime_ns = nums[n+10] AND ctime_s = nums[n+11] AND ctime_ns = nums[n+12] AND gen = nums[n+13] AND parent = nums[n+14] AND target IS NOT DISTINCT FROM texts[t] FOR UPDATE;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'cached inode % changed meanwhile', nums[n] USING ERRCODE = 'SR001';
          END IF;
          n := n + 15; t := t + 1;
        WHEN 2 THEN -- update_checked_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] AND mode = nums[n+1] AND uid = nums[n+2] AND gid = nums[n+3] AND nlink = nums[n+4] AND size = nums[n+5] AND rdev = nums[n+6] AND atime_s = nums[n+7] AND atime_ns = nums[n+8] AND mtime_s = nums[n+9] AND mtime_ns = nums[n+10] AND ctime_s = nums[n+11] AND ctime_ns = nums[n+12] AND gen = nums[n+13] AND parent = nums[n+14] AND target IS NOT DISTINCT FROM texts[t] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
                SELECT ver, nums[n+29], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target FROM old WHERE ver < nums[n+30] RETURNING 1),
          u AS (UPDATE inode SET mode = nums[n+15], uid = nums[n+16], gid = nums[n+17], nlink = nums[n+18], size = nums[n+19], rdev = nums[n+20], atime_s = nums[n+21], atime_ns = nums[n+22], mtime_s = nums[n+23], mtime_ns = nums[n+24], ctime_s = nums[n+25], ctime_ns = nums[n+26], gen = nums[n+27], parent = nums[n+28], target = texts[t+1], ver = nums[n+29]
                FROM (SELECT count(*) FROM h) AS after_history
                WHERE inode.ino = nums[n] AND EXISTS (SELECT 1 FROM old) RETURNING 1)
          SELECT EXISTS (SELECT 1 FROM u) INTO ok;
          IF NOT ok THEN
            RAISE EXCEPTION 'cached inode % changed meanwhile', nums[n] USING ERRCODE = 'SR001';
          END IF;
          n := n + 31; t := t + 2;
        WHEN 3 THEN -- expect_dentry
          PERFORM 1 FROM dentry WHERE parent = nums[n] AND name = texts[t] AND ino = nums[n+1]
            AND type = nums[n+2] AND cursor = nums[n+3] FOR UPDATE;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'cached entry %/% changed meanwhile', nums[n], texts[t] USING ERRCODE = 'SR001';
          END IF;
          n := n + 4; t := t + 1;
        WHEN 4 THEN -- expect_no_dentry
          IF EXISTS (SELECT 1 FROM dentry WHERE parent = nums[n] AND name = texts[t]) THEN
            RAISE EXCEPTION 'cached absent entry %/% changed meanwhile', nums[n], texts[t] USING ERRCODE = 'SR001';
          END IF;
          n := n + 1; t := t + 1;
        WHEN 5 THEN -- expect_xattr
          PERFORM 1 FROM xattr WHERE ino = nums[n] AND name = texts[t] AND value = blobs[b] FOR UPDATE;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'cached xattr %/% changed meanwhile', nums[n], texts[t] USING ERRCODE = 'SR001';
          END IF;
          n := n + 1; t := t + 1; b := b + 1;
        WHEN 6 THEN -- expect_no_xattr
          IF EXISTS (SELECT 1 FROM xattr WHERE ino = nums[n] AND name = texts[t]) THEN
            RAISE EXCEPTION 'cached absent xattr %/% changed meanwhile', nums[n], texts[t] USING ERRCODE = 'SR001';
          END IF;
          n := n + 1; t := t + 1;
        WHEN 7 THEN -- insert_inode
          INSERT INTO inode (ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, ver) VALUES (nums[n], nums[n+1], nums[n+2], nums[n+3], nums[n+4], nums[n+5], nums[n+6], nums[n+7], nums[n+8], nums[n+9], nums[n+10], nums[n+11], nums[n+12], nums[n+13], nums[n+14], texts[t], nums[n+15]);
          n := n + 16; t := t + 1;
        WHEN 8 THEN -- update_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
                SELECT ver, nums[n+15], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target FROM old WHERE ver < nums[n+16] RETURNING 1)
          UPDATE inode SET mode = nums[n+1], uid = nums[n+2], gid = nums[n+3], nlink = nums[n+4], size = nums[n+5], rdev = nums[n+6], atime_s = nums[n+7], atime_ns = nums[n+8], mtime_s = nums[n+9], mtime_ns = nums[n+10], ctime_s = nums[n+11], ctime_ns = nums[n+12], gen = nums[n+13], parent = nums[n+14], target = texts[t], ver = nums[n+15]
          FROM (SELECT count(*) FROM h) AS after_history WHERE inode.ino = nums[n];
          n := n + 17; t := t + 1;
        WHEN 9 THEN -- put_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
                SELECT ver, nums[n+15], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target FROM old WHERE ver < nums[n+16] RETURNING 1)
          INSERT INTO inode (ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, ver)
          SELECT nums[n], nums[n+1], nums[n+2], nums[n+3], nums[n+4], nums[n+5], nums[n+6], nums[n+7], nums[n+8], nums[n+9], nums[n+10], nums[n+11], nums[n+12], nums[n+13], nums[n+14], texts[t], nums[n+15] FROM (SELECT count(*) FROM h) AS after_history
          ON CONFLICT (ino) DO UPDATE SET mode = EXCLUDED.mode, uid = EXCLUDED.uid, gid = EXCLUDED.gid,
            nlink = EXCLUDED.nlink, size = EXCLUDED.size, rdev = EXCLUDED.rdev,
            atime_s = EXCLUDED.atime_s, atime_ns = EXCLUDED.atime_ns,
            mtime_s = EXCLUDED.mtime_s, mtime_ns = EXCLUDED.mtime_ns,
            ctime_s = EXCLUDED.ctime_s, ctime_ns = EXCLUDED.ctime_ns,
            gen = EXCLUDED.gen, parent = EXCLUDED.parent, target = EXCLUDED.target, ver = EXCLUDED.ver;
          n := n + 17; t := t + 1;
        WHEN 10 THEN -- delete_inode
          WITH di AS (DELETE FROM inode WHERE ino = nums[n] RETURNING *),
          hi AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target)
                 SELECT ver, nums[n+1], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target FROM di WHERE ver < nums[n+2]),
          dx AS (DELETE FROM xattr WHERE ino = nums[n] RETURNING *),
          hx AS (INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
                 SELECT ino, name, ver, nums[n+1], value FROM dx WHERE ver < nums[n+2]),
          dc AS (DELETE FROM chunk WHERE ino = nums[n] RETURNING *),
          hc AS (INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
                 SELECT ino, idx, ver, nums[n+1], slices FROM dc WHERE ver < nums[n+2])
          SELECT true INTO ok;
          n := n + 3;
        WHEN 11 THEN -- insert_dentry
          INSERT INTO dentry (parent, name, ino, type, cursor, ver)
          VALUES (nums[n], texts[t], nums[n+1], nums[n+2], nums[n+3], nums[n+4]);
          n := n + 5; t := t + 1;
        WHEN 12 THEN -- put_dentry
          WITH old AS (SELECT * FROM dentry WHERE parent = nums[n] AND name = texts[t] FOR UPDATE),
          h AS (INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
                SELECT parent, name, ver, nums[n+4], ino, type, cursor FROM old WHERE ver < nums[n+5] RETURNING 1)
          INSERT INTO dentry (parent, name, ino, type, cursor, ver)
          SELECT nums[n], texts[t], nums[n+1], nums[n+2], nums[n+3], nums[n+4]
          FROM (SELECT count(*) FROM h) AS after_history
          ON CONFLICT (parent, name) DO UPDATE SET ino = EXCLUDED.ino, type = EXCLUDED.type,
            cursor = EXCLUDED.cursor, ver = EXCLUDED.ver;
          n := n + 6; t := t + 1;
        WHEN 13 THEN -- delete_dentry
          WITH d AS (DELETE FROM dentry WHERE parent = nums[n] AND name = texts[t] RETURNING *)
          INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
          SELECT parent, name, ver, nums[n+1], ino, type, cursor FROM d WHERE ver < nums[n+2];
          n := n + 3; t := t + 1;
        WHEN 14 THEN -- put_xattr
          WITH old AS (SELECT * FROM xattr WHERE ino = nums[n] AND name = texts[t] FOR UPDATE),
          h AS (INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
                SELECT ino, name, ver, nums[n+1], value FROM old WHERE ver < nums[n+2] RETURNING 1)
          INSERT INTO xattr (ino, name, value, ver)
          SELECT nums[n], texts[t], blobs[b], nums[n+1] FROM (SELECT count(*) FROM h) AS after_history
          ON CONFLICT (ino, name) DO UPDATE SET value = EXCLUDED.value, ver = EXCLUDED.ver;
          n := n + 3; t := t + 1; b := b + 1;
        WHEN 15 THEN -- delete_xattr
          WITH d AS (DELETE FROM xattr WHERE ino = nums[n] AND name = texts[t] RETURNING *)
          INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
          SELECT ino, name, ver, nums[n+1], value FROM d WHERE ver < nums[n+2];
          n := n + 3; t := t + 1;
        WHEN 16 THEN -- put_chunk
          WITH old AS (SELECT * FROM chunk WHERE ino = nums[n] AND idx = nums[n+1] FOR UPDATE),
          h AS (INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
                SELECT ino, idx, ver, nums[n+2], slices FROM old WHERE ver < nums[n+3] RETURNING 1)
          INSERT INTO chunk (ino, idx, slices, ver)
          SELECT nums[n], nums[n+1], blobs[b], nums[n+2] FROM (SELECT count(*) FROM h) AS after_history
          ON CONFLICT (ino, idx) DO UPDATE SET slices = EXCLUDED.slices, ver = EXCLUDED.ver;
          n := n + 4; b := b + 1;
        WHEN 17 THEN -- delete_chunk
          WITH d AS (DELETE FROM chunk WHERE ino = nums[n] AND idx = nums[n+1] RETURNING *)
          INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices)
          SELECT ino, idx, ver, nums[n+2], slices FROM d WHERE ver < nums[n+3];
          n := n + 4;
        WHEN 18 THEN -- add_sharded_counter
          INSERT INTO counter_shard AS c (name, shard, value) VALUES (texts[t], nums[n], nums[n+1])
          ON CONFLICT (name, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
          n := n + 2; t := t + 1;
        WHEN 19 THEN -- put_call_outcome
          INSERT INTO call_outcome AS c (client_id, seq, reply, at_us) VALUES (texts[t], nums[n], blobs[b], nums[n+1])
          ON CONFLICT (client_id, seq) DO UPDATE SET reply = EXCLUDED.reply, at_us = EXCLUDED.at_us;
          n := n + 2; t := t + 1; b := b + 1;
        WHEN 20 THEN -- record_deleted_slice
          INSERT INTO deleted_slice (id, size, deleted_us) VALUES (nums[n], nums[n+1], nums[n+2]);
          n := n + 3;
        END CASE;
        o := o + 1;
      END LOOP;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
      member := m; state := SQLSTATE; message := SQLERRM;
      RETURN NEXT;
    END;
    -- After a failure the cursors stopped inside the member: go on from where the next begins.
    o := op_end[m] + 1; n := num_end[m] + 1; t := text_end[m] + 1; b := blob_end[m] + 1;
  END LOOP;
END
$fn$;
`,
  },
  {
    version: 6,
    name: 'deleted slice log indexed by slice id (object GC)',
    sql: `
-- The GC (src/ops/gc.ts) looks up a slice's latest deletion and forgets single rows by id.
CREATE INDEX deleted_slice_id ON deleted_slice (id, deleted_us);
`,
  },
  {
    version: 7,
    name: 'session slice floors (reclaiming leaked blocks)',
    sql: `
-- The lowest slice id a session's mount may still commit (src/meta/reclaim-floor.ts); NULL until
-- it reports one, and for mounts older than floors (they block reclaiming).
ALTER TABLE session ADD COLUMN slice_floor bigint;
`,
  },
  ALLOCATED_BYTES_MIGRATION,
  SET_APPLY_MIGRATION,
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
