// The SQL of the SQLite engine, prepared per connection: the reader's (ReadStatements) and the
// writer's (WriteStatements). Kept apart from tx.ts, which decides when each one runs (history
// copies, batch write-back), so the SQL text and the transaction logic can be read separately.
import type { Database, Statement } from 'better-sqlite3';
import { asIno, type Ino } from '../../../common/index.js';
import type { DentryRow, InodeRow } from '../../engine.js';

const INODE_COLS =
  'mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target, alloc';

/** A raw row of `ReadStatements.inode`: ino, then INODE_COLS in their order. */
type N = number;
export type InodeArray = [N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, string | null, N];
/** A raw row of `ReadStatements.inodeHist`: an InodeArray, then from_us. */
export type InodeHistArray = [...InodeArray, N];

/** The InodeRow of a raw `ReadStatements.inode` row (same fields as rows.ts toInode). */
export function inodeFromArray(r: InodeArray | InodeHistArray): InodeRow {
  return {
    ino: asIno(r[0]),
    mode: r[1],
    uid: r[2],
    gid: r[3],
    nlink: r[4],
    sizeBytes: r[5],
    rdev: r[6],
    atimeSec: r[7],
    atimeNsec: r[8],
    mtimeSec: r[9],
    mtimeNsec: r[10],
    ctimeSec: r[11],
    ctimeNsec: r[12],
    generation: r[13],
    parent: asIno(r[14]),
    target: r[15],
    allocatedBytes: r[16],
  };
}

/** A raw row of `ReadStatements.dentry` and `dentryAsOf`: ino, type, cursor. */
export type DentryArray = [N, N, N];
/** A raw row of `ReadStatements.dentryHist`: a DentryArray, then from_us. */
export type DentryHistArray = [...DentryArray, N];

/** The DentryRow of a raw dentry row of `name` in `parent`. */
export function dentryFromArray(parent: Ino, name: string, r: DentryArray | DentryHistArray): DentryRow {
  return { parent, name, ino: asIno(r[0]), type: r[1], cursor: r[2] };
}

/** Prepared statements of one connection. Prepared once: preparing costs more than running. */
export class ReadStatements {
  readonly inode: Statement;
  readonly inodeAsOf: Statement;
  readonly inodeHist: Statement;
  readonly dentry: Statement;
  readonly dentryAsOf: Statement;
  readonly dentryHist: Statement;
  readonly listDir: Statement;
  readonly listDirAsOf: Statement;
  readonly hasEntries: Statement;
  readonly xattr: Statement;
  readonly xattrAsOf: Statement;
  readonly xattrHist: Statement;
  readonly listXattrs: Statement;
  readonly listXattrsAsOf: Statement;
  readonly chunk: Statement;
  readonly chunkAsOf: Statement;
  readonly chunkHist: Statement;
  readonly chunkIndexes: Statement;
  readonly chunkIndexesAsOf: Statement;
  readonly setting: Statement;
  readonly counter: Statement;
  readonly session: Statement;
  readonly sessions: Statement;
  readonly locks: Statement;
  readonly openCount: Statement;
  readonly deletedSlices: Statement;
  readonly sliceRefs: Statement;
  readonly sliceLastDeleted: Statement;

