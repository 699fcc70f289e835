import type pg from 'pg';
import { SQL, executeStatement, newStatements, prepareStatement, type Statement } from './sql.js';
import { entryOfKey, type CachedValue, type RowCache } from './row-cache.js';
import type { GroupCommitter } from './group-commit.js';
import { encodeBatch, type BatchOp } from './apply.js';

/** State one engine's transactions share. */
export interface SharedTxState {
  /** Readdir cursors fetched and not handed out yet, the next one last. */
  cursors: number[];
  /**
   * Fetches the next block of cursors outside any transaction (on a pooled connection of its
   * own) when the stock runs low, so that a transaction rarely has to fetch them itself: such
   * a transaction has sent a query, so it holds a connection and can no longer join a group
   * commit. Undefined: transactions fetch on their own connection when the stock is empty.
   */
  refillCursors?: () => void;
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
 * How one transaction (see PgTx) reaches PostgreSQL: its pooled connection, the batch of
 * deferred statements that rides in front of the next query or with the COMMIT, the commit
 * itself (alone or grouped with other transactions), and what it read and wrote, which the row
 * cache learns once it ends.
 */
export abstract class PgTxDriver {
  readonly changes: TxChanges = { inos: new Set(), entries: new Map() };
  /** Entries (dentryKey) looked up and found absent in this transaction: inserted without upsert. */
  protected readonly absent = new Set<string>();

  /**
   * Statements not sent yet: writes whose result nobody waits for (BEGIN goes in front when
   * the first batch leaves). They travel in front of the next query (or with COMMIT) as one
   * multi-statement simple query, so a create costs about five round trips instead of nine.
   * Reads always go after them: a transaction sees its own writes.
   */
  protected pending: BatchOp[] = [];
  /** True once BEGIN reached the server (so there is something to commit or roll back). */
  protected begun = false;
  /** The last query sent: callers may overlap calls (Promise.all), one connection runs one at a time. */
  protected tail: Promise<unknown> = Promise.resolve();
  /** The connection, taken from the pool when the first query leaves (a grouped commit needs none). */
  private conn: TxConnection | undefined;

  /** A batch with new PREPAREs failed: which of them exist is unknown, drop the connection. */
  poisoned = false;

  /**
   * Cached reads (row-cache.ts): what this transaction read or wrote, for the cache once it
   * commits (a write overrides a read of the same key; null = gone).
   */
  protected readonly observed = new Map<string, CachedValue>();
  /**
   * Checks of cached inodes still waiting in `pending` (key -> index and checked values): a
   * write of the same inode replaces its check with one checked UPDATE (one statement, not two).
   */
  protected readonly pendingInodeChecks = new Map<string, { index: number; values: unknown[] }>();
  /** Keys this transaction wrote: reading them again must see its own write, not the cache. */
  protected readonly written = new Set<string>();
  /** Keys this transaction marked busy in the cache (released by `finish`). */
  protected readonly held = new Set<string>();
  /** Entries assumed absent without asking (the insert's unique key or a check at commit decides). */
  protected readonly speculated = new Set<string>();
  /** True once a decision rested on a cached or assumed value (a POSIX error must then be rechecked). */
  usedCache = false;
  /** True once this transaction's values went to the cache at its commit (publishDecided). */
  private published = false;
  /** Transactions whose uncommitted values this one decided from: it commits after them (CommitOrder). */
  private readonly after = new Set<object>();

