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

/** How a read snapshot is bounded (SqliteReader's constructor; tests stretch them). */
export interface SnapshotBounds {
  /**
   * A snapshot no read used for this long ends. Reads one after another (a process probing
   * paths) come tens of microseconds apart; changes of another connection nobody announced
   * (another server of the volume) are seen after this much quiet.
   */
  idleMs: number;
  /** No snapshot lives longer, however busy: the bound on staleness and on holding the log. */
  maxAgeMs: number;
}

const DEFAULT_BOUNDS: SnapshotBounds = { idleMs: 1, maxAgeMs: 20 };
/**
 * The reader's page cache, KiB: short reads of hot rows, whose pages the writer's cache and the
 * OS page cache hold too. 16 MiB against 64 gave the same getattr and lookup rates over RPC
 * (engine.ts, WRITER_CACHE_KIB, has the figures).
 */
export const READER_CACHE_KIB = 16 * 1024;

/** The open readers of this thread (each worker thread loads its own copy of this module). */
const openReaders = new Set<SqliteReader>();

/**
 * Ends every idle snapshot of this thread's readers. For a call that waits for readers while it
 * blocks the thread (a TRUNCATE checkpoint): a reader of this thread could never end its snapshot
 * meanwhile, and the call would wait out its whole busy timeout.
 */
export function endIdleSnapshots(): void {
  for (const reader of openReaders) reader.invalidate();
}

/**
 * Committed state of a SQLite volume through one read-only connection. Reads share one read
 * transaction (one snapshot) until `invalidate()`: the engine calls it at each commit and
 * before each write transaction begins, and a reader on another thread is invalidated by
 * whoever sees the writes' replies, so a caller who got a write's reply always reads it back.
 *
 * The snapshot outlives the reads that opened it: a process probing paths one at a time (a
 * compiler, an interpreter starting) otherwise paid a BEGIN and a COMMIT per lookup. An open
 * read transaction keeps the WAL from starting over, so it ends at once when invalidated while
 * no read runs, and in any case after `idleMs` without reads or `maxAgeMs` in all.
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
  private snapshotBeganMs = 0;
  private readonly maxAgeMs: number;
  /** Re-armed when reads run dry: ends the snapshot after `idleMs` without reads. */
  private readonly idleTimer: NodeJS.Timeout;
  /** Snapshots begun so far (tests). */
  snapshots = 0;

  constructor(path: string, bounds: SnapshotBounds = DEFAULT_BOUNDS) {
    this.displayUrl = `sqlite:${path}`;
    this.db = new BetterSqlite3(path, { readonly: true });
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma(`cache_size = -${READER_CACHE_KIB}`);
    this.sql = { begin: this.db.prepare('BEGIN'), commit: this.db.prepare('COMMIT') };
    this.tx = new SqliteReadTx(new ReadStatements(this.db));
    this.maxAgeMs = bounds.maxAgeMs;
    // One timer for the reader's life, never cleared while open: refresh() re-arms a timer that
    // has fired, not one cleared.
    this.idleTimer = setTimeout(() => this.invalidate(), bounds.idleMs);
    this.idleTimer.unref();
    openReaders.add(this);
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
        if (this.stale || (this.inRead && performance.now() - this.snapshotBeganMs > this.maxAgeMs)) {
          this.stale = false;
          this.endSnapshot();
        }
        if (!this.inRead) {
          this.sql.begin.run();
          this.inRead = true;
          this.snapshots++;
          this.snapshotBeganMs = performance.now();
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
      } else if (this.inRead) {
        this.idleTimer.refresh();
      }
    }
  }

  /** Lets queued reads finish, then closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining) await new Promise((resolve) => setImmediate(resolve));
    clearTimeout(this.idleTimer);
    openReaders.delete(this);
    this.endSnapshot();
    this.db.close();
  }
}

export async function openSqliteReader(url: string): Promise<EngineReader> {
  return new SqliteReader(sqlitePath(url));
}
