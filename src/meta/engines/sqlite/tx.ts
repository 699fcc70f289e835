import type { Database, Statement } from 'better-sqlite3';
import { asIno, asSliceId, type Ino, type SliceId, type SliceRef } from '../../../common/index.js';
import type {
  DeletedSliceRow,
  DentryRow,
  InodeRow,
  LockRow,
  ReadTx,
  SessionRow,
  WriteTx,
} from '../../engine.js';
import { decodeSlices, encodeSlices } from '../../slice-codec.js';
import type { BatchRows } from './batch-rows.js';
import type { BatchDentries } from './batch-dentries.js';
import type { CallBatch } from './call-batch.js';
import type { CallClients } from './call-clients.js';
import {
  toDentry,
  toInode,
  toSession,
  type DentryRecord,
  type InodeRecord,
  type SessionRecord,
} from '../rows.js';

const INODE_COLS =
  'mode, uid, gid, nlink, size, rdev, atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, gen, parent, target';

/** History rows also carry when the old image became current. */
interface InodeRaw extends InodeRecord {
  from_us?: number;
}

interface DentryRaw extends DentryRecord {
  from_us?: number;
}

const LOCK_READ = 1;
const LOCK_WRITE = 2;

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

  constructor(db: Database) {
    this.inode = db.prepare(`SELECT ino, ${INODE_COLS} FROM inode WHERE ino = ?`);
    this.inodeAsOf = db.prepare(`SELECT ino, ${INODE_COLS} FROM inode WHERE ino = ? AND ver <= ?`);
    this.inodeHist = db.prepare(
      `SELECT ino, ${INODE_COLS}, from_us FROM inode_hist WHERE ino = ? AND to_us > ? ORDER BY to_us LIMIT 1`,
    );
    this.dentry = db.prepare(
      'SELECT parent, name, ino, type, cursor FROM dentry WHERE parent = ? AND name = ?',
    );
    this.dentryAsOf = db.prepare(
      'SELECT parent, name, ino, type, cursor FROM dentry WHERE parent = ? AND name = ? AND ver <= ?',
    );
    this.dentryHist = db.prepare(
      'SELECT parent, name, ino, type, cursor, from_us FROM dentry_hist ' +
        'WHERE parent = ? AND name = ? AND to_us > ? ORDER BY to_us LIMIT 1',
    );
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
    this.session = db.prepare('SELECT id, info, started_us, heartbeat_us FROM session WHERE id = ?');
    this.sessions = db.prepare('SELECT id, info, started_us, heartbeat_us FROM session ORDER BY id');
    this.locks = db.prepare(
      'SELECT ino, session, owner, flock, type, start, end, pid FROM lock WHERE ino = ?',
    );
    this.openCount = db.prepare('SELECT coalesce(sum(count), 0) FROM open_file WHERE ino = ?').pluck();
    this.deletedSlices = db.prepare(
      'SELECT id, size, deleted_us FROM deleted_slice WHERE deleted_us < ? ORDER BY deleted_us LIMIT ?',
    );
  }
}

interface LockRaw {
  ino: number;
  session: string;
  owner: string;
  flock: number;
  type: number;
  start: number;
  end: number;
  pid: number;
}

/**
 * Reads over one connection. Methods are async to honour the engine contract, but every
 * statement runs synchronously: better-sqlite3 calls are microseconds and never yield.
 */
export class SqliteReadTx implements ReadTx {
  constructor(protected readonly s: ReadStatements) {}

  async getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined> {
    if (asOfUs === undefined) {
      const r = this.s.inode.get(ino) as InodeRaw | undefined;
      return r && toInode(r);
    }
    const cur = this.s.inodeAsOf.get(ino, asOfUs) as InodeRaw | undefined;
    if (cur) return toInode(cur);
    const h = this.s.inodeHist.get(ino, asOfUs) as InodeRaw | undefined;
    return h && h.from_us! <= asOfUs ? toInode(h) : undefined;
  }

