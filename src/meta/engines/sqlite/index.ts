export { SqliteEngine, openSqliteEngine, sqlitePath, SQLITE_ENGINE_CACHE_BYTES } from './engine.js';
