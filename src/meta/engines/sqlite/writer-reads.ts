import type { Database, Statement } from 'better-sqlite3';
import type { ReadTx } from '../../engine.js';
import { ReadStatements } from './statements.js';
import { SqliteReadTx } from './tx.js';

/**
 * Reads after a commit go to the writer's connection, at most this many per commit; past that,
 * reads without writes between them are a read phase, which the reader's shared snapshots
 * serve more cheaply.
 */
const READS_PER_COMMIT = 16;
/** The writer's read transaction ends after this long without reads (as the reader's, reader.ts). */
const SNAPSHOT_IDLE_MS = 1;

/**
 * Reads on the SQLite writer's connection between its batches. SQLite drops a connection's
 * whole page cache when another connection changed the file, so after every commit the reader
 * connection read each page of its next reads again, from the log or the OS: a getattr and a
 * lookup cost 18-21 µs after a commit against 5 µs in a snapshot without writes
 * (bench/RESULTS.md, Mounted volume, session 14). The writer's own cache stays valid across its
 * commits. Its reads share one read transaction, which `end()` closes before the next batch
 * begins (or after SNAPSHOT_IDLE_MS without reads). The engine must not begin a batch while
 * `running` (a read would see it half done) and starts these reads only between batches.
 */
export class WriterReads {
  /** A read runs: no batch may begin until it ends. */
  running = false;
  private readonly tx: SqliteReadTx;
  private readonly begin: Statement;
  private readonly commit: Statement;
  private snapshotOpen = false;
  /** One timer for the object's life, re-armed by refresh() (as the reader's idle timer). */
  private readonly idleTimer: NodeJS.Timeout;
  /** Reads here since commit number `readsCommitSeq`. */
  private reads = 0;
  private readsCommitSeq = 0;

  constructor(
    db: Database,
    /** Called once a read ends: the engine starts the writes that waited for it. */
    private readonly onReadEnd: () => void,
  ) {
    this.tx = new SqliteReadTx(new ReadStatements(db));
    this.begin = db.prepare('BEGIN');
    this.commit = db.prepare('COMMIT');
    this.idleTimer = setTimeout(() => this.end(), SNAPSHOT_IDLE_MS);
    this.idleTimer.unref();
  }

  /** Whether the next read after commit number `commitSeq` may run here (counts it if so). */
  take(commitSeq: number): boolean {
    if (this.readsCommitSeq !== commitSeq) {
      this.readsCommitSeq = commitSeq;
      this.reads = 0;
    }
    return this.reads++ < READS_PER_COMMIT;
  }

  async read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    this.running = true;
    try {
      if (!this.snapshotOpen) {
        this.begin.run();
        this.snapshotOpen = true;
      }
      return await fn(this.tx);
    } finally {
      this.running = false;
      this.idleTimer.refresh();
      this.onReadEnd();
    }
  }

  /** Ends the read transaction: before a batch begins, when idle, at close. */
  end(): void {
    if (!this.snapshotOpen || this.running) return;
    this.snapshotOpen = false;
    this.commit.run();
  }

  /** Waits for a running read, then ends the read transaction for good. */
  async close(): Promise<void> {
    while (this.running) await new Promise((resolve) => setImmediate(resolve));
    clearTimeout(this.idleTimer);
    this.end();
  }
}