  async lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined> {
    if (asOfUs === undefined) {
      const r = this.s.dentry.get(parent, name) as DentryRaw | undefined;
      return r && toDentry(r);
    }
    const cur = this.s.dentryAsOf.get(parent, name, asOfUs) as DentryRaw | undefined;
    if (cur) return toDentry(cur);
    const h = this.s.dentryHist.get(parent, name, asOfUs) as DentryRaw | undefined;
    return h && h.from_us! <= asOfUs ? toDentry(h) : undefined;
  }

  async listDir(parent: Ino, afterCursor: number, limit: number, asOfUs?: number): Promise<DentryRow[]> {
    const rows = (
      asOfUs === undefined
        ? this.s.listDir.all(parent, afterCursor, limit)
        : this.s.listDirAsOf.all(parent, afterCursor, asOfUs, parent, afterCursor, asOfUs, asOfUs, limit)
    ) as DentryRaw[];
    return rows.map(toDentry);
  }

  async hasEntries(parent: Ino): Promise<boolean> {
    return this.s.hasEntries.get(parent) !== undefined;
  }

  async getXattr(ino: Ino, name: string, asOfUs?: number): Promise<Buffer | undefined> {
    if (asOfUs === undefined) return this.s.xattr.get(ino, name) as Buffer | undefined;
    const cur = this.s.xattrAsOf.get(ino, name, asOfUs) as Buffer | undefined;
    if (cur) return cur;
    const h = this.s.xattrHist.get(ino, name, asOfUs) as { value: Buffer; from_us: number } | undefined;
    return h && h.from_us <= asOfUs ? h.value : undefined;
  }

  async listXattrs(ino: Ino, asOfUs?: number): Promise<string[]> {
    return (
      asOfUs === undefined
        ? this.s.listXattrs.all(ino)
        : this.s.listXattrsAsOf.all(ino, asOfUs, ino, asOfUs, asOfUs)
    ) as string[];
  }

  async getChunk(ino: Ino, chunkIndex: number, asOfUs?: number): Promise<SliceRef[]> {
    if (asOfUs === undefined) {
      const blob = this.s.chunk.get(ino, chunkIndex) as Buffer | undefined;
      return blob ? decodeSlices(blob) : [];
    }
    const cur = this.s.chunkAsOf.get(ino, chunkIndex, asOfUs) as Buffer | undefined;
    if (cur) return decodeSlices(cur);
    const h = this.s.chunkHist.get(ino, chunkIndex, asOfUs) as
      { slices: Buffer; from_us: number } | undefined;
    return h && h.from_us <= asOfUs ? decodeSlices(h.slices) : [];
  }

  async listChunkIndexes(
    ino: Ino,
    firstChunk: number,
    lastChunk: number,
    asOfUs?: number,
  ): Promise<number[]> {
    return (
      asOfUs === undefined
        ? this.s.chunkIndexes.all(ino, firstChunk, lastChunk)
        : this.s.chunkIndexesAsOf.all(
            ino,
            firstChunk,
            lastChunk,
            asOfUs,
            ino,
            firstChunk,
            lastChunk,
            asOfUs,
            asOfUs,
          )
    ) as number[];
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.s.setting.get(key) as string | undefined;
  }

  async getCounter(name: string): Promise<number> {
    return (this.s.counter.get(name) as number | undefined) ?? 0;
  }

  async getSession(sessionId: string): Promise<SessionRow | undefined> {
    const r = this.s.session.get(sessionId) as SessionRecord | undefined;
    return r && toSession(r);
  }

  async listSessions(): Promise<SessionRow[]> {
    return (this.s.sessions.all() as SessionRecord[]).map(toSession);
  }

  async listLocks(ino: Ino): Promise<LockRow[]> {
    return (this.s.locks.all(ino) as LockRaw[]).map((r) => ({
      ino: asIno(r.ino),
      sessionId: r.session,
      owner: r.owner,
      flock: r.flock !== 0,
      type: r.type === LOCK_WRITE ? 'write' : 'read',
      start: r.start,
      end: r.end,
      pid: r.pid,
    }));
  }

