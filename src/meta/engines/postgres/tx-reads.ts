import type pg from 'pg';
import { asIno, asSliceId, type Ino, type SliceId, type SliceRef } from '../../../common/index.js';
import type {
  DeletedSliceRow,
  DentryRow,
  InodeRow,
  LockRow,
  SessionRow,
  SliceGcState,
} from '../../engine.js';
import { ACL_DEFAULT_XATTR } from '../../acl.js';
import { decodeSlices } from '../../slice-codec.js';
import {
  toDentry,
  toInode,
  toSession,
  type DentryRecord,
  type InodeRecord,
  type SessionRecord,
} from '../rows.js';
import { COUNTER_INODES, COUNTER_USED_BYTES } from '../../namespace.js';
import { SQL } from './sql.js';
import { dentryKey, inodeKey, xattrKey } from './row-cache.js';
import { PgTxDriver } from './tx-driver.js';

/**
 * Counters the service only keeps for statfs: nearly every create, unlink and write changes
 * them, and one row would make every such transaction of every server wait for the previous
 * one's commit. Each transaction adds to one of COUNTER_SHARDS rows instead; their sum is the
 * value. Id allocation counters (ino_hi, slice_hi) stay single rows: their returned value must
 * be exact.
 */
export const SHARDED_COUNTERS = new Set([COUNTER_INODES, COUNTER_USED_BYTES]);
export const COUNTER_SHARDS = 64;

/** The values of an inode row in the order of the inode statements' first parameters (SQL.expectInode, SQL.putInode, ...). */
export const inodeValues = (row: InodeRow): unknown[] => [
  row.ino,
  row.mode,
  row.uid,
  row.gid,
  row.nlink,
  row.sizeBytes,
  row.rdev,
  row.atimeSec,
  row.atimeNsec,
  row.mtimeSec,
  row.mtimeNsec,
  row.ctimeSec,
  row.ctimeNsec,
  row.generation,
  row.parent,
  row.target,
  row.allocatedBytes,
];

/**
 * The reads of a transaction (see PgTx): current-state reads of a write transaction take their
 * row locks (or decide from the row cache, checked at commit), as-of reads go to the history.
 */
export abstract class PgTxReads extends PgTxDriver {
  private readonly lockedLockInodes = new Set<number>();
  /** Default ACLs read with their inode's lock (lockInode); undefined value = none. */
  protected readonly defaultAcls = new Map<number, Buffer | undefined>();
  /**
   * Inode rows that exist and that this transaction holds locked (read FOR UPDATE, a cached
   * copy checked, or written by it): written back with a plain UPDATE.
   */
  protected readonly lockedRows = new Set<string>();

  // --- reads ---

  async getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined> {
    if (asOfUs === undefined && this.writable) {
      const key = inodeKey(ino);
      // Another transaction of this server is deciding on this inode (a create in the same
      // directory): wait for it to reach its commit and decide from what it wrote, rather than
      // read PostgreSQL under the row lock. Only while holding nothing, so waits never cycle.
      while (this.cachedReads && this.cache && this.held.size === 0 && this.cache.busyElsewhere(key, false))
        await this.cache.whenFree(key);
      const cached = this.fromCache(key) as InodeRow | null | undefined;
      if (cached) {
        const values = inodeValues(cached);
        this.defer(SQL.expectInode, values);
        this.pendingInodeChecks.set(key, { index: this.pending.length - 1, values });
        this.lockedRows.add(key);
        this.observe(key, cached);
        return { ...cached };
      }
      this.hold(key);
      return this.lockInode(ino);
    }
    const [row] =
      asOfUs !== undefined
        ? await this.rows<InodeRecord>(SQL.getInodeAsOf, [ino, asOfUs])
        : await this.rows<InodeRecord>(SQL.getInode, [ino]);
    const inode = row && toInode(row);
    if (inode && asOfUs === undefined) this.observe(inodeKey(ino), { ...inode });
    return inode;
  }

