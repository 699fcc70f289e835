import type { Migration } from './migrate.js';

const INODE_CHECKS = (n: string, t: string): string =>
  `ino = nums[${n}] AND mode = nums[${n}+1] AND uid = nums[${n}+2] AND gid = nums[${n}+3] AND nlink = nums[${n}+4] ` +
  `AND size = nums[${n}+5] AND rdev = nums[${n}+6] AND atime_s = nums[${n}+7] AND atime_ns = nums[${n}+8] ` +
  `AND mtime_s = nums[${n}+9] AND mtime_ns = nums[${n}+10] AND ctime_s = nums[${n}+11] AND ctime_ns = nums[${n}+12] ` +
  `AND gen = nums[${n}+13] AND parent = nums[${n}+14] AND target IS NOT DISTINCT FROM texts[${t}] AND alloc = nums[${n}+15]`;
// Spelled out here rather than taken from sql.ts: a released migration's text never changes.
const INODE_COLS =
  'ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc';
/** The ops of a group, one row each: its code and where its numbers, texts and byte strings start. */
const OPS_OF_GROUP = 'unnest(ops, opn, opt, opb) AS x(o, n, t, b)';

/**
 * Migration 9: strata_apply3, strata_apply2 (migration 8) with a set-based path. A group whose
 * members touch disjoint rows (the caller checks: apply.ts groupParameters) runs each kind of op
 * once for all members, as one statement over the group's arrays, instead of one statement per
 * op per member, each member in a subtransaction of its own: in a group of creates, PostgreSQL's
 * CPU went mostly to starting and ending those statements (executor start, SPI) rather than to
 * the rows. Rows touched by one member only commute with the other members' ops, so running all
 * checks first, then the writes by kind, gives what member after member gives. When anything
 * fails on that path (a stale cached row, a name taken meanwhile, a deadlock) it is undone as a
 * whole and the group runs member by member through strata_apply2, which reports each failing
 * member; a row (member 0, state 'fallback') then tells the caller it happened.
 *
 * opn, opt, opb: per op (in group order), the 1-based position of its first number, text and
 * byte string in nums, texts and blobs; counts: per op code (1-based), how many ops have it.
 * opn NULL = member by member at once.
 */
