import type pg from 'pg';
import { asIno, asSliceId, type Ino, type SliceId, type SliceRef } from '../../../common/index.js';
import type { DeletedSliceRow, DentryRow, InodeRow, LockRow, SessionRow, WriteTx } from '../../engine.js';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR } from '../../acl.js';
import { decodeSlices, encodeSlices } from '../../slice-codec.js';
import {
  toDentry,
  toInode,
  toSession,
  type DentryRecord,
  type InodeRecord,
  type SessionRecord,
} from '../rows.js';
import { COUNTER_INODES, COUNTER_USED_BYTES } from '../../namespace.js';
import { SQL, executeStatement, newStatements, prepareStatement, type Statement } from './sql.js';
import { dentryKey, inodeKey, xattrKey, type CachedValue, type RowCache } from './row-cache.js';
import type { GroupCommitter } from './group-commit.js';
import { encodeBatch, type BatchOp } from './apply.js';

/**
 * Counters the service only keeps for statfs: nearly every create, unlink and write changes
 * them, and one row would make every such transaction of every server wait for the previous
 * one's commit. Each transaction adds to one of COUNTER_SHARDS rows instead; their sum is the
 * value. Id allocation counters (ino_hi, slice_hi) stay single rows: their returned value must
 * be exact.
 */
const SHARDED_COUNTERS = new Set([COUNTER_INODES, COUNTER_USED_BYTES]);
export const COUNTER_SHARDS = 64;
/** Readdir cursors fetched from the sequence per round trip. */
const CURSOR_BLOCK = 64;

/** State one engine's transactions share. */
export interface SharedTxState {
  /** Readdir cursors fetched and not handed out yet, the next one last. */
  cursors: number[];
  counterEstimates: Map<string, number>;
  /** Queries sent to PostgreSQL by transactions (each one round trip): metrics, tests. */
  roundTrips: number;
}

/** A pooled connection as a transaction uses it. */
export interface TxConnection {
  client: pg.PoolClient;
  /** Statements PREPAREd on this connection (SQL-level, for batches). */
  prepared: Set<string>;
  /** The BEGIN to send first on it (with a COMMIT in front when a read left its snapshot open). */
  begin: string;
  /** True when the connection held an open read-only transaction (ended by `begin`). */
  endsOpenRead: boolean;
}

/** The values of an inode row in the order of the inode statements' first parameters (SQL.expectInode, SQL.putInode, ...). */
const inodeValues = (row: InodeRow): unknown[] => [
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
];

/** The distinct statements a batch executes (to PREPARE where new). */
function usedStatements(batch: readonly BatchOp[]): Statement[] {
  const used = new Map<string, Statement>();
  for (const op of batch) used.set(op.statement.name, op.statement);
  return [...used.values()];
}

/** What a write transaction changed, for the change feed. */
export interface TxChanges {
  inos: Set<number>;
  entries: Map<string, [number, string]>;
}

/**
 * One transaction on one pooled connection. Read transactions run in REPEATABLE READ (one
 * snapshot); write transactions in READ COMMITTED where every current-state read of a row that
 * may be written takes its row lock (FOR UPDATE). The service reads what it is about to change
 * (the parent directory, the entry, the inode) before changing it, so two servers working on the
 * same directory queue on its row instead of both deciding from the same stale state; a name
 * two transactions both saw absent is caught by the unique key and retried.
 */
export class PgTx implements WriteTx {
  readonly changes: TxChanges = { inos: new Set(), entries: new Map() };
  /** Entries (dentryKey) looked up and found absent in this transaction: inserted without upsert. */
  private readonly absent = new Set<string>();
  private readonly lockedLockInodes = new Set<number>();
  private readonly counterShard = Math.floor(Math.random() * COUNTER_SHARDS);
  /** Default ACLs read with their inode's lock (lockInode); undefined value = none. */
  private readonly defaultAcls = new Map<number, Buffer | undefined>();

  /**
   * Statements not sent yet: writes whose result nobody waits for (BEGIN goes in front when
   * the first batch leaves). They travel in front of the next query (or with COMMIT) as one
   * multi-statement simple query, so a create costs about five round trips instead of nine.
   * Reads always go after them: a transaction sees its own writes.
   */
  private pending: BatchOp[] = [];
  /** True once BEGIN reached the server (so there is something to commit or roll back). */
  private begun = false;
  /** The last query sent: callers may overlap calls (Promise.all), one connection runs one at a time. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The connection, taken from the pool when the first query leaves (a grouped commit needs none). */
  private conn: TxConnection | undefined;

