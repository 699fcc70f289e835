// History retention. Rowid history tables are append-ordered by commit time: their oldest rows
// are the first rowids. The tables clustered on their key (schema.ts) have no such order, so
// pruning sweeps each in key order, a bounded window per call, and remembers where it stopped
// across calls and restarts.
import type { Database, Statement } from 'better-sqlite3';
import { CLUSTERED_HISTORY, HISTORY_KEYS, HISTORY_TABLES, type HistoryTable } from './schema.js';

type Key = (number | string)[];

/** Where the sweep stands: the table, and the last key it looked at there (null: the table's start). */
interface Position {
  table: number;
  after: Key | null;
}

const POSITION_SETTING = 'engine.history_prune_position';

/**
 * Keys looked at per deleted row allowed (per table per call). A sweep over rows that are mostly
 * young still moves this many keys per call; rows are read in key order, cheap next to the write
 * of a change, so a call stays a few milliseconds while a sweep over 10M rows takes minutes of
 * calls. The service calls again at once while a call deletes its full quota.
 */
const SCAN_KEYS_PER_ROW = 4;

interface TableStatements {
  /** The key `OFFSET ?` rows after the start key: where this call's window ends. */
  windowEnd: Statement;
  /** The `OFFSET ?`-th row old enough in (start, end]: where the quota runs out. */
  quotaEnd: Statement;
  /** Deletes the rows old enough in (start, end]. */
  delete: Statement;
}

export class HistoryPruner {
  private readonly tables: TableStatements[];
  /** Rowid tables: rowid order is commit order (schema.ts), so the oldest rows are the first. */
  private readonly oldest: Statement[];
  private readonly positionGet: Statement;
  private readonly positionPut: Statement;
  private position: Position;

  constructor(db: Database) {
    this.tables = CLUSTERED_HISTORY.map((table) => prepareTable(db, table));
    this.oldest = HISTORY_TABLES.filter((table) => !CLUSTERED_HISTORY.includes(table)).map((table) =>
      db.prepare(
        `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} ORDER BY rowid LIMIT ?) AND to_us < ?`,
      ),
    );
    this.positionGet = db.prepare('SELECT value FROM setting WHERE key = ?').pluck();
    this.positionPut = db.prepare('INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)');
    this.position = this.load();
  }

  private load(): Position {
    const raw = this.positionGet.get(POSITION_SETTING) as string | undefined;
    if (raw === undefined) return { table: 0, after: null };
    const p = JSON.parse(raw) as Position;
    if (!(p.table >= 0 && p.table < this.tables.length)) return { table: 0, after: null };
    return p;
  }

  /**
   * Deletes at most `maxRows` history rows whose validity ended before `beforeUs`: from the rowid
   * tables, among their `maxRows` oldest rows; then from the clustered ones by the sweep.
   * Runs inside a write transaction.
   */
  prune(beforeUs: number, maxRows: number): number {
    let deleted = 0;
    for (const statement of this.oldest) {
      if (deleted >= maxRows) return deleted;
      deleted += statement.run(maxRows - deleted, beforeUs).changes;
    }
    return deleted < maxRows ? deleted + this.sweep(beforeUs, maxRows - deleted) : deleted;
  }

  /**
   * Deletes at most `maxRows` rows of the clustered tables whose validity ended before
   * `beforeUs`, looking at up to SCAN_KEYS_PER_ROW × maxRows keys in each table it reaches; at
   * most one pass over the tables. The position is stored with the deletions. (Should that
   * transaction roll back, the position kept in memory is merely ahead: the next pass looks again.)
   */
  private sweep(beforeUs: number, maxRows: number): number {
    const windowRows = Math.max(1, maxRows) * SCAN_KEYS_PER_ROW;
    let deleted = 0;
    for (let visited = 0; visited < this.tables.length && deleted < maxRows; visited++) {
      const { table, after } = this.position;
      const s = this.tables[table];
      const width = HISTORY_KEYS[CLUSTERED_HISTORY[table]].length;
      const start = after ?? lowest(width);
      const windowEnd = s.windowEnd.get(...start, windowRows - 1) as Key | undefined;
      const end = windowEnd ?? highest(width);
      const quotaEnd = s.quotaEnd.get(...start, ...end, beforeUs, maxRows - deleted - 1) as Key | undefined;
      deleted += s.delete.run(...start, ...(quotaEnd ?? end), beforeUs).changes;
      if (quotaEnd !== undefined) this.position = { table, after: quotaEnd };
      else if (windowEnd !== undefined) this.position = { table, after: windowEnd };
      else this.position = { table: (table + 1) % this.tables.length, after: null };
      // A window that ended inside the table is this call's share of it: stop there.
      if (quotaEnd !== undefined || windowEnd !== undefined) break;
    }
    this.positionPut.run(POSITION_SETTING, JSON.stringify(this.position));
    return deleted;
  }
}

function prepareTable(db: Database, table: HistoryTable): TableStatements {
  const key = HISTORY_KEYS[table].join(', ');
  const params = HISTORY_KEYS[table].map(() => '?').join(', ');
  const inWindow = `(${key}) > (${params}) AND (${key}) <= (${params}) AND to_us < ?`;
  return {
    windowEnd: db
      .prepare(`SELECT ${key} FROM ${table} WHERE (${key}) > (${params}) ORDER BY ${key} LIMIT 1 OFFSET ?`)
      .raw(true),
    quotaEnd: db
      .prepare(`SELECT ${key} FROM ${table} WHERE ${inWindow} ORDER BY ${key} LIMIT 1 OFFSET ?`)
      .raw(true),
    delete: db.prepare(`DELETE FROM ${table} WHERE ${inWindow}`),
  };
}

// Every key's first column is an inode number (1 and up), so these bound every row; the other
// columns only break ties with a first column no row has.
const lowest = (width: number): Key => [-Number.MAX_SAFE_INTEGER, ...Array<number>(width - 1).fill(0)];
const highest = (width: number): Key => [Number.MAX_SAFE_INTEGER, ...Array<number>(width - 1).fill(0)];