  constructor(db: Database) {
    // The two reads behind getattr and lookup return arrays (raw): better-sqlite3 builds them ~35%
    // faster than objects with named keys (a getattr's statement 8.5 -> 5.7 µs).
    this.inode = db.prepare(`SELECT ino, ${INODE_COLS} FROM inode WHERE ino = ?`).raw(true);
    // The as-of reads of a lookup (up to four statements: the name and the inode, each in the
    // current table and then in history) return arrays too.
    this.inodeAsOf = db.prepare(`SELECT ino, ${INODE_COLS} FROM inode WHERE ino = ? AND ver <= ?`).raw(true);
    this.inodeHist = db
      .prepare(
        `SELECT ino, ${INODE_COLS}, from_us FROM inode_hist WHERE ino = ? AND to_us > ? ORDER BY to_us LIMIT 1`,
      )
      .raw(true);
    this.dentry = db.prepare('SELECT ino, type, cursor FROM dentry WHERE parent = ? AND name = ?').raw(true);
    this.dentryAsOf = db
      .prepare('SELECT ino, type, cursor FROM dentry WHERE parent = ? AND name = ? AND ver <= ?')
      .raw(true);
    this.dentryHist = db
      .prepare(
        'SELECT ino, type, cursor, from_us FROM dentry_hist ' +
          'WHERE parent = ? AND name = ? AND to_us > ? ORDER BY to_us LIMIT 1',
      )
      .raw(true);
    this.listDir = db.prepare(
      'SELECT parent, name, ino, type, cursor FROM dentry WHERE parent = ? AND cursor > ? ORDER BY cursor LIMIT ?',
    );
    this.listDirAsOf = db.prepare(
      'SELECT parent, name, ino, type, cursor FROM dentry WHERE parent = ? AND cursor > ? AND ver <= ? ' +
        'UNION ALL SELECT parent, name, ino, type, cursor FROM dentry_hist ' +
        'WHERE parent = ? AND cursor > ? AND from_us <= ? AND to_us > ? ORDER BY cursor LIMIT ?',
    );
    this.hasEntries = db.prepare('SELECT 1 FROM dentry WHERE parent = ? LIMIT 1').pluck();
    this.xattr = db.prepare('SELECT value FROM xattr WHERE ino = ? AND name = ?').pluck();
    this.xattrAsOf = db.prepare('SELECT value FROM xattr WHERE ino = ? AND name = ? AND ver <= ?').pluck();
    this.xattrHist = db.prepare(
      'SELECT value, from_us FROM xattr_hist WHERE ino = ? AND name = ? AND to_us > ? ORDER BY to_us LIMIT 1',
    );
    this.listXattrs = db.prepare('SELECT name FROM xattr WHERE ino = ? ORDER BY name').pluck();
    this.listXattrsAsOf = db
      .prepare(
        'SELECT name FROM xattr WHERE ino = ? AND ver <= ? UNION ' +
          'SELECT name FROM xattr_hist WHERE ino = ? AND from_us <= ? AND to_us > ? ORDER BY name',
      )
      .pluck();
    this.chunk = db.prepare('SELECT slices FROM chunk WHERE ino = ? AND idx = ?').pluck();
    this.chunkAsOf = db.prepare('SELECT slices FROM chunk WHERE ino = ? AND idx = ? AND ver <= ?').pluck();
    this.chunkHist = db.prepare(
      'SELECT slices, from_us FROM chunk_hist WHERE ino = ? AND idx = ? AND to_us > ? ORDER BY to_us LIMIT 1',
    );
    this.chunkIndexes = db
      .prepare('SELECT idx FROM chunk WHERE ino = ? AND idx BETWEEN ? AND ? ORDER BY idx')
      .pluck();
    this.chunkIndexesAsOf = db
      .prepare(
        'SELECT idx FROM chunk WHERE ino = ? AND idx BETWEEN ? AND ? AND ver <= ? UNION ' +
          'SELECT idx FROM chunk_hist WHERE ino = ? AND idx BETWEEN ? AND ? AND from_us <= ? AND to_us > ? ' +
          'ORDER BY idx',
      )
      .pluck();
    this.setting = db.prepare('SELECT value FROM setting WHERE key = ?').pluck();
    this.counter = db.prepare('SELECT value FROM counter WHERE name = ?').pluck();
    this.session = db.prepare(
      'SELECT id, info, started_us, heartbeat_us, slice_floor FROM session WHERE id = ?',
    );
    this.sessions = db.prepare(
      'SELECT id, info, started_us, heartbeat_us, slice_floor FROM session ORDER BY id',
    );
    this.locks = db.prepare(
      'SELECT ino, session, owner, flock, type, start, end, pid FROM lock WHERE ino = ?',
    );
    this.openCount = db.prepare('SELECT coalesce(sum(count), 0) FROM open_file WHERE ino = ?').pluck();
    this.deletedSlices = db.prepare(
      'SELECT id, size, deleted_us FROM deleted_slice WHERE deleted_us < ? ORDER BY deleted_us, id LIMIT ?',
    );
    this.sliceRefs = db.prepare('SELECT refs FROM slice_ref WHERE id = ?').pluck();
    this.sliceLastDeleted = db.prepare('SELECT max(deleted_us) FROM deleted_slice WHERE id = ?').pluck();
  }
}

export class WriteStatements extends ReadStatements {
  readonly inodeKeep: Statement;
  readonly inodePut: Statement;
  readonly inodeDelete: Statement;
  readonly dentryKeep: Statement;
  readonly dentryPut: Statement;
  readonly dentryDelete: Statement;
  readonly xattrKeep: Statement;
  readonly xattrKeepAll: Statement;
  readonly xattrPut: Statement;
  readonly xattrDelete: Statement;
  readonly xattrDeleteAll: Statement;
  readonly chunkKeep: Statement;
  readonly chunkKeepAll: Statement;
  readonly chunkPut: Statement;
  readonly chunkDelete: Statement;
  readonly chunkDeleteAll: Statement;
  readonly settingPut: Statement;
  readonly counterSet: Statement;
  readonly sessionPut: Statement;
  readonly sessionDelete: Statement;
  readonly lockDeleteOwner: Statement;
  readonly lockInsert: Statement;
  readonly lockDeleteSession: Statement;
  readonly openAdd: Statement;
  readonly openDelete: Statement;
  readonly sessionOpens: Statement;
  readonly sessionOpensDelete: Statement;
  readonly sliceRefAdd: Statement;
  readonly sliceRefDelete: Statement;
  readonly deletedSliceInsert: Statement;
  readonly deletedSliceForget: Statement;
  readonly callBatchPut: Statement;
  readonly callClientFind: Statement;
  readonly callClientInsert: Statement;

