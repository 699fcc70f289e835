import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { LatencyHistograms, fsError, openWaitingForDescriptor } from '../../../common/index.js';
import {
  systemClock,
  type Clock,
  type Engine,
  type EngineOptions,
  type EngineStats,
  type ReadOptions,
  type ReadTx,
  type WriteTx,
} from '../../engine.js';
import { BatchDentries } from './batch-dentries.js';
import { BatchRows } from './batch-rows.js';
import { changeFailure, storageFailure } from './errors.js';
import { CallBatch, findOutcome, migrateCallOutcomes } from './call-batch.js';
import { CallClients } from './call-clients.js';
import { WalCheckpointer } from './checkpointer.js';
import { migrateAllocatedBytes } from './allocated.js';
import { migrateHistoryKeys } from './history-keys.js';
import { HistoryPruner } from './history-prune.js';
import {
  ALL_TABLES,
  HISTORY_TABLES,
  MIGRATE_CALL_OUTCOMES_SQL,
  SCHEMA_SQL,
  SCHEMA_VERSION,
  migrateSessionFloor,
} from './schema.js';
import { READER_CACHE_KIB, SqliteReader, endIdleSnapshots } from './reader.js';
import { WriteStatements } from './statements.js';
import { SqliteWriteTx, type WriteState } from './tx.js';
import { WriterReads } from './writer-reads.js';