export const SET_APPLY_MIGRATION: Migration = {
  version: 9,
  name: 'set-based group apply (strata_apply3)',
  sql: `
CREATE FUNCTION strata_apply3(ops int[], nums bigint[], texts text[], blobs bytea[],
  op_end int[], num_end int[], text_end int[], blob_end int[], opn int[], opt int[], opb int[], counts int[])
RETURNS TABLE (member int, state text, constraint_name text, message text)
LANGUAGE plpgsql AS $fn$
DECLARE
  k bigint;
BEGIN
  IF opn IS NOT NULL THEN
    BEGIN
      -- Checks of cached rows, each row locked as the member-by-member path locks it.
      IF counts[1] > 0 THEN -- expect_inode
        SELECT count(*) INTO k FROM ${OPS_OF_GROUP}
          JOIN LATERAL (SELECT 1 FROM inode WHERE ${INODE_CHECKS('x.n', 'x.t')} FOR UPDATE) i ON true
          WHERE x.o = 1;
        IF k <> counts[1] THEN RAISE EXCEPTION 'a cached inode changed meanwhile' USING ERRCODE = 'SR001'; END IF;
      END IF;
      IF counts[3] > 0 THEN -- expect_dentry
        SELECT count(*) INTO k FROM ${OPS_OF_GROUP}
          JOIN LATERAL (SELECT 1 FROM dentry WHERE parent = nums[x.n] AND name = texts[x.t] AND ino = nums[x.n+1]
            AND type = nums[x.n+2] AND cursor = nums[x.n+3] FOR UPDATE) d ON true
          WHERE x.o = 3;
        IF k <> counts[3] THEN RAISE EXCEPTION 'a cached entry changed meanwhile' USING ERRCODE = 'SR001'; END IF;
      END IF;
      IF counts[4] > 0 THEN -- expect_no_dentry
        IF EXISTS (SELECT 1 FROM ${OPS_OF_GROUP} JOIN dentry d ON d.parent = nums[x.n] AND d.name = texts[x.t] WHERE x.o = 4) THEN
          RAISE EXCEPTION 'a cached absent entry changed meanwhile' USING ERRCODE = 'SR001';
        END IF;
      END IF;
      IF counts[5] > 0 THEN -- expect_xattr
        SELECT count(*) INTO k FROM ${OPS_OF_GROUP}
          JOIN LATERAL (SELECT 1 FROM xattr WHERE ino = nums[x.n] AND name = texts[x.t] AND value = blobs[x.b] FOR UPDATE) a ON true
          WHERE x.o = 5;
        IF k <> counts[5] THEN RAISE EXCEPTION 'a cached xattr changed meanwhile' USING ERRCODE = 'SR001'; END IF;
      END IF;
      IF counts[6] > 0 THEN -- expect_no_xattr
        IF EXISTS (SELECT 1 FROM ${OPS_OF_GROUP} JOIN xattr a ON a.ino = nums[x.n] AND a.name = texts[x.t] WHERE x.o = 6) THEN
          RAISE EXCEPTION 'a cached absent xattr changed meanwhile' USING ERRCODE = 'SR001';
        END IF;
      END IF;
      IF counts[2] > 0 THEN -- update_checked_inode
        WITH old AS (
          SELECT i.*, x.n AS xn, x.t AS xt FROM ${OPS_OF_GROUP}
            JOIN LATERAL (SELECT * FROM inode WHERE ${INODE_CHECKS('x.n', 'x.t')} FOR UPDATE) i ON true
            WHERE x.o = 2),
        h AS (INSERT INTO inode_hist (from_us, to_us, ${INODE_COLS})
              SELECT ver, nums[xn+31], ${INODE_COLS} FROM old WHERE ver < nums[xn+32] RETURNING 1),
        u AS (UPDATE inode SET mode = nums[old.xn+16], uid = nums[old.xn+17], gid = nums[old.xn+18],
                nlink = nums[old.xn+19], size = nums[old.xn+20], rdev = nums[old.xn+21],
                atime_s = nums[old.xn+22], atime_ns = nums[old.xn+23], mtime_s = nums[old.xn+24],
                mtime_ns = nums[old.xn+25], ctime_s = nums[old.xn+26], ctime_ns = nums[old.xn+27],
                gen = nums[old.xn+28], parent = nums[old.xn+29], target = texts[old.xt+1],
                alloc = nums[old.xn+30], ver = nums[old.xn+31]
              FROM old, (SELECT count(*) FROM h) AS after_history WHERE inode.ino = old.ino RETURNING 1)
        SELECT count(*) INTO k FROM u;
        IF k <> counts[2] THEN RAISE EXCEPTION 'a cached inode changed meanwhile' USING ERRCODE = 'SR001'; END IF;
      END IF;
      IF counts[13] > 0 THEN -- delete_dentry
        WITH d AS (DELETE FROM dentry USING ${OPS_OF_GROUP}
                   WHERE x.o = 13 AND dentry.parent = nums[x.n] AND dentry.name = texts[x.t]
                   RETURNING dentry.parent, dentry.name, dentry.ver, dentry.ino, dentry.type, dentry.cursor, x.n AS xn)
        INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
        SELECT parent, name, ver, nums[xn+1], ino, type, cursor FROM d WHERE ver < nums[xn+2];
      END IF;
      IF counts[7] > 0 THEN -- insert_inode
        INSERT INTO inode (${INODE_COLS}, ver)
        SELECT nums[x.n], nums[x.n+1], nums[x.n+2], nums[x.n+3], nums[x.n+4], nums[x.n+5], nums[x.n+6], nums[x.n+7],
          nums[x.n+8], nums[x.n+9], nums[x.n+10], nums[x.n+11], nums[x.n+12], nums[x.n+13], nums[x.n+14],
          texts[x.t], nums[x.n+15], nums[x.n+16]
        FROM ${OPS_OF_GROUP} WHERE x.o = 7;
      END IF;
      IF counts[11] > 0 THEN -- insert_dentry
        INSERT INTO dentry (parent, name, ino, type, cursor, ver)
        SELECT nums[x.n], texts[x.t], nums[x.n+1], nums[x.n+2], nums[x.n+3], nums[x.n+4] FROM ${OPS_OF_GROUP} WHERE x.o = 11;
      END IF;
      IF counts[12] > 0 THEN -- put_dentry
        WITH a AS (SELECT x.n, x.t FROM ${OPS_OF_GROUP} WHERE x.o = 12),
        old AS (SELECT d.*, a.n AS xn FROM a
                JOIN LATERAL (SELECT * FROM dentry WHERE parent = nums[a.n] AND name = texts[a.t] FOR UPDATE) d ON true),
        h AS (INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor)
              SELECT parent, name, ver, nums[xn+4], ino, type, cursor FROM old WHERE ver < nums[xn+5] RETURNING 1)
        INSERT INTO dentry (parent, name, ino, type, cursor, ver)
        SELECT nums[a.n], texts[a.t], nums[a.n+1], nums[a.n+2], nums[a.n+3], nums[a.n+4]
        FROM a, (SELECT count(*) FROM h) AS after_history
        ON CONFLICT (parent, name) DO UPDATE SET ino = EXCLUDED.ino, type = EXCLUDED.type,
          cursor = EXCLUDED.cursor, ver = EXCLUDED.ver;
      END IF;
      IF counts[14] > 0 THEN -- put_xattr
        WITH a AS (SELECT x.n, x.t, x.b FROM ${OPS_OF_GROUP} WHERE x.o = 14),
        old AS (SELECT v.*, a.n AS xn FROM a
                JOIN LATERAL (SELECT * FROM xattr WHERE ino = nums[a.n] AND name = texts[a.t] FOR UPDATE) v ON true),
        h AS (INSERT INTO xattr_hist (ino, name, from_us, to_us, value)
              SELECT ino, name, ver, nums[xn+1], value FROM old WHERE ver < nums[xn+2] RETURNING 1)
        INSERT INTO xattr (ino, name, value, ver)
        SELECT nums[a.n], texts[a.t], blobs[a.b], nums[a.n+1] FROM a, (SELECT count(*) FROM h) AS after_history
        ON CONFLICT (ino, name) DO UPDATE SET value = EXCLUDED.value, ver = EXCLUDED.ver;
      END IF;
      IF counts[18] > 0 THEN -- add_sharded_counter (deltas to one shard added up first)
        INSERT INTO counter_shard AS c (name, shard, value)
        SELECT texts[x.t], nums[x.n], sum(nums[x.n+1]) FROM ${OPS_OF_GROUP} WHERE x.o = 18 GROUP BY 1, 2
        ON CONFLICT (name, shard) DO UPDATE SET value = c.value + EXCLUDED.value;
      END IF;
      IF counts[19] > 0 THEN -- put_call_outcome
        INSERT INTO call_outcome AS c (client_id, seq, reply, at_us)
        SELECT texts[x.t], nums[x.n], blobs[x.b], nums[x.n+1] FROM ${OPS_OF_GROUP} WHERE x.o = 19
        ON CONFLICT (client_id, seq) DO UPDATE SET reply = EXCLUDED.reply, at_us = EXCLUDED.at_us;
      END IF;
      RETURN;
    EXCEPTION WHEN OTHERS THEN
      member := 0; state := 'fallback'; constraint_name := NULL; message := SQLERRM;
      RETURN NEXT;
    END;
  END IF;
  RETURN QUERY SELECT * FROM strata_apply2(ops, nums, texts, blobs, op_end, num_end, text_end, blob_end);
END
$fn$;
`,
};

/** Op codes of strata_apply2 that strata_apply3's set-based path runs (any other: member by member). */
export const SET_APPLY_OPS: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 18, 19]);