  constructor(db: Database) {
    super(db);
    // History: copy the old image only when the row was last written by an earlier
    // transaction (ver < now); a second change in the same transaction overwrites in place.
    // dentry_hist's primary key ends in to_us (one image per name per commit instant): the first
    // copy a batch makes is the committed one, so a later copy at the same instant is dropped
    // (IGNORE), never an error that would fail the change.
    this.inodeKeep = db.prepare(
      `INSERT INTO inode_hist (ino, from_us, to_us, ${INODE_COLS}) ` +
        `SELECT ino, ver, ?, ${INODE_COLS} FROM inode WHERE ino = ? AND ver < ?`,
    );
    this.inodePut = db.prepare(
      `INSERT OR REPLACE INTO inode (ino, ${INODE_COLS}, ver) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.inodeDelete = db.prepare('DELETE FROM inode WHERE ino = ?');
    this.dentryKeep = db.prepare(
      'INSERT OR IGNORE INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor) ' +
        'SELECT parent, name, ver, ?, ino, type, cursor FROM dentry WHERE parent = ? AND name = ? AND ver < ?',
    );
    this.dentryPut = db.prepare(
      'INSERT OR REPLACE INTO dentry (parent, name, ino, type, cursor, ver) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.dentryDelete = db.prepare('DELETE FROM dentry WHERE parent = ? AND name = ?');
    this.xattrKeep = db.prepare(
      'INSERT INTO xattr_hist (ino, name, from_us, to_us, value) ' +
        'SELECT ino, name, ver, ?, value FROM xattr WHERE ino = ? AND name = ? AND ver < ?',
    );
    this.xattrKeepAll = db.prepare(
      'INSERT INTO xattr_hist (ino, name, from_us, to_us, value) ' +
        'SELECT ino, name, ver, ?, value FROM xattr WHERE ino = ? AND ver < ?',
    );
    this.xattrPut = db.prepare('INSERT OR REPLACE INTO xattr (ino, name, value, ver) VALUES (?, ?, ?, ?)');
    this.xattrDelete = db.prepare('DELETE FROM xattr WHERE ino = ? AND name = ?');
    this.xattrDeleteAll = db.prepare('DELETE FROM xattr WHERE ino = ?');
    this.chunkKeep = db.prepare(
      'INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices) ' +
        'SELECT ino, idx, ver, ?, slices FROM chunk WHERE ino = ? AND idx = ? AND ver < ?',
    );
    this.chunkKeepAll = db.prepare(
      'INSERT INTO chunk_hist (ino, idx, from_us, to_us, slices) ' +
        'SELECT ino, idx, ver, ?, slices FROM chunk WHERE ino = ? AND ver < ?',
    );
    this.chunkPut = db.prepare('INSERT OR REPLACE INTO chunk (ino, idx, slices, ver) VALUES (?, ?, ?, ?)');
    this.chunkDelete = db.prepare('DELETE FROM chunk WHERE ino = ? AND idx = ?');
    this.chunkDeleteAll = db.prepare('DELETE FROM chunk WHERE ino = ?');
    this.settingPut = db.prepare('INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)');
    this.counterSet = db.prepare('INSERT OR REPLACE INTO counter (name, value) VALUES (?, ?)');
    this.sessionPut = db.prepare(
      'INSERT OR REPLACE INTO session (id, info, started_us, heartbeat_us, slice_floor) VALUES (?, ?, ?, ?, ?)',
    );
    this.sessionDelete = db.prepare('DELETE FROM session WHERE id = ?');
    this.lockDeleteOwner = db.prepare(
      'DELETE FROM lock WHERE ino = ? AND session = ? AND owner = ? AND flock = ?',
    );
    this.lockInsert = db.prepare(
      'INSERT INTO lock (ino, session, owner, flock, type, start, end, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.lockDeleteSession = db.prepare('DELETE FROM lock WHERE session = ?');
    this.openAdd = db
      .prepare(
        'INSERT INTO open_file (session, ino, count) VALUES (?, ?, ?) ' +
          'ON CONFLICT (session, ino) DO UPDATE SET count = count + excluded.count RETURNING count',
      )
      .pluck();
    this.openDelete = db.prepare('DELETE FROM open_file WHERE session = ? AND ino = ?');
    this.sessionOpens = db.prepare('SELECT ino FROM open_file WHERE session = ?').pluck();
    this.sessionOpensDelete = db.prepare('DELETE FROM open_file WHERE session = ?');
    this.sliceRefAdd = db
      .prepare(
        'INSERT INTO slice_ref (id, size, refs) VALUES (?, ?, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET refs = refs + excluded.refs RETURNING refs',
      )
      .pluck();
    this.sliceRefDelete = db.prepare('DELETE FROM slice_ref WHERE id = ?');
    this.deletedSliceInsert = db.prepare('INSERT INTO deleted_slice (id, size, deleted_us) VALUES (?, ?, ?)');
    this.deletedSliceForget = db.prepare('DELETE FROM deleted_slice WHERE id = ? AND deleted_us = ?');
    this.callBatchPut = db.prepare(
      'INSERT INTO call_batch (client, first_seq, last_seq, replies, at_us) VALUES (?, ?, ?, ?, ?)',
    );
    this.callClientFind = db.prepare('SELECT num FROM call_client WHERE id = ?').pluck();
    this.callClientInsert = db.prepare('INSERT INTO call_client (id) VALUES (?) RETURNING num').pluck();
  }
}