interface Job {
  fn: (tx: WriteTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Settled = { ok: true; job: Job; value: unknown } | { ok: false; job: Job; error: unknown };

/**
 * The writing connection's page cache, KiB. A page it misses comes from the OS page cache (one
 * pread), so this bounds the process's memory more than its speed: meta-rpc, 16 connections,
 * two alternations at load ~2 (with the reader at 16 MiB): 32 MiB against 64 gave the same rates
 * in every row (creates 24,674-26,962 vs 23,461-24,394/s) at a server peak RSS of 251-256
 * against 267-285 MiB (issue goal: under 300).
 */
const WRITER_CACHE_KIB = 32 * 1024;
/**
 * The page caches of one engine (its writer and its reader) at most: memory a process running
 * the engine beside a mount counts in the mount's budget (`strata up`).
 */
export const SQLITE_ENGINE_CACHE_BYTES = (WRITER_CACHE_KIB + READER_CACHE_KIB) * 1024;
const CURSOR_COUNTER = 'engine.dentry_cursor';
const LAST_COMMIT_COUNTER = 'engine.last_commit_us';

/** "sqlite:/abs/path", "sqlite:///abs/path" or "sqlite:relative/path" → the file path. */
export function sqlitePath(url: string): string {
  let rest = url.replace(/^sqlite:/i, '');
  if (rest.startsWith('//')) rest = rest.slice(2);
  const query = rest.indexOf('?');
  if (query >= 0) rest = rest.slice(0, query);
  if (!rest) throw fsError.EINVAL(`no file in SQLite engine URL "${url}"; use sqlite:/path/to/meta.db`);
  return rest;
}

/**
 * SQLite engine: one writer connection with group commit, one reader connection.
 *
 * Group commit: write transactions queue up and run one after another inside one SQLite
 * transaction, each under its own SAVEPOINT (a failing one rolls back alone). The batch
 * commits after `groupCommitMaxOps` transactions, after `groupCommitMaxDelayMs`,
 * or as soon as the queue runs dry at the end of the event-loop turn, whichever comes first.
 * Callers' promises settle only after that commit. All transactions of a batch share one
 * commit instant (`nowUs`), so history keeps one old image per row per batch.
 *
 * Durability: commits go to the WAL without an fsync (synchronous=NORMAL) unless opened
 * `durable`; `sync()` is the barrier that fsyncs the WAL, shared by concurrent callers.
 *
 * Reads see committed state only. They run on their own connection, where queued reads share
 * one read transaction (one snapshot) until a write commits, so a caller who got a write's
 * reply always reads it back; or, right after commits, on the writer's connection between
 * batches (see `read`).
 */
export class SqliteEngine implements Engine {
  readonly displayUrl: string;
  private readonly wdb: Database;
  private readonly reader: SqliteReader;
  /** Reads on the writer's connection between batches (see `read`). */
  private readonly writerReads: WriterReads;
  /** The commit count when the reader last served a read: its page cache is valid up to there. */
  private readerCommitSeq = 0;
  private readonly ws: WriteStatements;
  private readonly wtx: SqliteWriteTx;
  private readonly state: WriteState;
  private readonly clock: Clock;
  private readonly maxOps: number;
  private readonly maxDelayMs: number;
  private readonly counterSet: Statement;
  private readonly callOutcomeGet: Statement;
  private readonly pruner: HistoryPruner;
  // Transaction control as prepared statements: exec() parses its SQL on every call.
  private readonly sql: Record<
    'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo',
    Statement
  >;
  /** Write transactions, physical commits and WAL flushes by sync() so far (benchmarks, tests). */
  readonly counts = { writes: 0, commits: 0, syncs: 0 };
  /** How long each commit took: writing the batch's rows back and COMMIT (metrics). */
  readonly commitLatency = new LatencyHistograms(1);
  /** Every commit fsyncs the WAL itself (synchronous=FULL): sync() has nothing to add. */
  private readonly durableCommits: boolean;
  /** Physical commits so far, and how many of them a WAL flush has made durable. */
  private commitSeq = 0;
  private syncedSeq = 0;
  private walFlush: Promise<void> | null = null;
  /** SQLite syncs the directory once after creating a WAL; sync() does the same on its first flush. */
  private dirSynced = false;
  /** Checkpoints on a thread of their own (null: SQLite's automatic checkpoint in the commit). */
  readonly checkpointer: WalCheckpointer | null;

  private readonly queue: Job[] = [];
  private settled: Settled[] = [];
  private draining = false;
  private inBatch = false;
  private batchStartMs = 0;
  private commitArmed = false;
  /** The running change opened its savepoint (it has changed SQLite). */
  private savepointOpen = false;
  private lastCommitUs: number;

  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  /** Writes held for the checkpoint thread's catch-up (see checkpointer.ts). */
  private held = false;
  private readonly heldWaiters: (() => void)[] = [];

  constructor(
    private readonly path: string,
    options: EngineOptions,
  ) {
    this.displayUrl = `sqlite:${path}`;
    this.clock = options.clock ?? systemClock;
    this.maxOps = options.groupCommitMaxOps ?? 64;
    this.maxDelayMs = options.groupCommitMaxDelayMs ?? 2;
    this.wdb = new BetterSqlite3(path);
    this.wdb.pragma('journal_mode = WAL');
    // NORMAL: a commit is written to the WAL (safe against a crash of this process) but not
    // fsynced; sync() flushes the WAL for everything committed so far, once for all callers.
    this.durableCommits = options.durable === true;
    this.wdb.pragma(`synchronous = ${this.durableCommits ? 'FULL' : 'NORMAL'}`);
    this.wdb.pragma('busy_timeout = 5000');
    this.wdb.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
    // Bound the WAL: checkpoint every ~4 MiB of log (on the checkpoint thread), and truncate
    // the file back afterwards. SQLite's own checkpoint in the commit stays as the bound
    // (64 MiB) should that thread fall behind.
    const checkpointThread = options.checkpointThread !== false;
    this.wdb.pragma(`wal_autocheckpoint = ${checkpointThread ? 16_384 : 1000}`);
    this.checkpointer = checkpointThread ? new WalCheckpointer(path, 1000 * 4096, this) : null;
    // The thread's trigger reads the log file's size, so the file must shrink when the log
    // starts over: limit 0 truncates it to the log's end at the first commit after a restart.
    // With a 64 MiB limit it stayed at its high-water mark, and every commit started a
    // checkpoint (two fsyncs each): 32-144 runs per 1,000 serial creates, now 6-10.
    this.wdb.pragma(`journal_size_limit = ${checkpointThread ? 0 : 67108864}`);
    const version = this.wdb.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw fsError.EINVAL(
        `${path} has metadata schema ${version}, newer than this build (${SCHEMA_VERSION}); upgrade strata`,
      );
    }
    // One transaction: a crash or an error part way through a migration leaves the old schema.
    this.wdb
      .transaction(() => {
        this.wdb.exec(SCHEMA_SQL);
        migrateCallOutcomes(this.wdb, MIGRATE_CALL_OUTCOMES_SQL);
        migrateHistoryKeys(this.wdb);
        migrateSessionFloor(this.wdb);
        migrateAllocatedBytes(this.wdb);
        this.wdb.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
    this.reader = new SqliteReader(path);
    this.ws = new WriteStatements(this.wdb);
    this.sql = {
      begin: this.wdb.prepare('BEGIN IMMEDIATE'),
      commit: this.wdb.prepare('COMMIT'),
      rollback: this.wdb.prepare('ROLLBACK'),
      savepoint: this.wdb.prepare('SAVEPOINT op'),
      release: this.wdb.prepare('RELEASE op'),
      rollbackTo: this.wdb.prepare('ROLLBACK TO op'),
    };
    this.callOutcomeGet = this.reader.db
      .prepare(
        'SELECT b.replies FROM call_batch b JOIN call_client c ON c.num = b.client ' +
          'WHERE c.id = ? AND b.last_seq >= ? AND b.first_seq <= ? ORDER BY b.rowid DESC',
      )
      .pluck();
    this.counterSet = this.ws.counterSet;
    this.pruner = new HistoryPruner(this.wdb);
    const counter = (name: string) => (this.ws.counter.get(name) as number | undefined) ?? 0;
    this.lastCommitUs = counter(LAST_COMMIT_COUNTER);
    this.state = {
      nowUs: 0,
      history: options.history !== false,
      lastCursor: counter(CURSOR_COUNTER),
      rows: new BatchRows(),
      clients: new CallClients(this.ws.callClientFind, this.ws.callClientInsert, () => this.beforeSqlWrite()),
      outcomes: new CallBatch(),
      dentries: new BatchDentries(),
      beforeSqlWrite: () => this.beforeSqlWrite(),
    };
    this.wtx = new SqliteWriteTx(this.ws, this.state);
    this.writerReads = new WriterReads(this.wdb, () => {
      if (this.queue.length > 0 && !this.draining) void this.drain();
    });
  }

  /** A change is about to change SQLite: its savepoint opens now, once (see drain). */
  private beforeSqlWrite(): void {
    if (this.savepointOpen) return;
    this.sql.savepoint.run();
    this.savepointOpen = true;
  }

  write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(fsError.EIO(`metadata engine ${this.displayUrl} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  /**
   * Reads that follow a commit run on the writer's connection, whose page cache stays valid
   * across its own commits (the reader's is dropped at each: writer-reads.ts), between batches
   * only; the next batch waits for a read running there. A `long` read (it awaits more than
   * `tx`) always stays on the reader: on the writer it would hold writes back while it runs.
   */
  read<T>(fn: (tx: ReadTx) => Promise<T>, options?: ReadOptions): Promise<T> {
    if (this.closed) return Promise.reject(fsError.EIO(`metadata engine ${this.displayUrl} is closed`));
    if (
      this.commitSeq !== this.readerCommitSeq &&
      options?.long !== true &&
      this.writerIdle() &&
      this.writerReads.take(this.commitSeq)
    ) {
      return this.writerReads.read(fn);
    }
    this.readerCommitSeq = this.commitSeq;
    return this.reader.read(fn);
  }

  private writerIdle(): boolean {
    return !this.inBatch && !this.draining && !this.writerReads.running && this.queue.length === 0;
  }

  private beginBatch(): void {
    // The log starts over only when a write begins with no read snapshot open on it.
    this.reader.invalidate();
    this.writerReads.end();
    this.sql.begin.run();
    this.inBatch = true;
    this.batchStartMs = performance.now();
    // Commit instants strictly increase, even if the wall clock steps back (history order).
    this.state.nowUs = Math.max(this.clock.nowUs(), this.lastCommitUs + 1);
    this.state.rows.reset();
    this.state.dentries.reset();
    this.state.outcomes.reset();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (!this.inBatch) {
          if (this.held || this.writerReads.running) break;
          try {
            this.beginBatch();
          } catch (error) {
            // e.g. another process holds the write lock past busy_timeout: fail what waits.
            const failure = storageFailure(`cannot start a transaction`, this.displayUrl, error);
            for (const job of this.queue.splice(0)) job.reject(failure);
            break;
          }
        }
        const job = this.queue.shift()!;
        // The savepoint opens at the change's first SQL write (beforeSqlWrite): a create writes
        // only batch memory, and a change that fails before writing has nothing to roll back.
        this.savepointOpen = false;
        this.state.rows.beginChange();
        this.state.dentries.beginChange();
        this.state.clients.beginChange();
        this.state.outcomes.beginChange();
        this.counts.writes++;
        try {
          const value = await job.fn(this.wtx);
          if (this.savepointOpen) {
            this.sql.release.run();
            this.savepointOpen = false;
          }
          this.settled.push({ ok: true, job, value });
        } catch (error) {
          if (!this.undoOne()) {
            this.abortBatch(error, job);
            continue;
          }
          this.settled.push({ ok: false, job, error: changeFailure(this.displayUrl, error) });
        }
        if (this.settled.length >= this.maxOps || performance.now() - this.batchStartMs >= this.maxDelayMs) {
          this.commit();
        }
      }
    } finally {
      this.draining = false;
    }
    // Queue empty: commit at the end of this event-loop turn, so requests that arrive in
    // the same turn (I/O callbacks) still join the batch without waiting for a timer.
    if (this.inBatch && !this.commitArmed) {
      this.commitArmed = true;
      setImmediate(() => {
        this.commitArmed = false;
        if (!this.draining && this.inBatch) this.commit();
      });
    }
  }

  /** Rolls back the current savepoint; false when SQLite already dropped the whole transaction. */
  private undoOne(): boolean {
    this.state.rows.rollbackChange();
    this.state.dentries.rollbackChange();
    this.state.clients.rollbackChange();
    this.state.outcomes.rollbackChange();
    if (!this.wdb.inTransaction) return false;
    if (!this.savepointOpen) return true;
    this.savepointOpen = false;
    try {
      this.sql.rollbackTo.run();
      this.sql.release.run();
      return true;
    } catch {
      return false;
    }
  }

  /** The batch is lost (SQLite rolled it back, e.g. disk full): every caller in it fails. */
  private abortBatch(cause: unknown, current: Job): void {
    if (this.wdb.inTransaction) this.sql.rollback.run();
    this.state.clients.forgetAll();
    this.inBatch = false;
    const failure = storageFailure('metadata transaction aborted', this.displayUrl, cause);
    current.reject(changeFailure(this.displayUrl, cause));
    for (const s of this.settled.splice(0)) s.job.reject(failure);
    this.reader.invalidate();
    this.notifyIdle();
  }

  private commit(): void {
    const startMs = performance.now();
    const settled = this.settled;
    this.settled = [];
    try {
      this.wtx.writeBackInodes();
      this.wtx.writeBackDentries();
      this.state.outcomes.write(this.ws.callBatchPut, this.state.nowUs);
      for (const [name, value] of this.state.rows.dirtyCounters()) this.counterSet.run(name, value);
      this.counterSet.run(CURSOR_COUNTER, this.state.lastCursor);
      this.counterSet.run(LAST_COMMIT_COUNTER, this.state.nowUs);
      this.sql.commit.run();
      this.counts.commits++;
      this.commitLatency.observe(0, performance.now() - startMs);
      this.commitSeq++;
      this.lastCommitUs = this.state.nowUs;
      this.checkpointer?.afterCommit();
    } catch (error) {
      if (this.wdb.inTransaction) this.sql.rollback.run();
      this.state.clients.forgetAll();
      this.inBatch = false;
      const failure = storageFailure('metadata commit failed', this.displayUrl, error);
      for (const s of settled) s.job.reject(failure);
      this.reader.invalidate();
      this.notifyIdle();
      return;
    }
    this.inBatch = false;
    this.reader.invalidate();
    for (const s of settled) {
      if (s.ok) s.job.resolve(s.value);
      else s.job.reject(s.error);
    }
    this.notifyIdle();
  }

  /**
   * Durable barrier for every write that settled before the call: fsyncs the WAL, which holds
   * every commit not yet checkpointed (a checkpoint fsyncs what it moves into the database
   * file under synchronous=NORMAL). Callers arriving while a flush runs share the next one.
   */
  async sync(): Promise<void> {
    if (this.closed) throw fsError.EIO(`metadata engine ${this.displayUrl} is closed`);
    if (this.durableCommits) return;
    const target = this.commitSeq;
    while (this.syncedSeq < target) {
      this.walFlush ??= this.flushWal().finally(() => (this.walFlush = null));
      await this.walFlush;
    }
  }

  private async flushWal(): Promise<void> {
    const upTo = this.commitSeq;
    try {
      // fsync(2) flushes the file, whichever descriptor wrote it; on the libuv pool, so
      // commits continue meanwhile.
      await fsyncPath(this.path + '-wal');
      if (!this.dirSynced) {
        await fsyncPath(dirname(this.path));
        this.dirSynced = true;
      }
    } catch (error) {
      throw storageFailure(`cannot flush the metadata log ${this.path}-wal to disk`, this.displayUrl, error);
    }
    this.counts.syncs++;
    this.syncedSeq = Math.max(this.syncedSeq, upTo);
  }

  /** CheckpointedWriter: no batch open, none begun until `release` (the queue waits, the thread does not). */
  holdWrites(): Promise<() => void> {
    this.held = true;
    const release = (): void => {
      this.held = false;
      if (this.queue.length > 0 && !this.draining) void this.drain();
    };
    if (!this.inBatch) return Promise.resolve(release);
    return new Promise((resolve) => this.heldWaiters.push(() => resolve(release)));
  }

  private notifyIdle(): void {
    if (!this.inBatch) for (const w of this.heldWaiters.splice(0)) w();
    if (this.queue.length > 0 || this.inBatch) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  async pruneHistory(beforeUs: number, maxRows: number): Promise<number> {
    return this.write(async () => {
      this.beforeSqlWrite();
      return this.pruner.prune(beforeUs, maxRows);
    });
  }

  /** CallOutcomeStore (src/meta/call-outcomes.ts): committed state, like any read. */
  getCallOutcome(clientId: string, seq: number): Promise<Buffer | undefined> {
    // A resend may come here after its first attempt committed through another server of the
    // volume a moment ago: look in a fresh snapshot, not one opened before that commit.
    this.reader.invalidate();
    return this.reader.read(async () => {
      for (const blob of this.callOutcomeGet.iterate(clientId, seq, seq) as Iterable<Buffer>) {
        const reply = findOutcome(blob, seq);
        if (reply) return Buffer.from(reply);
      }
      return undefined;
    });
  }

  pruneCallOutcomes(beforeUs: number, maxRows: number): Promise<number> {
    return this.write(async () => {
      this.beforeSqlWrite();
      const deleted = this.wdb
        .prepare(
          'DELETE FROM call_batch WHERE rowid IN (SELECT rowid FROM call_batch ORDER BY rowid LIMIT ?) AND at_us < ?',
        )
        .run(maxRows, beforeUs).changes;
      // Clients with no outcome left: one indexed probe each, not a scan of the outcomes. Those
      // with outcomes waiting for this batch's COMMIT (call-batch.ts) keep their number.
      const gone = this.wdb
        .prepare(
          'DELETE FROM call_client WHERE NOT EXISTS (SELECT 1 FROM call_batch WHERE client = call_client.num) ' +
            'AND num NOT IN (SELECT value FROM json_each(?))',
        )
        .run(JSON.stringify(this.state.outcomes.pendingClients())).changes;
      if (gone > 0) this.state.clients.forgetAll();
      return deleted;
    });
  }

  async wipe(): Promise<void> {
    await this.write(async () => {
      this.beforeSqlWrite();
      for (const table of ALL_TABLES) this.wdb.exec(`DELETE FROM ${table}`);
      // Nothing this batch cached may be written back over the emptied tables.
      this.state.rows.reset();
      this.state.dentries.reset();
      this.state.outcomes.reset();
      this.state.clients.forgetAll();
    });
  }

  async stats(): Promise<EngineStats> {
    return this.reader.read(async () => {
      let historyRows = 0;
      for (const table of HISTORY_TABLES) {
        historyRows += this.reader.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
      }
      let sizeBytes = 0;
      for (const suffix of ['', '-wal']) {
        try {
          sizeBytes += statSync(this.path + suffix).size;
        } catch {
          // no WAL file right after a truncating checkpoint
        }
      }
      return { historyRows, sizeBytes };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.length > 0 || this.inBatch || this.draining) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await this.writerReads.close();
    await this.walFlush?.catch(() => undefined);
    await this.checkpointer?.close();
    await this.reader.close();
    endIdleSnapshots();
    this.wdb.pragma('wal_checkpoint(TRUNCATE)');
    this.wdb.close();
  }
}

async function fsyncPath(path: string): Promise<void> {
  // Out of descriptors for a moment (a burst of fsyncs under a low ulimit -n): wait, not EIO.
  const handle = await openWaitingForDescriptor(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function openSqliteEngine(url: string, options: EngineOptions): Promise<Engine> {
  return new SqliteEngine(sqlitePath(url), options);
}
