import { asIno, asSliceId, type Ino, type SliceId, type SliceRef } from '../../../common/index.js';
import type {
  DeletedSliceKey,
  DeletedSliceRow,
  DentryRow,
  InodeRow,
  LockRow,
  ReadTx,
  SessionRow,
  SliceGcState,
  WriteTx,
} from '../../engine.js';
import { decodeSlices, encodeSlices } from '../../slice-codec.js';
import { COUNTER_RECLAIM_FLOOR } from '../../volume-keys.js';
import type { BatchRows } from './batch-rows.js';
import type { BatchDentries } from './batch-dentries.js';
import type { CallBatch } from './call-batch.js';
import type { CallClients } from './call-clients.js';
import { toDentry, toSession, type DentryRecord, type SessionRecord } from '../rows.js';
import {
  dentryFromArray,
  inodeFromArray,
  type DentryArray,
  type DentryHistArray,
  type InodeArray,
  type InodeHistArray,
  type ReadStatements,
  type WriteStatements,
} from './statements.js';

/** Where an InodeHistArray and a DentryHistArray have from_us. */
const INODE_HIST_FROM_US = 17;
const DENTRY_HIST_FROM_US = 3;

const LOCK_READ = 1;
const LOCK_WRITE = 2;

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
      const r = this.s.inode.get(ino) as InodeArray | undefined;
      return r && inodeFromArray(r);
    }
    const cur = this.s.inodeAsOf.get(ino, asOfUs) as InodeArray | undefined;
    if (cur) return inodeFromArray(cur);
    const h = this.s.inodeHist.get(ino, asOfUs) as InodeHistArray | undefined;
    return h && h[INODE_HIST_FROM_US] <= asOfUs ? inodeFromArray(h) : undefined;
  }

  async lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined> {
    if (asOfUs === undefined) {
      const r = this.s.dentry.get(parent, name) as DentryArray | undefined;
      return r && dentryFromArray(parent, name, r);
    }
    const cur = this.s.dentryAsOf.get(parent, name, asOfUs) as DentryArray | undefined;
    if (cur) return dentryFromArray(parent, name, cur);
    const h = this.s.dentryHist.get(parent, name, asOfUs) as DentryHistArray | undefined;
    return h && h[DENTRY_HIST_FROM_US] <= asOfUs ? dentryFromArray(parent, name, h) : undefined;
  }

  async listDir(parent: Ino, afterCursor: number, limit: number, asOfUs?: number): Promise<DentryRow[]> {
    const rows = (
      asOfUs === undefined
        ? this.s.listDir.all(parent, afterCursor, limit)
        : this.s.listDirAsOf.all(parent, afterCursor, asOfUs, parent, afterCursor, asOfUs, asOfUs, limit)
    ) as DentryRecord[];
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

  async getSliceStates(ids: readonly SliceId[]): Promise<SliceGcState[]> {
    return ids.map((id) => ({
      id,
      refs: (this.s.sliceRefs.get(id) as number | undefined) ?? 0,
      lastDeletedUs: (this.s.sliceLastDeleted.get(id) as number | null) ?? undefined,
    }));
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
        r.allocatedBytes,
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
    this.sw.sessionPut.run(
      row.sessionId,
      JSON.stringify(row.info),
      row.startedUs,
      row.heartbeatUs,
      row.sliceFloor ?? null,
    );
  }

  /** One writer at a time: a commit and a reclaim pass never overlap, so reading is enough. */
  async lockReclaimFloor(): Promise<number> {
    return this.getCounter(COUNTER_RECLAIM_FLOOR);
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

  async forgetDeletedSlices(rows: readonly DeletedSliceKey[]): Promise<void> {
    for (const row of rows) this.sw.deletedSliceForget.run(row.id, row.deletedUs);
  }

  /** CallOutcomeWriter (src/meta/call-outcomes.ts): stored with the batch's others at COMMIT. */
  async putCallOutcome(clientId: string, seq: number, reply: Buffer): Promise<void> {
    this.state.outcomes.add(this.state.clients.num(clientId), seq, reply);
  }
}
