import { fsError } from '../../../common/index.js';
import { GROUP_MAX_IN_FLIGHT, GROUP_STALL_MS } from './group-commit.js';
import { redact } from './migrate.js';

/** Engine-specific settings, taken from the URL's query string (and removed before libpq sees it). */
export interface PostgresSettings {
  /** Connections in this server's pool (`?pool_size=16`). */
  poolSize: number;
  /** Publish committed changes on the change feed (`?notify=off` to disable, e.g. one server only). */
  notify: boolean;
  /**
   * Write transactions decide from rows this server cached and check them in their commit
   * batch: one round trip per change (`?cached_reads=off` to read every row first).
   */
  cachedReads: boolean;
  /**
   * Transactions decided from cached rows commit together, several per PostgreSQL transaction
   * (group-commit.ts; `?group_commit=off` to give each its own). Needs cached reads.
   */
  groupCommit: boolean;
  /** PostgreSQL transactions of group commit in flight at once (`?commit_groups=2`). */
  commitGroups: number;
  /**
   * How long a group in flight runs before a further one may leave (`?commit_stall_ms=4`; 0: at
   * once, as many as commit_groups).
   */
  commitStallMs: number;
  /**
   * Group commit sends batches as op codes and values to strata_apply (apply.ts) on connections
   * of its own, instead of SQL text to strata_try (`?typed_batches=off`).
   */
  typedBatches: boolean;
  /** getattr and lookup read in batches with the other reads of the moment, outside transactions (batched-reads.ts; `?batched_reads=off`). */
  batchedReads: boolean;
}

const DEFAULT_POOL_SIZE = 16;

/** Splits our own query parameters off a libpq URL; the rest (host, sslmode, ...) goes to node-postgres. */
export function parsePostgresUrl(url: string): { connectionString: string; settings: PostgresSettings } {
  // Not the WHATWG URL parser: libpq URLs may have an empty host ("postgres://user@/db?host=/run/pg").
  const question = url.indexOf('?');
  const params = new URLSearchParams(question >= 0 ? url.slice(question + 1) : '');
  const settings: PostgresSettings = {
    poolSize: DEFAULT_POOL_SIZE,
    notify: true,
    cachedReads: true,
    groupCommit: true,
    commitGroups: GROUP_MAX_IN_FLIGHT,
    commitStallMs: GROUP_STALL_MS,
    typedBatches: true,
    batchedReads: true,
  };
  settings.poolSize = integer(params, 'pool_size', settings.poolSize, url);
  settings.commitGroups = integer(params, 'commit_groups', settings.commitGroups, url);
  settings.commitStallMs = integer(params, 'commit_stall_ms', settings.commitStallMs, url, 0);
  settings.notify = onOff(params, 'notify', settings.notify, url);
  settings.cachedReads = onOff(params, 'cached_reads', settings.cachedReads, url);
  settings.groupCommit = onOff(params, 'group_commit', settings.groupCommit, url);
  settings.typedBatches = onOff(params, 'typed_batches', settings.typedBatches, url);
  settings.batchedReads = onOff(params, 'batched_reads', settings.batchedReads, url);
  const rest = params.toString();
  const base = question >= 0 ? url.slice(0, question) : url;
  return { connectionString: rest ? `${base}?${rest}` : base, settings };
}

/** Takes an integer parameter (`min` to 1000) off the URL's query string (`fallback` when absent). */
function integer(params: URLSearchParams, name: string, fallback: number, url: string, min = 1): number {
  const value = params.get(name);
  if (value === null) return fallback;
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > 1000) {
    throw fsError.EINVAL(`${name}=${value} in ${redact(url)} must be an integer from ${min} to 1000`);
  }
  params.delete(name);
  return n;
}

/** Takes an on/off parameter off the URL's query string (`fallback` when absent). */
function onOff(params: URLSearchParams, name: string, fallback: boolean, url: string): boolean {
  const value = params.get(name);
  if (value === null) return fallback;
  if (value !== 'on' && value !== 'off') {
    throw fsError.EINVAL(`${name}=${value} in ${redact(url)} must be "on" or "off"`);
  }
  params.delete(name);
  return value === 'on';
}
