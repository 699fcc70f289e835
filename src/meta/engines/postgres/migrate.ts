import pg from 'pg';

/** One schema step. Versions are dense and never change once released: add, never edit. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Any advisory-lock key works as long as every StrataFS server uses the same one. */
const MIGRATION_LOCK_KEY = 0x57a7a_f5;

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS strata_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

type Queryable = Pick<pg.ClientBase, 'query'>;

async function appliedVersions(db: Queryable): Promise<Set<number>> {
  const exists = await db.query<{ present: boolean }>(
    `SELECT to_regclass('strata_migrations') IS NOT NULL AS present`,
  );
  if (!exists.rows[0].present) return new Set();
  const result = await db.query<{ version: number }>('SELECT version FROM strata_migrations');
  return new Set(result.rows.map((row) => row.version));
}

function pending(migrations: readonly Migration[], applied: Set<number>): Migration[] {
  const newest = Math.max(0, ...applied);
  const known = Math.max(0, ...migrations.map((m) => m.version));
  if (newest > known) {
    throw new Error(
      `the database schema is at version ${newest} but this StrataFS knows versions up to ${known}; ` +
        'upgrade StrataFS before serving this database',
    );
  }
  return migrations.filter((m) => !applied.has(m.version)).sort((a, b) => a.version - b.version);
}

/**
 * Applies every pending migration, each in its own transaction. Several servers may start at
 * once: a transaction-scoped advisory lock makes the second one wait and then find nothing to do.
 * Returns the versions it applied.
 */
export async function applyMigrations(pool: pg.Pool, migrations: readonly Migration[]): Promise<number[]> {
  const client = await pool.connect();
  const done: number[] = [];
  try {
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await client.query(CREATE_MIGRATIONS_TABLE);
        const next = pending(migrations, await appliedVersions(client))[0];
        if (next === undefined) {
          await client.query('COMMIT');
          return done;
        }
        await client.query(next.sql);
        await client.query('INSERT INTO strata_migrations (version, name) VALUES ($1, $2)', [
          next.version,
          next.name,
        ]);
        await client.query('COMMIT');
        done.push(next.version);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
  } finally {
    client.release();
  }
}

/**
 * The dry run behind `strata meta migrate`: what `applyMigrations` would do to the database
 * at `connectionString`, as text for a person. Changes nothing.
 */
export async function planMigrationsWith(
  connectionString: string,
  migrations: readonly Migration[],
): Promise<string> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const applied = await appliedVersions(client);
    const todo = pending(migrations, applied);
    const current = Math.max(0, ...applied);
    const lines = [
      `database ${redact(connectionString)}: schema version ${current}` +
        (applied.size === 0 ? ' (empty: no StrataFS schema yet)' : ''),
    ];
    if (todo.length === 0) {
      lines.push('up to date: nothing to apply');
      return lines.join('\n');
    }
    lines.push(`${todo.length} migration(s) to apply, each in its own transaction:`);
    for (const m of todo) {
      lines.push('', `-- version ${m.version}: ${m.name}`, m.sql.trim());
    }
    return lines.join('\n');
  } finally {
    await client.end();
  }
}

/** The URL without its password, for messages. */
export function redact(connectionString: string): string {
  return connectionString
    .replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@')
    .replace(/([?&]password=)[^&]*/i, '$1***');
}
