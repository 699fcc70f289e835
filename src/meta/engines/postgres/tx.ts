import { asIno, type Ino, type SliceId, type SliceRef } from '../../../common/index.js';
import type { DeletedSliceKey, DentryRow, InodeRow, LockRow, SessionRow, WriteTx } from '../../engine.js';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR } from '../../acl.js';
import { encodeSlices } from '../../slice-codec.js';
import { COUNTER_RECLAIM_FLOOR } from '../../volume-keys.js';
import { SQL } from './sql.js';
import { dentryKey, inodeKey, xattrKey } from './row-cache.js';
import { COUNTER_SHARDS, PgTxReads, SHARDED_COUNTERS, inodeValues } from './tx-reads.js';

export type { SharedTxState, TxChanges, TxConnection } from './tx-driver.js';
export { COUNTER_SHARDS } from './tx-reads.js';

/** Readdir cursors fetched from the sequence per round trip. */
export const CURSOR_BLOCK = 1024;
/**
 * Stock below which the engine fetches the next block ahead (SharedTxState.refillCursors). A
 * server with hundreds of creates in flight takes that many cursors in one turn: with 256 per
 * block and 64 left, such bursts emptied the stock before the refill returned, and each create
 * that then fetched cursors itself held a connection and committed alone (16 calls in flight on
 * each of 16 connections: ~3,200 creates/s against ~4,300 with 4).
 */
const CURSOR_LOW_WATER = CURSOR_BLOCK / 2;

/**
 * One transaction on one pooled connection. Read transactions run in REPEATABLE READ (one
 * snapshot); write transactions in READ COMMITTED where every current-state read of a row that
 * may be written takes its row lock (FOR UPDATE). The service reads what it is about to change
 * (the parent directory, the entry, the inode) before changing it, so two servers working on the
 * same directory queue on its row instead of both deciding from the same stale state; a name
 * two transactions both saw absent is caught by the unique key and retried.
 *
 * The parts: how statements reach PostgreSQL and commit (PgTxDriver), the reads (PgTxReads),
 * and here the writes, deferred to ride with the next query or the COMMIT.
 */
export class PgTx extends PgTxReads implements WriteTx {
  private readonly counterShard = Math.floor(Math.random() * COUNTER_SHARDS);

  // --- writes ---

  async putInode(row: InodeRow, fresh = false): Promise<void> {
    const key = inodeKey(row.ino);
    const check = this.pendingInodeChecks.get(key);
    if (check && !fresh) {
      // The check of the cached copy has not left yet: check and write in one statement, where
      // the check was (so the row is still locked at the same point of the batch).
      this.pendingInodeChecks.delete(key);
      this.pending[check.index] = {
        statement: SQL.updateCheckedInode,
        values: [...check.values, ...inodeValues(row).slice(1), this.nowUs, this.historyBeforeUs],
      };
    } else {
      const statement = fresh ? SQL.insertInode : this.lockedRows.has(key) ? SQL.updateInode : SQL.putInode;
      this.defer(statement, [...inodeValues(row), this.nowUs, ...(fresh ? [] : [this.historyBeforeUs])]);
    }
    this.changes.inos.add(row.ino);
    this.lockedRows.add(key);
    this.wrote(key, { ...row });
    if (fresh && this.cache) {
      // A new inode number has no xattrs: its ACLs are known absent (unless this transaction
      // writes one, which then overrides), so a chmod right after the create, which reads the
      // access ACL, needs no read of its own (still checked at its commit, as every cached value).
      for (const name of [ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR]) {
        const xattr = xattrKey(row.ino, name);
        if (!this.observed.has(xattr)) this.observed.set(xattr, null);
      }
    }
  }

  async deleteInode(ino: Ino): Promise<void> {
    this.defaultAcls.delete(ino);
    this.defer(SQL.deleteInode, [ino, this.nowUs, this.historyBeforeUs]);
    this.lockedRows.delete(inodeKey(ino));
    this.changes.inos.add(ino);
    this.wrote(inodeKey(ino), null);
  }

  async putDentry(parent: Ino, name: string, ino: Ino, type: number): Promise<DentryRow> {
    const key = dentryKey(parent, name);
    const cursor = await this.nextCursor();
    if (this.absent.has(key)) {
      this.defer(SQL.insertDentry, [parent, name, ino, type, cursor, this.nowUs]);
    } else {
      this.defer(SQL.putDentry, [parent, name, ino, type, cursor, this.nowUs, this.historyBeforeUs]);
    }
    this.absent.delete(key);
    this.noteEntry(parent, name);
    const row = { parent, name, ino, type, cursor };
    this.wrote(key, { ...row });
    return row;
  }

  /**
   * Readdir cursors come from a sequence, a block at a time per engine, fetched ahead by the
   * engine while the stock lasts, or on this transaction's connection when it ran out (a
   * transaction never waits for a second connection). Unique across servers and increasing per
   * server; an entry another server adds during a readdir may be skipped by it, as POSIX allows
   * for entries created during readdir.
   */
  private async nextCursor(): Promise<number> {
    const shared = this.shared;
    if (shared.cursors.length === 0) {
      const rows = await this.rows<{ c: number }>(SQL.nextCursors, [CURSOR_BLOCK]);
      if (shared.cursors.length === 0) shared.cursors = rows.map((r) => r.c).reverse();
    }
    const cursor = shared.cursors.pop()!;
    if (shared.cursors.length < CURSOR_LOW_WATER) shared.refillCursors?.();
    return cursor;
  }

