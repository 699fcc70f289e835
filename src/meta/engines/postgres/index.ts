/**
 * The PostgreSQL metadata engine: the HA / scale-out engine. Several metadata servers may serve
 * one volume from one database; they learn about each other's writes through `ChangeFeed`.
 */
import { MIGRATIONS } from './schema.js';
import { planMigrationsWith } from './migrate.js';
import type { Engine } from '../../engine.js';
import type { ChangeFeed } from './changefeed.js';
import { PostgresEngine, parsePostgresUrl } from './engine.js';

export {
  PostgresEngine,
  openPostgresEngine,
  parsePostgresUrl,
  CHANGE_CHANNEL,
  type PostgresSettings,
} from './engine.js';
export { ChangeFeed, type MetaChange } from './changefeed.js';
export { withRetry, isRetryable, type RetryPolicy } from './retry.js';

/**
 * The dry run of `strata meta migrate`: the schema migrations the server would apply to the
 * database at `url`, as text for a person. Changes nothing.
 */
export function planMigrations(url: string): Promise<string> {
  return planMigrationsWith(parsePostgresUrl(url).connectionString, MIGRATIONS);
}

/**
 * The change feed of `engine` when it has one (PostgreSQL: other servers' writes), else
 * undefined (SQLite: one server owns the file, nothing else changes it). The metadata server
 * subscribes once and forwards each change to its clients as cache invalidations.
 */
export function changeFeedOf(engine: Engine): Promise<ChangeFeed> | undefined {
  return engine instanceof PostgresEngine ? engine.subscribeChanges() : undefined;
}
