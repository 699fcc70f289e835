// Schema 3 -> 4: the history tables become clustered on their lookup key (see schema.ts).
import type { Database } from 'better-sqlite3';
import { HISTORY_TABLES, historyTableSql, type HistoryTable } from './schema.js';

/** True when `table` exists as a rowid table (schema 3 and older: key in a separate index). */
function isRowidTable(db: Database, table: HistoryTable): boolean {
  const sql = db
    .prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
    .pluck()
    .get(table) as string | undefined;
  return sql !== undefined && !/WITHOUT\s+ROWID/i.test(sql);
}

/**
 * Rebuilds every history table still in the old shape as a table clustered on its key, rows
 * unchanged; returns how many rows moved. Must run inside the transaction that opens the schema
 * (engine.ts): a crash or an error part way leaves the old tables and their indexes whole.
 *
 * Schema 3 did not enforce the key. The engine kept at most one old image per row per commit
 * instant, but should two images of one key end at the same instant, the one written last
 * (higher rowid) stays: the copy runs in rowid order with OR REPLACE.
 */
export function migrateHistoryKeys(db: Database): number {
  let moved = 0;
  for (const table of HISTORY_TABLES) {
    if (!isRowidTable(db, table)) continue;
    const old = `${table}_v3`;
    // Renaming first keeps the final table's name (and its key index's) as a new volume has them.
    db.exec(`ALTER TABLE ${table} RENAME TO ${old}`);
    db.exec(historyTableSql(table, table));
    const columns = (
      db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]
    ).join(', ');
    moved += db
      .prepare(`INSERT OR REPLACE INTO ${table} (${columns}) SELECT ${columns} FROM ${old} ORDER BY rowid`)
      .run().changes;
    db.exec(`DROP TABLE ${old}`);
  }
  return moved;
}
