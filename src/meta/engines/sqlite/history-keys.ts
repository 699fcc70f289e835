// Schema 3 -> 4: dentry_hist becomes clustered on its lookup key (see schema.ts).
import type { Database } from 'better-sqlite3';
import {
  CLUSTERED_HISTORY,
  HISTORY_KEYS,
  HISTORY_TABLES,
  historyTableSql,
  type HistoryTable,
} from './schema.js';

/** True when `table` exists as a rowid table (schema 3 and older: key in a separate index). */
function isRowidTable(db: Database, table: HistoryTable): boolean {
  const sql = db
    .prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
    .pluck()
    .get(table) as string | undefined;
  return sql !== undefined && !/WITHOUT\s+ROWID/i.test(sql);
}

/**
 * Rebuilds every history table (SCHEMA_SQL has made any missing) whose shape is not the one schema.ts wants (clustered on its key
 * or a rowid table with a key index), rows unchanged; returns how many rows moved. Must run
 * inside the transaction that opens the schema (engine.ts): a crash or an error part way leaves
 * the old tables and their indexes whole.
 *
 * Schema 3 did not enforce the key. The engine kept at most one old image per row per commit
 * instant, but should two images of one key end at the same instant, the one written last
 * (higher rowid) stays: the copy runs in rowid order with OR REPLACE. (A clustered table being
 * made a rowid table again, as an early build of schema 4 left inode_hist, is copied in key
 * order, which is commit order per key.)
 */
export function migrateHistoryKeys(db: Database): number {
  let moved = 0;
  for (const table of HISTORY_TABLES) {
    const rowid = isRowidTable(db, table);
    if (rowid !== CLUSTERED_HISTORY.includes(table)) continue;
    const old = `${table}_v3`;
    // Renaming first keeps the final table's name as a new volume has it. The key index keeps its
    // name on the renamed table: dropped first, so that the new table gets its own.
    db.exec(`ALTER TABLE ${table} RENAME TO ${old}`);
    db.exec(`DROP INDEX IF EXISTS ${table}_key`);
    db.exec(historyTableSql(table));
    const columns = (
      db.prepare(`SELECT name FROM pragma_table_info('${old}')`).pluck().all() as string[]
    ).join(', ');
    const order = rowid ? 'rowid' : HISTORY_KEYS[table].join(', ');
    moved += db
      .prepare(`INSERT OR REPLACE INTO ${table} (${columns}) SELECT ${columns} FROM ${old} ORDER BY ${order}`)
      .run().changes;
    db.exec(`DROP TABLE ${old}`);
  }
  return moved;
}
