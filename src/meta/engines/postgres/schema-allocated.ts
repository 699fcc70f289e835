import type { Migration } from './migrate.js';

/**
 * Migration 8: each regular file's allocated bytes (st_blocks), the bytes its chunks cover with
 * data (src/meta/allocation.ts), as inode.alloc and inode_hist.alloc.
 *
 * An existing volume gets them computed from the chunks it has, in the database, row after row:
 * strata_covered_bytes decodes a stored slice list (src/meta/slice-codec.ts: 28 bytes per slice,
 * little-endian; id 0 is a hole) and lays the slices in order, later on top, as ChunkCoverage
 * does. A history image takes the chunks as they were when it became current (its from_us), the
 * instant its own transaction wrote both. The used-bytes counter (statfs) becomes the sum of the
 * files' allocated bytes in 4 KiB units, as the service keeps it from now on.
 *
 * strata_apply2 is strata_apply (migration 5) with alloc after target in every inode op; the
 * old function stays for servers of the previous release still running during an upgrade (their
 * writes leave alloc as it was, or 0 for a new inode: strata fsck --repair puts it right).
 */
export const ALLOCATED_BYTES_MIGRATION: Migration = {
  version: 8,
  name: 'allocated bytes per file (st_blocks)',
  sql: `
ALTER TABLE inode ADD COLUMN alloc bigint NOT NULL DEFAULT 0;
ALTER TABLE inode_hist ADD COLUMN alloc bigint NOT NULL DEFAULT 0;

CREATE FUNCTION strata_covered_bytes(slices bytea) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  n int := length(slices) / 28;
  starts bigint[] := '{}'; ends bigint[] := '{}'; holes boolean[] := '{}';
  points bigint[]; total bigint := 0; i int; j int; at int; off bigint; len bigint;
BEGIN
  FOR i IN 0 .. n - 1 LOOP
    at := i * 28;
    off := get_byte(slices, at + 12) + get_byte(slices, at + 13) * 256
      + get_byte(slices, at + 14) * 65536 + get_byte(slices, at + 15)::bigint * 16777216;
    len := get_byte(slices, at + 20) + get_byte(slices, at + 21) * 256
      + get_byte(slices, at + 22) * 65536 + get_byte(slices, at + 23)::bigint * 16777216;
    starts := starts || off;
    ends := ends || (off + len);
    holes := holes || (substring(slices FROM at + 1 FOR 8) = '\\x0000000000000000'::bytea);
  END LOOP;
  SELECT array_agg(DISTINCT p ORDER BY p) INTO points FROM unnest(starts || ends) AS p;
  -- Each stretch between two consecutive edges belongs to the topmost slice over it.
  FOR j IN 1 .. coalesce(array_length(points, 1), 0) - 1 LOOP
    FOR i IN REVERSE n .. 1 LOOP
      IF starts[i] <= points[j] AND ends[i] >= points[j + 1] THEN
        IF NOT holes[i] THEN total := total + points[j + 1] - points[j]; END IF;
        EXIT;
      END IF;
    END LOOP;
  END LOOP;
  RETURN total;
END
$fn$;

UPDATE inode SET alloc = (
  SELECT coalesce(sum(strata_covered_bytes(c.slices)), 0) FROM chunk c WHERE c.ino = inode.ino
) WHERE (mode & 61440) = 32768;
UPDATE inode_hist SET alloc = (
  SELECT coalesce(sum(strata_covered_bytes(c.slices)), 0) FROM chunk c
  WHERE c.ino = inode_hist.ino AND c.ver <= inode_hist.from_us
) + (
  SELECT coalesce(sum(strata_covered_bytes(h.slices)), 0) FROM chunk_hist h
  WHERE h.ino = inode_hist.ino AND h.from_us <= inode_hist.from_us AND h.to_us > inode_hist.from_us
) WHERE (mode & 61440) = 32768;
DELETE FROM counter_shard WHERE name = 'used_bytes';
INSERT INTO counter (name, value)
  SELECT 'used_bytes', coalesce(sum((alloc + 4095) / 4096 * 4096), 0) FROM inode WHERE (mode & 61440) = 32768
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;

CREATE FUNCTION strata_apply2(ops int[], nums bigint[], texts text[], blobs bytea[],
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
          PERFORM 1 FROM inode WHERE ino = nums[n] AND mode = nums[n+1] AND uid = nums[n+2] AND gid = nums[n+3] AND nlink = nums[n+4] AND size = nums[n+5] AND rdev = nums[n+6] AND atime_s = nums[n+7] AND atime_ns = nums[n+8] AND mtime_s = nums[n+9] AND mtime_ns = nums[n+10] AND ctime_s = nums[n+11] AND ctime_ns = nums[n+12] AND gen = nums[n+13] AND parent = nums[n+14] AND target IS NOT DISTINCT FROM texts[t] AND alloc = nums[n+15] FOR UPDATE;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'cached inode % changed meanwhile', nums[n] USING ERRCODE = 'SR001';
          END IF;
          n := n + 16; t := t + 1;
        WHEN 2 THEN -- update_checked_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] AND mode = nums[n+1] AND uid = nums[n+2] AND gid = nums[n+3] AND nlink = nums[n+4] AND size = nums[n+5] AND rdev = nums[n+6] AND atime_s = nums[n+7] AND atime_ns = nums[n+8] AND mtime_s = nums[n+9] AND mtime_ns = nums[n+10] AND ctime_s = nums[n+11] AND ctime_ns = nums[n+12] AND gen = nums[n+13] AND parent = nums[n+14] AND target IS NOT DISTINCT FROM texts[t] AND alloc = nums[n+15] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc)
                SELECT ver, nums[n+31], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc FROM old WHERE ver < nums[n+32] RETURNING 1),
          u AS (UPDATE inode SET mode = nums[n+16], uid = nums[n+17], gid = nums[n+18], nlink = nums[n+19], size = nums[n+20], rdev = nums[n+21], atime_s = nums[n+22], atime_ns = nums[n+23], mtime_s = nums[n+24], mtime_ns = nums[n+25], ctime_s = nums[n+26], ctime_ns = nums[n+27], gen = nums[n+28], parent = nums[n+29], target = texts[t+1], alloc = nums[n+30], ver = nums[n+31]
                FROM (SELECT count(*) FROM h) AS after_history
                WHERE inode.ino = nums[n] AND EXISTS (SELECT 1 FROM old) RETURNING 1)
          SELECT EXISTS (SELECT 1 FROM u) INTO ok;
          IF NOT ok THEN
            RAISE EXCEPTION 'cached inode % changed meanwhile', nums[n] USING ERRCODE = 'SR001';
          END IF;
          n := n + 33; t := t + 2;
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
          INSERT INTO inode (ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc, ver) VALUES (nums[n], nums[n+1], nums[n+2], nums[n+3], nums[n+4], nums[n+5], nums[n+6], nums[n+7], nums[n+8], nums[n+9], nums[n+10], nums[n+11], nums[n+12], nums[n+13], nums[n+14], texts[t], nums[n+15], nums[n+16]);
          n := n + 17; t := t + 1;
        WHEN 8 THEN -- update_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc)
                SELECT ver, nums[n+16], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc FROM old WHERE ver < nums[n+17] RETURNING 1)
          UPDATE inode SET mode = nums[n+1], uid = nums[n+2], gid = nums[n+3], nlink = nums[n+4], size = nums[n+5], rdev = nums[n+6], atime_s = nums[n+7], atime_ns = nums[n+8], mtime_s = nums[n+9], mtime_ns = nums[n+10], ctime_s = nums[n+11], ctime_ns = nums[n+12], gen = nums[n+13], parent = nums[n+14], target = texts[t], alloc = nums[n+15], ver = nums[n+16]
          FROM (SELECT count(*) FROM h) AS after_history WHERE inode.ino = nums[n];
          n := n + 18; t := t + 1;
        WHEN 9 THEN -- put_inode
          WITH old AS (SELECT * FROM inode WHERE ino = nums[n] FOR UPDATE),
          h AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc)
                SELECT ver, nums[n+16], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc FROM old WHERE ver < nums[n+17] RETURNING 1)
          INSERT INTO inode (ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc, ver)
          SELECT nums[n], nums[n+1], nums[n+2], nums[n+3], nums[n+4], nums[n+5], nums[n+6], nums[n+7], nums[n+8], nums[n+9], nums[n+10], nums[n+11], nums[n+12], nums[n+13], nums[n+14], texts[t], nums[n+15], nums[n+16] FROM (SELECT count(*) FROM h) AS after_history
          ON CONFLICT (ino) DO UPDATE SET mode = EXCLUDED.mode, uid = EXCLUDED.uid, gid = EXCLUDED.gid,
            nlink = EXCLUDED.nlink, size = EXCLUDED.size, rdev = EXCLUDED.rdev,
            atime_s = EXCLUDED.atime_s, atime_ns = EXCLUDED.atime_ns,
            mtime_s = EXCLUDED.mtime_s, mtime_ns = EXCLUDED.mtime_ns,
            ctime_s = EXCLUDED.ctime_s, ctime_ns = EXCLUDED.ctime_ns,
            gen = EXCLUDED.gen, parent = EXCLUDED.parent, target = EXCLUDED.target, alloc = EXCLUDED.alloc, ver = EXCLUDED.ver;
          n := n + 18; t := t + 1;
        WHEN 10 THEN -- delete_inode
          WITH di AS (DELETE FROM inode WHERE ino = nums[n] RETURNING *),
          hi AS (INSERT INTO inode_hist (from_us, to_us, ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc)
                 SELECT ver, nums[n+1], ino, mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc FROM di WHERE ver < nums[n+2]),
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
};