  async deleteDentry(parent: Ino, name: string): Promise<void> {
    this.defer(SQL.deleteDentry, [parent, name, this.nowUs, this.historyBeforeUs]);
    this.noteEntry(parent, name);
    this.wrote(dentryKey(parent, name), null);
  }

  async putXattr(ino: Ino, name: string, value: Buffer): Promise<void> {
    this.defaultAcls.delete(ino);
    this.defer(SQL.putXattr, [ino, name, value, this.nowUs, this.historyBeforeUs]);
    this.changes.inos.add(ino);
    this.wrote(xattrKey(ino, name), value);
  }

  async deleteXattr(ino: Ino, name: string): Promise<void> {
    this.defaultAcls.delete(ino);
    this.defer(SQL.deleteXattr, [ino, name, this.nowUs, this.historyBeforeUs]);
    this.changes.inos.add(ino);
    this.wrote(xattrKey(ino, name), null);
  }

  async putChunk(ino: Ino, chunkIndex: number, slices: SliceRef[]): Promise<void> {
    if (slices.length === 0) {
      this.defer(SQL.deleteChunk, [ino, chunkIndex, this.nowUs, this.historyBeforeUs]);
    } else {
      this.defer(SQL.putChunk, [ino, chunkIndex, encodeSlices(slices), this.nowUs, this.historyBeforeUs]);
    }
    this.changes.inos.add(ino);
  }

  /** CallOutcomeWriter (src/meta/call-outcomes.ts): rides with the COMMIT like other writes. */
  async putCallOutcome(clientId: string, seq: number, reply: Buffer): Promise<void> {
    this.defer(SQL.putCallOutcome, [clientId, seq, reply, this.nowUs]);
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.defer(SQL.putSetting, [key, value]);
  }

  /**
   * Sharded (statistics) counters: the delta goes with the COMMIT and the value returned is
   * this server's estimate (exact after getCounter, plus its own later deltas); statfs reads
   * the exact sum. Allocation counters are exact: one row, updated and read at once.
   */
  async addCounter(name: string, delta: number): Promise<number> {
    if (SHARDED_COUNTERS.has(name)) {
      this.defer(SQL.addShardedCounter, [name, this.counterShard, delta]);
      const estimate = (this.shared.counterEstimates.get(name) ?? 0) + delta;
      this.shared.counterEstimates.set(name, estimate);
      return estimate;
    }
    const [row] = await this.rows<{ value: number }>(SQL.addCounter, [name, delta]);
    return row.value;
  }

  async putSession(row: SessionRow): Promise<void> {
    this.defer(SQL.putSession, [
      row.sessionId,
      JSON.stringify(row.info),
      row.startedUs,
      row.heartbeatUs,
      row.sliceFloor ?? null,
    ]);
  }

  /**
   * The lock goes first, as its own statement: in READ COMMITTED the read after it takes a new
   * snapshot, so a commit that waited for a reclaim pass reads the floor that pass raised.
   */
  async lockReclaimFloor(exclusive: boolean): Promise<number> {
    this.defer(exclusive ? SQL.lockReclaimFloor : SQL.shareReclaimFloor, []);
    return this.getCounter(COUNTER_RECLAIM_FLOOR);
  }

  async deleteSession(sessionId: string): Promise<void> {
    this.defer(SQL.deleteSession, [sessionId]);
  }

  async replaceLocks(
    ino: Ino,
    sessionId: string,
    owner: string,
    flock: boolean,
    locks: Pick<LockRow, 'type' | 'start' | 'end' | 'pid'>[],
  ): Promise<void> {
    this.defer(SQL.replaceLocks, [
      ino,
      sessionId,
      owner,
      flock,
      locks.map((l) => l.type),
      locks.map((l) => l.start),
      locks.map((l) => l.end),
      locks.map((l) => l.pid),
    ]);
  }

  async deleteSessionLocks(sessionId: string): Promise<void> {
    this.defer(SQL.deleteSessionLocks, [sessionId]);
  }

  async addOpen(sessionId: string, ino: Ino, delta: number): Promise<number> {
    const [row] = await this.rows<{ count: number }>(SQL.addOpen, [sessionId, ino, delta]);
    if (row.count <= 0) this.defer(SQL.dropOpen, [sessionId, ino]);
    return Math.max(row.count, 0);
  }

  async takeSessionOpens(sessionId: string): Promise<Ino[]> {
    const rows = await this.rows<{ ino: number }>(SQL.takeSessionOpens, [sessionId]);
    return rows.map((r) => asIno(r.ino));
  }

  async addSliceRefs(id: SliceId, sliceSizeBytes: number, delta: number): Promise<number> {
    const [row] = await this.rows<{ refs: number }>(SQL.addSliceRefs, [id, sliceSizeBytes, delta]);
    if (row.refs <= 0) this.defer(SQL.dropSliceRef, [id]);
    return Math.max(row.refs, 0);
  }

  async recordDeletedSlice(id: SliceId, sliceSizeBytes: number): Promise<void> {
    this.defer(SQL.recordDeletedSlice, [id, sliceSizeBytes, this.nowUs]);
  }

  async forgetDeletedSlices(rows: readonly DeletedSliceKey[]): Promise<void> {
    if (rows.length === 0) return;
    this.defer(SQL.forgetDeletedSlices, [rows.map((r) => r.id), rows.map((r) => r.deletedUs)]);
  }
}
