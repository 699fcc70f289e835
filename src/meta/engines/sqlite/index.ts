export { SqliteEngine, openSqliteEngine, sqlitePath } from './engine.js';
