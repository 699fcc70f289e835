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
 * Committed state of a SQLite volume through one read-only connection. Queued reads share one
 * read transaction (one snapshot) until `invalidate()`: the engine calls it at each commit, and
 * a reader on another thread is invalidated by whoever sees the writes' replies, so a caller
 * who got a write's reply always reads it back.
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

  constructor(path: string) {
    this.displayUrl = `sqlite:${path}`;
    this.db = new BetterSqlite3(path, { readonly: true });
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -65536');
    this.sql = { begin: this.db.prepare('BEGIN'), commit: this.db.prepare('COMMIT') };
    this.tx = new SqliteReadTx(new ReadStatements(this.db));
  }

  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(fsError.EIO(`metadata engine ${this.displayUrl} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  invalidate(): void {
    this.stale = true;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        if (this.inRead && this.stale) {
          this.sql.commit.run();
          this.inRead = false;
        }
        if (!this.inRead) {
          this.sql.begin.run();
          this.inRead = true;
          this.stale = false;
        }
        const job = this.queue.shift()!;
        try {
          job.resolve(await job.fn(this.tx));
        } catch (error) {
          job.reject(error);
        }
      }
    } finally {
      if (this.inRead) {
        this.sql.commit.run();
        this.inRead = false;
      }
      this.draining = false;
    }
  }

  /** Lets queued reads finish, then closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining) await new Promise((resolve) => setImmediate(resolve));
    this.db.close();
  }
}

export async function openSqliteReader(url: string): Promise<EngineReader> {
  return new SqliteReader(sqlitePath(url));
}
