import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { isFsError } from '../../src/common/index.js';
import { PostgresEngine } from '../../src/meta/engines/postgres/index.js';
import type { MetaService } from '../../src/meta/index.js';

/**
 * Shared by the PostgreSQL tests: each test gets a fresh database on the throwaway cluster of
 * scripts/postgres/start.sh, dropped afterwards. Without STRATA_PG_TEST_URL the tests skip
 * with this message (CI sets it, so there they always run for real).
 */
export const PG_TEST_URL = process.env.STRATA_PG_TEST_URL;
export const PG_SKIP_REASON =
  PG_TEST_URL === undefined
    ? 'STRATA_PG_TEST_URL is not set: run eval "$(scripts/postgres/start.sh)" first'
    : undefined;

export const LONG_PROFILE = process.env.STRATA_TEST_PROFILE === 'long';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(requireUrl(), 'postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function requireUrl(): string {
  if (PG_TEST_URL === undefined) throw new Error(PG_SKIP_REASON);
  return PG_TEST_URL;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database; `drop` terminates leftover connections and removes it. */
export async function createTestDatabase(prefix = 'strata_t'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  return {
    url: withDatabase(requireUrl(), name),
    drop: () =>
      admin(async (client) => {
        await client.query('DROP DATABASE IF EXISTS ' + pg.escapeIdentifier(name) + ' WITH (FORCE)');
      }),
  };
}

/**
 * A fresh schema in the test database, reached through `search_path` in the URL: much faster
 * than CREATE DATABASE (no checkpoint), for suites that need hundreds of empty volumes.
 */
export async function createTestSchema(prefix = 'strata_s'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const base = requireUrl();
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    url: url.toString(),
    drop: () => run(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`),
  };
}

/** The PostgreSQL engine behind a service (fails the test if it is another engine). */
export function postgresEngineOf(service: MetaService): PostgresEngine {
  const engine = service.engine;
  assert.ok(engine instanceof PostgresEngine);
  return engine;
}

/** The errno a call fails with, or 'ok'; anything other than a POSIX error is thrown on. */
export async function errnoOf(work: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await work;
    return 'ok';
  } catch (error) {
    if (isFsError(error)) return error.errno;
    throw error;
  }
}