  /** A batch with new PREPAREs failed: which of them exist is unknown, drop the connection. */
  poisoned = false;

  /**
   * Cached reads (row-cache.ts): what this transaction read or wrote, for the cache once it
   * commits (a write overrides a read of the same key; null = gone).
   */
  private readonly observed = new Map<string, CachedValue>();
  /**
   * Inode rows that exist and that this transaction holds locked (read FOR UPDATE, a cached
   * copy checked, or written by it): written back with a plain UPDATE.
   */
  private readonly lockedRows = new Set<string>();
  /**
   * Checks of cached inodes still waiting in `pending` (key -> index and checked values): a
   * write of the same inode replaces its check with one checked UPDATE (one statement, not two).
   */
  private readonly pendingInodeChecks = new Map<string, { index: number; values: unknown[] }>();
  /** Keys this transaction wrote: reading them again must see its own write, not the cache. */
  private readonly written = new Set<string>();
  /** Keys this transaction marked busy in the cache (released by `finish`). */
  private readonly held = new Set<string>();
  /** Entries assumed absent without asking (the insert's unique key or a check at commit decides). */
  private readonly speculated = new Set<string>();
  /** True once a decision rested on a cached or assumed value (a POSIX error must then be rechecked). */
  usedCache = false;

  constructor(
    private readonly shared: SharedTxState,
    /** Takes a pooled connection, or the one the transaction was given (`connection`). */
    private readonly connect: () => Promise<TxConnection>,
    private readonly writable: boolean,
    readonly nowUs: number,
    /** Copy old images into history when their version is below this (0: history off). */
    private readonly historyBeforeUs: number,
    /** The server's row cache: reads of a read transaction are offered to it. */
    private readonly cache?: RowCache,
    /** Write transactions: decide from cached values this attempt (the first one only). */
    private readonly cachedReads = false,
    /**
     * Group commit (group-commit.ts): a write transaction that never needed a query before its
     * commit sends its batch with other transactions' in one PostgreSQL transaction.
     */
    private readonly committer?: GroupCommitter,
  ) {}

  /** The connection this transaction took, if it took one (the engine hands it back). */
  get connection(): TxConnection | undefined {
    return this.conn;
  }

  private async send<R extends pg.QueryResultRow>(statement: Statement, values: unknown[]): Promise<R[]> {
    if (this.begun && this.pending.length === 0) {
      this.shared.roundTrips++;
      const result = await this.conn!.client.query<R>({ name: statement.name, text: statement.text, values });
      return result.rows;
    }
    this.pending.push({ statement, values });
    const results = (await this.flush<R>()) as pg.QueryResult<R> | pg.QueryResult<R>[];
    return Array.isArray(results) ? results[results.length - 1].rows : results.rows;
  }

  /**
   * Sends the pending statements (and COMMIT when `commit`) as one multi-statement simple query
   * (one round trip).
   */
  private async flush<R extends pg.QueryResultRow>(commit = false): Promise<unknown> {
    const conn = (this.conn ??= await this.connect());
    const batch = this.pending.map((op) => executeStatement(op.statement, op.values));
    const preparing = newStatements(conn.prepared, usedStatements(this.pending));
    this.pending = [];
    this.pendingInodeChecks.clear();
    // PREPAREs go after BEGIN: a BEGIN ISOLATION LEVEL must be the first statement.
    batch.unshift(...(this.begun ? [] : [conn.begin]), ...preparing.map(prepareStatement));
    if (commit) batch.push('COMMIT');
    this.begun = true;
    this.shared.roundTrips++;
    try {
      const results: unknown = await conn.client.query<R>(batch.join(';\n'));
      for (const statement of preparing) conn.prepared.add(statement.name);
      return results;
    } catch (error) {
      if (preparing.length > 0) this.poisoned = true;
      throw error;
    }
  }

