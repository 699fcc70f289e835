import type { Database } from 'better-sqlite3';
import { coveredBytes } from '../../allocation.js';
import { decodeSlices } from '../../slice-codec.js';

/** Regular files: st_mode & S_IFMT = S_IFREG (other inodes have no data map and keep 0). */
const REGULAR = '(mode & 61440) = 32768';

/**
 * Schema 6 adds each regular file's allocated bytes (inode.alloc, inode_hist.alloc): the bytes its
 * chunks cover with data (src/meta/allocation.ts). A volume of an older schema gets the column and
 * its values computed from the chunks it has, by SQLite itself row after row (a function on each
 * stored slice list), so nothing is held in memory. A history image takes the chunks as they
 * were when it became current (its from_us), the instant its own transaction wrote both. The
 * used-bytes counter (statfs) becomes the sum of the files' allocated bytes in 4 KiB units, as the
 * service now keeps it. Returns false when the column is there already.
 */
export function migrateAllocatedBytes(db: Database): boolean {
  const hasAlloc = (table: string) =>
    (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]).includes(
      'alloc',
    );
  if (hasAlloc('inode')) return false;
  // A history table rebuilt by an earlier step of this open (history-keys.ts) has it already.
  if (!hasAlloc('inode_hist')) db.exec('ALTER TABLE inode_hist ADD COLUMN alloc INTEGER NOT NULL DEFAULT 0');
  db.function('strata_covered_bytes', { deterministic: true }, (slices: unknown) =>
    coveredBytes(decodeSlices(slices as Buffer)),
  );
  db.exec(`
ALTER TABLE inode ADD COLUMN alloc INTEGER NOT NULL DEFAULT 0;
UPDATE inode SET alloc = (
  SELECT coalesce(sum(strata_covered_bytes(c.slices)), 0) FROM chunk c WHERE c.ino = inode.ino
) WHERE ${REGULAR};
UPDATE inode_hist SET alloc = (
  SELECT coalesce(sum(strata_covered_bytes(c.slices)), 0) FROM chunk c
  WHERE c.ino = inode_hist.ino AND c.ver <= inode_hist.from_us
) + (
  SELECT coalesce(sum(strata_covered_bytes(h.slices)), 0) FROM chunk_hist h
  WHERE h.ino = inode_hist.ino AND h.from_us <= inode_hist.from_us AND h.to_us > inode_hist.from_us
) WHERE ${REGULAR};
INSERT OR REPLACE INTO counter (name, value)
  SELECT 'used_bytes', coalesce(sum((alloc + 4095) / 4096 * 4096), 0) FROM inode WHERE ${REGULAR};
`);
  return true;
}
