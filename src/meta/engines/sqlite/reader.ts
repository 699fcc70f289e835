import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { fsError } from '../../../common/index.js';
import type { EngineReader, ReadTx } from '../../engine.js';
import { sqlitePath } from './engine.js';
import { ReadStatements } from './statements.js';
import { SqliteReadTx } from './tx.js';

interface ReadJob {
  fn: (tx: ReadTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * How long a read snapshot may live. It bounds how late reads see changes that reach nobody's
 * `invalidate()` (another connection's writes), and how long it can keep the checkpointer from
 * restarting the log; well under the 100 ms the server's local reads already allow.
 */
const MAX_SNAPSHOT_AGE_MS = 20;

/**
 * Committed state of a SQLite volume through one read-only connection. Reads share one read
 * transaction (one snapshot) until `invalidate()`: the engine calls it at each commit and
 * before each write transaction begins, and a reader on another thread is invalidated by
 * whoever sees the writes' replies, so a caller who got a write's reply always reads it back.
 *
 * The snapshot outlives the reads that opened it: a process probing paths one at a time (a
 * compiler, an interpreter starting) otherwise paid a BEGIN and a COMMIT per lookup. An open
 * read transaction keeps the WAL from starting over, so it ends at once when invalidated while
 * no read runs, and in any case within MAX_SNAPSHOT_AGE_MS.
 */
export class SqliteReader implements EngineReader {
  readonly displayUrl: string;
  readonly db: Database;
  private readonly tx: SqliteReadTx;
  private readonly sql: Record<'begin' | 'commit', Statement>;
  private readonly queue: ReadJob[] = [];
  private draining = false;
  private inRead = false;
  private stale = false;
  private closed = false;
  /** Armed once per snapshot (not per read): it ends the snapshot once it is too old. */
  private readonly ageTimer: NodeJS.Timeout;
  /** Snapshots begun so far (tests). */
  snapshots = 0;

  constructor(path: string, maxSnapshotAgeMs = MAX_SNAPSHOT_AGE_MS) {
    this.displayUrl = `sqlite:${path}`;
    this.db = new BetterSqlite3(path, { readonly: true });
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -65536');
    this.sql = { begin: this.db.prepare('BEGIN'), commit: this.db.prepare('COMMIT') };
    this.tx = new SqliteReadTx(new ReadStatements(this.db));
    // Never cleared while open: refresh() re-arms a timer that has fired, not one cleared.
    this.ageTimer = setTimeout(() => this.invalidate(), maxSnapshotAgeMs);
    this.ageTimer.unref();
  }

  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(fsError.EIO(`metadata engine ${this.displayUrl} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  invalidate(): void {
    if (this.draining) this.stale = true;
    else this.endSnapshot();
  }

  private endSnapshot(): void {
    if (!this.inRead) return;
    this.inRead = false;
    this.sql.commit.run();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (this.stale) {
          this.stale = false;
          this.endSnapshot();
        }
        if (!this.inRead) {
          this.sql.begin.run();
          this.inRead = true;
          this.snapshots++;
          this.ageTimer.refresh();
        }
        const job = this.queue.shift()!;
        try {
          job.resolve(await job.fn(this.tx));
        } catch (error) {
          job.reject(error);
        }
      }
    } finally {
      this.draining = false;
      if (this.stale || this.closed) {
        this.stale = false;
        this.endSnapshot();
      }
    }
  }

  /** Lets queued reads finish, then closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining) await new Promise((resolve) => setImmediate(resolve));
    clearTimeout(this.ageTimer);
    this.endSnapshot();
    this.db.close();
  }
}

export async function openSqliteReader(url: string): Promise<EngineReader> {
  return new SqliteReader(sqlitePath(url));
}