  private rows<R extends pg.QueryResultRow>(statement: Statement, values: unknown[]): Promise<R[]> {
    const result = this.tail.then(() => this.send<R>(statement, values));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async run(statement: Statement, values: unknown[]): Promise<void> {
    await this.rows(statement, values);
  }

  /** Queues a write whose result is not needed; it reaches the server with the next query or COMMIT. */
  private defer(statement: Statement, values: unknown[]): void {
    this.pending.push({ statement, values });
  }

  /**
   * Ends the transaction: checks of cached values, deferred writes and COMMIT in one round
   * trip. Nothing at all when the transaction never reached the server. (The change
   * notification goes after the commit: notifier.ts.)
   */
  async commit(): Promise<void> {
    await this.tail;
    // Names assumed absent and not inserted (an insert's unique key checks those itself).
    for (const key of this.speculated) {
      if (!this.absent.has(key)) continue;
      const slash = key.indexOf('/');
      this.defer(SQL.expectNoDentry, [Number(key.slice(1, slash)), key.slice(slash + 1)]);
    }
    if (!this.begun && this.pending.length === 0) return; // nothing happened
    if (!this.begun && this.committer) {
      // Nothing sent yet, so no connection and no row lock held: commit with other
      // transactions in one PostgreSQL transaction (one round trip, one WAL flush), as op
      // codes and values where strata_apply knows every statement (apply.ts), else as SQL text.
      const batch = this.pending;
      this.pending = [];
      this.shared.roundTrips++;
      const typed = this.committer.typedBatches ? encodeBatch(batch) : undefined;
      if (typed) await this.committer.commitTyped(typed);
      else
        await this.committer.commit(
          batch.map((op) => executeStatement(op.statement, op.values)),
          usedStatements(batch),
        );
      return;
    }
    await this.flush(true);
  }

  /** Resolves once no query of this transaction is in flight (before ROLLBACK). */
  async settled(): Promise<void> {
    await this.tail;
  }

  /** True when ROLLBACK is needed (BEGIN reached the server). */
  get started(): boolean {
    return this.begun;
  }

  private noteEntry(parent: number, name: string): void {
    this.changes.entries.set(`${parent}/${name}`, [parent, name]);
  }

  /**
   * Ends this transaction's use of the cache: after a commit, what it read and wrote becomes
   * the cache's newest knowledge; after a failure, every key it touched is forgotten (one of
   * them may be what failed its checks).
   */
  finish(committed: boolean): void {
    const cache = this.cache;
    if (!cache || !this.writable) return;
    for (const key of this.held) cache.release(key);
    if (committed) {
      for (const [key, value] of this.observed) {
        if (value === null && key.charCodeAt(0) === 0x69 /* i */) cache.dropInode(Number(key.slice(1)));
        else cache.set(key, value);
      }
    } else {
      for (const key of this.observed.keys()) cache.drop(key);
      for (const key of this.speculated) cache.drop(key);
    }
  }

  private hold(key: string): void {
    if (!this.cache || this.held.has(key)) return;
    this.held.add(key);
    this.cache.hold(key);
  }

  /** A read's result, remembered for the cache unless this transaction already wrote the key. */
  private observe(key: string, value: CachedValue): void {
    if (!this.writable) this.cache?.offer(key, value);
    else if (this.cache && !this.observed.has(key)) this.observed.set(key, value);
  }

  private wrote(key: string, value: CachedValue): void {
    if (!this.cache) return;
    this.hold(key);
    this.written.add(key);
    this.observed.set(key, value);
  }

  /**
   * The cached value of `key` this attempt may decide from (checked at commit), or undefined:
   * no cached reads this attempt, unknown, written by this transaction (it must read its own
   * write), or in use by another transaction of this server (which is about to change it).
   */
  private fromCache(key: string): CachedValue | undefined {
    if (!this.cachedReads || !this.cache || this.written.has(key)) return undefined;
    const value = this.cache.get(key);
    if (value === undefined || this.cache.busyElsewhere(key, this.held.has(key))) return undefined;
    this.hold(key);
    this.usedCache = true;
    return value;
  }

  // --- reads ---

  async getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined> {
    if (asOfUs === undefined && this.writable) {
      const key = inodeKey(ino);
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
  private assumeAbsent(key: string): boolean {
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
   * Readdir cursors come from a sequence, a block at a time per engine (fetched on this
   * transaction's connection: a transaction never waits for a second one). Unique across
   * servers and increasing per server; an entry another server adds during a readdir may be
   * skipped by it, as POSIX allows for entries created during readdir.
   */
  private async nextCursor(): Promise<number> {
    const shared = this.shared;
    if (shared.cursors.length === 0) {
      const rows = await this.rows<{ c: number }>(SQL.nextCursors, [CURSOR_BLOCK]);
      if (shared.cursors.length === 0) shared.cursors = rows.map((r) => r.c).reverse();
    }
    return shared.cursors.pop()!;
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
    this.defer(SQL.putSession, [row.sessionId, JSON.stringify(row.info), row.startedUs, row.heartbeatUs]);
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

  async forgetDeletedSlices(ids: SliceId[]): Promise<void> {
    if (ids.length > 0) this.defer(SQL.forgetDeletedSlices, [ids]);
  }
}