  constructor(
    protected readonly shared: SharedTxState,
    /** Takes a pooled connection, or the one the transaction was given (`connection`). */
    private readonly connect: () => Promise<TxConnection>,
    protected readonly writable: boolean,
    readonly nowUs: number,
    /** Copy old images into history when their version is below this (0: history off). */
    protected readonly historyBeforeUs: number,
    /** The server's row cache: reads of a read transaction are offered to it. */
    protected readonly cache?: RowCache,
    /** Write transactions: decide from cached values this attempt (the first one only). */
    protected readonly cachedReads = false,
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
  protected async flush<R extends pg.QueryResultRow>(commit = false): Promise<unknown> {
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

  protected rows<R extends pg.QueryResultRow>(statement: Statement, values: unknown[]): Promise<R[]> {
    const result = this.tail.then(() => this.send<R>(statement, values));
    this.tail = result.catch(() => undefined);
    return result;
  }

  protected async run(statement: Statement, values: unknown[]): Promise<void> {
    await this.rows(statement, values);
  }

  /** Queues a write whose result is not needed; it reaches the server with the next query or COMMIT. */
  protected defer(statement: Statement, values: unknown[]): void {
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
    for (const key of this.speculated)
      if (this.absent.has(key)) this.defer(SQL.expectNoDentry, entryOfKey(key));
    if (!this.begun && this.pending.length === 0) return; // nothing happened
    this.publishDecided();
    const committer = this.committer;
    committer?.committing.add(this);
    try {
      if (!this.begun && committer) {
        // Nothing sent yet, so no connection and no row lock held: commit with other
        // transactions in one PostgreSQL transaction (one round trip, one WAL flush), as op
        // codes and values where strata_apply knows every statement (apply.ts), else as SQL text.
        const batch = this.pending;
        this.pending = [];
        this.shared.roundTrips++;
        const order = { token: this, after: this.after };
        const typed = committer.typedBatches ? encodeBatch(batch) : undefined;
        if (typed) await committer.commitTyped(typed, order);
        else
          await committer.commit(
            batch.map((op) => executeStatement(op.statement, op.values)),
            usedStatements(batch),
            order,
          );
        return;
      }
      await this.flush(true);
    } finally {
      if (committer) {
        committer.committing.delete(this);
        committer.wake();
      }
    }
  }

  /** Resolves once no query of this transaction is in flight (before ROLLBACK). */
  async settled(): Promise<void> {
    await this.tail;
  }

  /** True when ROLLBACK is needed (BEGIN reached the server). */
  get started(): boolean {
    return this.begun;
  }

  /** The names this attempt assumed absent without asking PostgreSQL (see `speculated`). */
  speculatedEntries(): Array<[number, string]> {
    return [...this.speculated].map(entryOfKey);
  }

  protected noteEntry(parent: number, name: string): void {
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
    if (this.published) {
      for (const key of this.observed.keys()) cache.settle(key, this, committed);
      if (!committed) for (const key of this.speculated) cache.settle(key, this, false);
      return;
    }
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

  /**
   * At the commit, once everything is decided: the values this transaction read and wrote go to
   * the cache now and its keys are free (RowCache.publish), so that the next transaction on the
   * same rows (creates in one directory) decides from them and commits after this one, checked
   * against them, instead of reading PostgreSQL under the row lock and committing alone.
   */
  private publishDecided(): void {
    const cache = this.cache;
    if (!cache || !this.writable) return;
    for (const [key, value] of this.observed) cache.publish(key, value, this);
    for (const key of this.held) cache.release(key);
    this.held.clear();
    this.published = true;
  }

  protected hold(key: string): void {
    if (!this.cache || this.held.has(key)) return;
    this.held.add(key);
    this.cache.hold(key);
  }

  /** A read's result, remembered for the cache unless this transaction already wrote the key. */
  protected observe(key: string, value: CachedValue): void {
    if (!this.writable) this.cache?.offer(key, value);
    else if (this.cache && !this.observed.has(key)) this.observed.set(key, value);
  }

  protected wrote(key: string, value: CachedValue): void {
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
  protected fromCache(key: string): CachedValue | undefined {
    if (!this.cachedReads || !this.cache || this.written.has(key)) return undefined;
    const value = this.cache.get(key);
    if (value === undefined || this.cache.busyElsewhere(key, this.held.has(key))) return undefined;
    this.hold(key);
    this.usedCache = true;
    const publisher = this.cache.publisherOf(key);
    if (publisher !== undefined && publisher !== this) this.after.add(publisher);
    return value;
  }
}