  /**
   * Locks and reads an inode, and reads its default ACL in the same round trip: a create reads
   * its directory's default ACL right after locking the directory, and that read was a round
   * trip of its own. The second statement runs after the first has the row lock, so it sees
   * the value as of then; xattrs change only under their inode's lock (the service locks the
   * inode first), so it stays right for this transaction until this transaction changes it.
   */
  private lockInode(ino: Ino): Promise<InodeRow | undefined> {
    const result = this.tail.then(async () => {
      this.pending.push(
        { statement: SQL.getInodeLocked, values: [ino] },
        { statement: SQL.getXattr, values: [ino, ACL_DEFAULT_XATTR] },
      );
      // The batch may also hold BEGIN, deferred writes and PREPAREs of statements new here.
      const results = ((await this.flush()) as pg.QueryResult[]).filter((r) => r.command !== 'PREPARE');
      const [row] = results[results.length - 2].rows as InodeRecord[];
      const [acl] = results[results.length - 1].rows as { value: Buffer }[];
      if (row === undefined) return undefined;
      this.lockedRows.add(inodeKey(ino));
      this.defaultAcls.set(ino, acl?.value);
      const inode = toInode(row);
      this.observe(inodeKey(ino), { ...inode });
      this.observe(xattrKey(ino, ACL_DEFAULT_XATTR), acl?.value ?? null);
      return inode;
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  async lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined> {
    if (asOfUs !== undefined) {
      const [row] = await this.rows<DentryRecord>(SQL.lookupAsOf, [parent, name, asOfUs]);
      return row && toDentry(row);
    }
    const key = dentryKey(parent, name);
    if (this.writable) {
      const cached = this.fromCache(key) as DentryRow | null | undefined;
      if (cached) {
        this.defer(SQL.expectDentry, [parent, name, cached.ino, cached.type, cached.cursor]);
        this.observe(key, cached);
        return { ...cached };
      }
      // Known absent, or unknown while nothing went to PostgreSQL yet: assume absent, so that a
      // create costs one round trip. If the name exists after all, the insert's unique key or
      // the check at commit fails this attempt, and a POSIX error (ENOENT) is rechecked.
      if (cached === null || (cached === undefined && this.assumeAbsent(key))) {
        this.absent.add(key);
        this.speculated.add(key);
        return undefined;
      }
      this.hold(key);
    }
    const [row] = await this.rows<DentryRecord>(this.writable ? SQL.lookupLocked : SQL.lookup, [
      parent,
      name,
    ]);
    if (this.writable && row === undefined) this.absent.add(key);
    const entry = row && toDentry(row);
    this.observe(key, entry ? { ...entry } : null);
    return entry;
  }

  /** Whether an unknown name may be assumed absent: only while the attempt is still all in memory. */
  protected assumeAbsent(key: string): boolean {
    if (!this.cachedReads || !this.cache || this.begun || this.written.has(key)) return false;
    if (this.cache.busyElsewhere(key, this.held.has(key))) return false;
    this.hold(key);
    this.usedCache = true;
    return true;
  }

  async listDir(parent: Ino, afterCursor: number, limit: number, asOfUs?: number): Promise<DentryRow[]> {
    const rows =
      asOfUs !== undefined
        ? await this.rows<DentryRecord>(SQL.listDirAsOf, [parent, afterCursor, limit, asOfUs])
        : await this.rows<DentryRecord>(SQL.listDir, [parent, afterCursor, limit]);
    return rows.map(toDentry);
  }

  async hasEntries(parent: Ino): Promise<boolean> {
    const [row] = await this.rows<{ has: boolean }>(SQL.hasEntries, [parent]);
    return row.has;
  }

  async getXattr(ino: Ino, name: string, asOfUs?: number): Promise<Buffer | undefined> {
    if (asOfUs === undefined && name === ACL_DEFAULT_XATTR && this.defaultAcls.has(ino)) {
      return this.defaultAcls.get(ino);
    }
    const key = xattrKey(ino, name);
    if (asOfUs === undefined && this.writable) {
      const cached = this.fromCache(key) as Buffer | null | undefined;
      if (cached !== undefined) {
        if (cached === null) this.defer(SQL.expectNoXattr, [ino, name]);
        else this.defer(SQL.expectXattr, [ino, name, cached]);
        this.observe(key, cached);
        return cached ?? undefined;
      }
      this.hold(key);
    }
    const [row] =
      asOfUs !== undefined
        ? await this.rows<{ value: Buffer }>(SQL.getXattrAsOf, [ino, name, asOfUs])
        : await this.rows<{ value: Buffer }>(this.writable ? SQL.getXattrLocked : SQL.getXattr, [ino, name]);
    if (asOfUs === undefined) this.observe(key, row?.value ?? null);
    return row?.value;
  }

  async listXattrs(ino: Ino, asOfUs?: number): Promise<string[]> {
    const rows =
      asOfUs !== undefined
        ? await this.rows<{ name: string }>(SQL.listXattrsAsOf, [ino, asOfUs])
        : await this.rows<{ name: string }>(SQL.listXattrs, [ino]);
    return rows.map((r) => r.name);
  }

  async getChunk(ino: Ino, chunkIndex: number, asOfUs?: number): Promise<SliceRef[]> {
    const [row] =
      asOfUs !== undefined
        ? await this.rows<{ slices: Buffer }>(SQL.getChunkAsOf, [ino, chunkIndex, asOfUs])
        : await this.rows<{ slices: Buffer }>(this.writable ? SQL.getChunkLocked : SQL.getChunk, [
            ino,
            chunkIndex,
          ]);
    return row ? decodeSlices(row.slices) : [];
  }

  async listChunkIndexes(
    ino: Ino,
    firstChunk: number,
    lastChunk: number,
    asOfUs?: number,
  ): Promise<number[]> {
    const rows =
      asOfUs !== undefined
        ? await this.rows<{ idx: number }>(SQL.listChunkIndexesAsOf, [ino, firstChunk, lastChunk, asOfUs])
        : await this.rows<{ idx: number }>(SQL.listChunkIndexes, [ino, firstChunk, lastChunk]);
    return rows.map((r) => r.idx);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const [row] = await this.rows<{ value: string }>(SQL.getSetting, [key]);
    return row?.value;
  }

  async getCounter(name: string): Promise<number> {
    const [row] = await this.rows<{ value: number }>(SQL.getCounter, [name]);
    const value = row?.value ?? 0;
    if (SHARDED_COUNTERS.has(name)) this.shared.counterEstimates.set(name, value);
    return value;
  }

  async getSession(sessionId: string): Promise<SessionRow | undefined> {
    const [row] = await this.rows<SessionRecord>(SQL.getSession, [sessionId]);
    return row && toSession(row);
  }

  async listSessions(): Promise<SessionRow[]> {
    return (await this.rows<SessionRecord>(SQL.listSessions, [])).map(toSession);
  }

  async listLocks(ino: Ino): Promise<LockRow[]> {
    if (this.writable && !this.lockedLockInodes.has(ino)) {
      await this.run(SQL.lockInodeLocks, [ino]);
      this.lockedLockInodes.add(ino);
    }
    const rows = await this.rows<{
      ino: number;
      session: string;
      owner: string;
      flock: boolean;
      type: LockRow['type'];
      start: number;
      end: number;
      pid: number;
    }>(SQL.listLocks, [ino]);
    return rows.map((r) => ({
      ino: asIno(r.ino),
      sessionId: r.session,
      owner: r.owner,
      flock: r.flock,
      type: r.type,
      start: r.start,
      end: r.end,
      pid: r.pid,
    }));
  }

  async openCount(ino: Ino): Promise<number> {
    const [row] = await this.rows<{ n: number }>(SQL.openCount, [ino]);
    return row.n;
  }

  async listDeletedSlices(deletedBeforeUs: number, limit: number): Promise<DeletedSliceRow[]> {
    const rows = await this.rows<{ id: number; size: number; deleted_us: number }>(SQL.listDeletedSlices, [
      deletedBeforeUs,
      limit,
    ]);
    return rows.map((r) => ({ id: asSliceId(r.id), sliceSizeBytes: r.size, deletedUs: r.deleted_us }));
  }

  async getSliceStates(ids: readonly SliceId[]): Promise<SliceGcState[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<{ id: number; refs: number; last_deleted_us: number | null }>(
      SQL.sliceStates,
      [ids],
    );
    return rows.map((r) => ({
      id: asSliceId(r.id),
      refs: r.refs,
      lastDeletedUs: r.last_deleted_us ?? undefined,
    }));
  }
}