  async openCount(ino: Ino): Promise<number> {
    return this.s.openCount.get(ino) as number;
  }

  async listDeletedSlices(deletedBeforeUs: number, limit: number): Promise<DeletedSliceRow[]> {
    const rows = this.s.deletedSlices.all(deletedBeforeUs, limit) as {
      id: number;
      size: number;
      deleted_us: number;
    }[];
    return rows.map((r) => ({ id: asSliceId(r.id), sliceSizeBytes: r.size, deletedUs: r.deleted_us }));
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
    this.inodeKeep = db.prepare(
      `INSERT INTO inode_hist (ino, from_us, to_us, ${INODE_COLS}) ` +
        `SELECT ino, ver, ?, ${INODE_COLS} FROM inode WHERE ino = ? AND ver < ?`,
    );
    this.inodePut = db.prepare(
      `INSERT OR REPLACE INTO inode (ino, ${INODE_COLS}, ver) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.inodeDelete = db.prepare('DELETE FROM inode WHERE ino = ?');
    this.dentryKeep = db.prepare(
      'INSERT INTO dentry_hist (parent, name, from_us, to_us, ino, type, cursor) ' +
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
      'INSERT OR REPLACE INTO session (id, info, started_us, heartbeat_us) VALUES (?, ?, ?, ?)',
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
    this.deletedSliceForget = db.prepare('DELETE FROM deleted_slice WHERE id = ?');
    this.callBatchPut = db.prepare(
      'INSERT INTO call_batch (client, first_seq, last_seq, replies, at_us) VALUES (?, ?, ?, ?, ?)',
    );
    this.callClientFind = db.prepare('SELECT num FROM call_client WHERE id = ?').pluck();
    this.callClientInsert = db.prepare('INSERT INTO call_client (id) VALUES (?) RETURNING num').pluck();
  }
}

/** Engine-wide state a write transaction updates (owned by the engine, shared by its batches). */
export interface WriteState {
  nowUs: number;
  history: boolean;
  /** Last dentry cursor handed out; persisted at each commit. */
  lastCursor: number;
  /** Inode rows (written back at commit) and summed counters of the open batch (batch-rows.ts). */
  rows: BatchRows;
  /** Client numbers of stored call outcomes. */
  clients: CallClients;
  /** The batch's call outcomes, written at COMMIT (call-batch.ts). */
  outcomes: CallBatch;
  /** Directory entries of the open batch, written back at COMMIT (batch-dentries.ts). */
  dentries: BatchDentries;
  /** Called before any statement that changes SQLite within a change (opens its savepoint). */
  beforeSqlWrite: () => void;
}

export class SqliteWriteTx extends SqliteReadTx implements WriteTx {
  constructor(
    private readonly w: WriteStatements,
    private readonly state: WriteState,
  ) {
    super(w);
  }

  get nowUs(): number {
    return this.state.nowUs;
  }

  /** The statements that change SQLite: a change's first use opens its savepoint (engine.ts). */
  private get sw(): WriteStatements {
    this.state.beforeSqlWrite();
    return this.w;
  }

  override async getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined> {
    if (asOfUs === undefined) {
      const cached = this.state.rows.inode(ino);
      if (cached !== undefined) return cached ?? undefined;
    }
    return super.getInode(ino, asOfUs);
  }

  /** Written back once per batch, before its COMMIT (engine.ts, batch-rows.ts). */
  async putInode(r: InodeRow, fresh = false): Promise<void> {
    const now = this.state.nowUs;
    if (this.state.history && !fresh && this.state.rows.needsKeep(r.ino))
      this.sw.inodeKeep.run(now, r.ino, now);
    this.state.rows.wroteInode(r, fresh);
  }

  /** Writes the inode rows this batch changed (the engine calls it before COMMIT). */
  writeBackInodes(): void {
    const now = this.state.nowUs;
    for (const r of this.state.rows.dirtyInodes()) {
      this.w.inodePut.run(
        r.ino,
        r.mode,
        r.uid,
        r.gid,
        r.nlink,
        r.sizeBytes,
        r.rdev,
        r.atimeSec,
        r.atimeNsec,
        r.mtimeSec,
        r.mtimeNsec,
        r.ctimeSec,
        r.ctimeNsec,
        r.generation,
        r.parent,
        r.target,
        now,
      );
    }
  }

  async deleteInode(ino: Ino): Promise<void> {
    const now = this.state.nowUs;
    if (this.state.history) {
      if (this.state.rows.needsKeep(ino)) this.sw.inodeKeep.run(now, ino, now);
      this.sw.xattrKeepAll.run(now, ino, now);
      this.sw.chunkKeepAll.run(now, ino, now);
    }
    this.sw.inodeDelete.run(ino);
    this.sw.xattrDeleteAll.run(ino);
    this.sw.chunkDeleteAll.run(ino);
    this.state.rows.deletedInode(ino);
  }

  /** Written back once per batch, before its COMMIT (batch-dentries.ts). */
  async putDentry(parent: Ino, name: string, ino: Ino, type: number, fresh = false): Promise<DentryRow> {
    const now = this.state.nowUs;
    if (this.state.history && !fresh && this.state.dentries.needsKeep(parent, name)) {
      this.sw.dentryKeep.run(now, parent, name, now);
    }
    const row = { parent, name, ino, type, cursor: ++this.state.lastCursor };
    this.state.dentries.put(row, fresh);
    return row;
  }

  async deleteDentry(parent: Ino, name: string): Promise<void> {
    const now = this.state.nowUs;
    if (this.state.history && this.state.dentries.needsKeep(parent, name)) {
      this.sw.dentryKeep.run(now, parent, name, now);
    }
    this.sw.dentryDelete.run(parent, name);
    this.state.dentries.deleted(parent, name);
  }

  override async lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined> {
    if (asOfUs === undefined) {
      const put = this.state.dentries.get(parent, name);
      if (put) return put;
    }
    return super.lookup(parent, name, asOfUs);
  }

  override async hasEntries(parent: Ino): Promise<boolean> {
    return this.state.dentries.hasAny(parent) || super.hasEntries(parent);
  }

  override async listDir(
    parent: Ino,
    afterCursor: number,
    limit: number,
    asOfUs?: number,
  ): Promise<DentryRow[]> {
    const batch = this.state.dentries;
    if (asOfUs !== undefined || !batch.hasAny(parent))
      return super.listDir(parent, afterCursor, limit, asOfUs);
    // SQLite's rows of names this batch put again are stale: ask for that many more, drop them.
    // The batch's own entries have the newest cursors, so they follow.
    const mine = batch.listDir(parent, afterCursor);
    const stored = await super.listDir(parent, afterCursor, limit + mine.length);
    return stored
      .filter((row) => !batch.has(row.parent, row.name))
      .concat(mine)
      .slice(0, limit);
  }

  /** Writes the directory entries this batch put (the engine calls it before COMMIT). */
  writeBackDentries(): void {
    const now = this.state.nowUs;
    for (const d of this.state.dentries.values()) {
      this.w.dentryPut.run(d.parent, d.name, d.ino, d.type, d.cursor, now);
    }
  }

  override async getXattr(ino: Ino, name: string, asOfUs?: number): Promise<Buffer | undefined> {
    if (asOfUs !== undefined) return super.getXattr(ino, name, asOfUs);
    const cached = this.state.rows.xattr(ino, name);
    if (cached !== undefined) return cached ?? undefined;
    const value = await super.getXattr(ino, name);
    this.state.rows.knowXattr(ino, name, value ?? null);
    return value;
  }

  async putXattr(ino: Ino, name: string, value: Buffer): Promise<void> {
    if (this.state.history) this.sw.xattrKeep.run(this.state.nowUs, ino, name, this.state.nowUs);
    this.sw.xattrPut.run(ino, name, value, this.state.nowUs);
    this.state.rows.knowXattr(ino, name, value);
  }

  async deleteXattr(ino: Ino, name: string): Promise<void> {
    if (this.state.history) this.sw.xattrKeep.run(this.state.nowUs, ino, name, this.state.nowUs);
    this.sw.xattrDelete.run(ino, name);
    this.state.rows.knowXattr(ino, name, null);
  }

  async putChunk(ino: Ino, chunkIndex: number, slices: SliceRef[]): Promise<void> {
    if (this.state.history) this.sw.chunkKeep.run(this.state.nowUs, ino, chunkIndex, this.state.nowUs);
    if (slices.length === 0) this.sw.chunkDelete.run(ino, chunkIndex);
    else this.sw.chunkPut.run(ino, chunkIndex, encodeSlices(slices), this.state.nowUs);
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.sw.settingPut.run(key, value);
  }

  override async getCounter(name: string): Promise<number> {
    return this.state.rows.counter(name, this.loadCounter);
  }

  /** Summed in the batch, written once before its commit (engine.ts). */
  async addCounter(name: string, delta: number): Promise<number> {
    return this.state.rows.addCounter(name, delta, this.loadCounter);
  }

  private readonly loadCounter = (name: string): number =>
    (this.w.counter.get(name) as number | undefined) ?? 0;

  async putSession(row: SessionRow): Promise<void> {
    this.sw.sessionPut.run(row.sessionId, JSON.stringify(row.info), row.startedUs, row.heartbeatUs);
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.sw.sessionDelete.run(sessionId);
  }

  async replaceLocks(
    ino: Ino,
    sessionId: string,
    owner: string,
    flock: boolean,
    locks: Pick<LockRow, 'type' | 'start' | 'end' | 'pid'>[],
  ): Promise<void> {
    const flockInt = flock ? 1 : 0;
    this.sw.lockDeleteOwner.run(ino, sessionId, owner, flockInt);
    for (const l of locks) {
      const type = l.type === 'write' ? LOCK_WRITE : LOCK_READ;
      this.sw.lockInsert.run(ino, sessionId, owner, flockInt, type, l.start, l.end, l.pid);
    }
  }

  async deleteSessionLocks(sessionId: string): Promise<void> {
    this.sw.lockDeleteSession.run(sessionId);
  }

  async addOpen(sessionId: string, ino: Ino, delta: number): Promise<number> {
    const count = this.sw.openAdd.get(sessionId, ino, delta) as number;
    if (count <= 0) this.sw.openDelete.run(sessionId, ino);
    return Math.max(count, 0);
  }

  async takeSessionOpens(sessionId: string): Promise<Ino[]> {
    const inos = this.sw.sessionOpens.all(sessionId) as number[];
    this.sw.sessionOpensDelete.run(sessionId);
    return inos.map(asIno);
  }

  async addSliceRefs(id: SliceId, sliceSizeBytes: number, delta: number): Promise<number> {
    const refs = this.sw.sliceRefAdd.get(id, sliceSizeBytes, delta) as number;
    if (refs <= 0) this.sw.sliceRefDelete.run(id);
    return Math.max(refs, 0);
  }

  async recordDeletedSlice(id: SliceId, sliceSizeBytes: number): Promise<void> {
    this.sw.deletedSliceInsert.run(id, sliceSizeBytes, this.state.nowUs);
  }

  async forgetDeletedSlices(ids: SliceId[]): Promise<void> {
    for (const id of ids) this.sw.deletedSliceForget.run(id);
  }

  /** CallOutcomeWriter (src/meta/call-outcomes.ts): stored with the batch's others at COMMIT. */
  async putCallOutcome(clientId: string, seq: number, reply: Buffer): Promise<void> {
    this.state.outcomes.add(this.state.clients.num(clientId), seq, reply);
  }
}
