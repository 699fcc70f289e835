import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { LatencyHistograms, asIno, fsError, isFsError, type Ino } from '../../../common/index.js';
import {
  systemClock,
  type Clock,
  type Engine,
  type EngineOptions,
  type EngineStats,
  type InodeRow,
  type LookupReads,
  type ReadTx,
  type WriteTx,
} from '../../engine.js';
import { ChangeFeed, type MetaChange } from './changefeed.js';
import { applyMigrations, redact } from './migrate.js';
import {
  withRetry,
  isConnectionError,
  isRetryable,
  sqlState,
  DEFAULT_RETRY_POLICY,
  STALE_CACHE_SQLSTATE,
  type RetryPolicy,
} from './retry.js';
import { RowCache, dentryKey, inodeKey } from './row-cache.js';
import { ChangeNotifier } from './notifier.js';
import { ALL_TABLES, HISTORY_TABLES, MIGRATIONS } from './schema.js';
import { GroupCommitter } from './group-commit.js';
import { BatchedReads } from './batched-reads.js';
import { parsePostgresUrl, type PostgresSettings } from './settings.js';
import { CURSOR_BLOCK, PgTx, type SharedTxState, type TxConnection } from './tx.js';
import { SQL } from './sql.js';

const READ_BEGIN = 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY';
/** Idle pooled connections close after this (and with them any open read-only snapshot). */
const POOL_IDLE_TIMEOUT_MS = 1000;

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** LISTEN/NOTIFY channel of the change feed; one database holds one volume. */
export const CHANGE_CHANNEL = 'strata_meta_changes';

export { parsePostgresUrl, type PostgresSettings } from './settings.js';

/**
 * Commit instants must keep increasing across restarts even if the clock steps back, so each
 * server records its newest one now and then (and at close), and a server starts above it.
 * Not on every commit: one row written by every transaction of every server would serialize them.
 */
const LAST_COMMIT_COUNTER = 'engine.last_commit_us';
const LAST_COMMIT_SAVE_INTERVAL_MS = 1000;

// bigint columns hold inode numbers, sizes and µs instants, all below 2^53: read them as numbers.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** A POSIX error decided from cached values: retried reading PostgreSQL (retry.ts, SR001). */
function staleDecision(error: Error): Error {
  return Object.assign(new Error(`rechecking without cached rows: ${error.message}`, { cause: error }), {
    code: STALE_CACHE_SQLSTATE,
  });
}

/**
 * The PostgreSQL metadata engine. Several StrataFS servers may open the same database at once:
 * ids come from the database (counters, sequences) so they stay unique across servers, every
 * write transaction retries on serialization failure / deadlock / duplicate insert, and each
 * committed write publishes what it changed on the `strata_meta_changes` channel.
 */
export class PostgresEngine implements Engine {
  readonly displayUrl: string;
  /** Identifies this engine's own notifications on the change feed. */
  readonly originId = randomBytes(6).toString('hex');
  /** Serialization failures, deadlocks and duplicate inserts retried so far (metrics, tests). */
  retries = 0;
  /**
   * Write attempts and write transactions committed (metrics; the shape the SQLite engine keeps,
   * src/meta/server/engine-stats.ts). PostgreSQL's own sync is every commit: `syncs` stays 0.
   * `refills`: first attempts whose assumed-absent names were read for the next (refill).
   */
  readonly counts = { writes: 0, commits: 0, syncs: 0, refills: 0 };
  /** How long each commit took as its change waited for it (its group's round trip included). */
  readonly commitLatency = new LatencyHistograms(1);

  private readonly clock: Clock;
  private readonly history: boolean;
  /** BEGIN of write transactions: with `durable: false`, commits do not wait for the WAL flush. */
  private readonly writeBegin: string;
  private lastNowUs = 0;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing = false;
  private feed: Promise<ChangeFeed> | undefined;
  private readonly shared: SharedTxState = { cursors: [], counterEstimates: new Map(), roundTrips: 0 };
  /** Announces committed changes to the other servers (undefined with `notify=off`). */
  private readonly notifier: ChangeNotifier | undefined;
  /** Rows this server read or wrote lately (row-cache.ts); undefined with `cached_reads=off`. */
  readonly cache: RowCache | undefined;
  /** Commits cached-read transactions together (group-commit.ts); undefined with `group_commit=off`. */
  readonly committer: GroupCommitter | undefined;
  /** getattr's and lookup's reads, batched (batched-reads.ts); undefined with `batched_reads=off`. */
  readonly batchedReads: BatchedReads | undefined;
  /** Engine.readInode and Engine.readLookup, offered while reads are batched. */
  readonly readInode: ((ino: Ino) => Promise<InodeRow | undefined>) | undefined;
  readonly readLookup: ((parent: Ino, name: string) => Promise<LookupReads>) | undefined;
  /** SQL-level prepared statements per pooled connection. */
  private readonly prepared = new WeakMap<pg.PoolClient, Set<string>>();
  /** Pooled connections whose last read left its read-only transaction open. */
  private readonly openReads = new WeakSet<pg.PoolClient>();
  private savedNowUs = 0;
  private readonly saveTimer: NodeJS.Timeout;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly connectionString: string,
    private readonly settings: PostgresSettings,
    options: EngineOptions,
    private readonly retryPolicy: RetryPolicy,
  ) {
    this.displayUrl = redact(connectionString);
    this.cache = settings.cachedReads ? new RowCache() : undefined;
    this.notifier = settings.notify
      ? new ChangeNotifier(connectionString, CHANGE_CHANNEL, this.originId)
      : undefined;
    this.committer =
      this.cache && settings.groupCommit
        ? new GroupCommitter(
            () => this.acquire(this.writeBegin),
            // The group's BEGIN ended any open read, and it committed or rolled back.
            (conn, broken) => this.giveBack(conn.client, broken, false),
            settings.commitGroups,
            undefined,
            settings.typedBatches ? () => this.openDirect(options.durable !== false) : undefined,
            settings.commitStallMs,
          )
        : undefined;
    const reads = settings.batchedReads
      ? new BatchedReads(
          () => this.openDirect(true),
          (error) => (isFsError(error) ? error : this.failure(error)),
          this.cache,
        )
      : undefined;
    this.batchedReads = reads;
    this.readInode = reads && ((ino) => this.track(() => reads.readInode(ino)));
    this.readLookup = reads && ((parent, name) => this.track(() => reads.readLookup(parent, name)));
    this.clock = options.clock ?? systemClock;
    this.history = options.history ?? true;
    // Not durable = a crash of PostgreSQL may lose the last few hundred ms of acknowledged
    // changes (never corrupts): the same trade as SQLite's synchronous=NORMAL.
    this.writeBegin = options.durable === false ? 'BEGIN;\nSET LOCAL synchronous_commit = off' : 'BEGIN';
    this.saveTimer = setInterval(
      () => void this.saveLastCommit().catch(() => undefined),
      LAST_COMMIT_SAVE_INTERVAL_MS,
    );
    this.saveTimer.unref();
    this.shared.refillCursors = () => this.refillCursors();
  }

  private cursorRefill: Promise<void> | undefined;
  /** Bumped by wipe(): a refill that started before it hands out nothing. */
  private cursorEpoch = 0;

  /** SharedTxState.refillCursors: one fetch at a time; a failure leaves it to the next low stock. */
  private refillCursors(): void {
    if (this.cursorRefill || this.closing) return;
    const epoch = this.cursorEpoch;
    this.cursorRefill = this.query<{ c: number }>(SQL.nextCursors.text, [CURSOR_BLOCK])
      .then((rows) => {
        if (epoch !== this.cursorEpoch) return;
        // Kept in descending order (the next one last), whichever fetch of this server ended first.
        const stock = this.shared.cursors;
        for (const row of rows) stock.push(row.c);
        stock.sort((a, b) => b - a);
      })
      .catch(() => undefined)
      .finally(() => (this.cursorRefill = undefined));
  }

  /**
   * A connection outside the pool for group commit's typed batches (one per group in flight).
   * Each group is one implicit transaction there, so durability is set for the session.
   */
  private async openDirect(durable: boolean): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, types });
    try {
      await client.connect();
      if (!durable) await client.query('SET synchronous_commit = off');
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw fsError.EIO(`cannot reach PostgreSQL at ${this.displayUrl}: ${String(error)}`, error);
    }
  }

  private async saveLastCommit(): Promise<void> {
    const nowUs = this.lastNowUs;
    if (nowUs <= this.savedNowUs) return;
    await this.query(
      `INSERT INTO counter (name, value) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET value = greatest(counter.value, EXCLUDED.value)`,
      [LAST_COMMIT_COUNTER, nowUs],
    );
    this.savedNowUs = Math.max(this.savedNowUs, nowUs);
  }

  /** Connects, creates or migrates the schema (safe with several servers starting at once). */
  static async open(
    url: string,
    options: EngineOptions = {},
    retryPolicy = DEFAULT_RETRY_POLICY,
  ): Promise<PostgresEngine> {
    const { connectionString, settings } = parsePostgresUrl(url);
    const pool = new pg.Pool({
      connectionString,
      max: settings.poolSize,
      types,
      idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    });
    // An idle pooled connection that dies (server restart) must not crash the process.
    pool.on('error', () => undefined);
    let lastCommitUs: number;
    try {
      await applyMigrations(pool, MIGRATIONS);
      const saved = await pool.query<{ value: number }>('SELECT value FROM counter WHERE name = $1', [
        LAST_COMMIT_COUNTER,
      ]);
      lastCommitUs = saved.rows[0]?.value ?? 0;
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw fsError.EIO(
        `cannot open PostgreSQL metadata engine at ${redact(connectionString)}: ${String(error)}`,
        error,
      );
    }
    const engine = new PostgresEngine(pool, connectionString, settings, options, retryPolicy);
    try {
      await engine.notifier?.start();
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw fsError.EIO(
        `cannot open the change notifier connection to ${redact(connectionString)}: ${String(error)}`,
        error,
      );
    }
    engine.lastNowUs = lastCommitUs;
    engine.savedNowUs = lastCommitUs;
    return engine;
  }

  /**
   * The change feed of this database: every write committed by any server (this one included:
   * skip `originId` to ignore your own). Started on first call, shared afterwards, closed with
   * the engine.
   */
  subscribeChanges(): Promise<ChangeFeed> {
    this.feed ??= ChangeFeed.start({ connectionString: this.connectionString, channel: CHANGE_CHANNEL }).then(
      (feed) => {
        // Other servers' changes make cached rows stale: forget them now rather than fail a
        // check later (a check still catches whatever the feed misses or delivers late).
        feed.on('change', (change: MetaChange) => {
          const cache = this.cache;
          if (!cache || change.originId === this.originId) return;
          if (change.invalidateAll) cache.clear();
          for (const ino of change.inos) cache.dropInode(ino);
          for (const { parent, name } of change.entries) {
            cache.drop(dentryKey(parent, name));
            cache.drop(inodeKey(parent));
          }
        });
        return feed;
      },
    );
    return this.feed;
  }

  /** Queries sent by this engine's transactions so far (one round trip each): metrics, tests. */
  get roundTrips(): number {
    return this.shared.roundTrips;
  }

  private nextNowUs(): number {
    this.lastNowUs = Math.max(this.clock.nowUs(), this.lastNowUs + 1);
    return this.lastNowUs;
  }

  private async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) throw fsError.EIO(`metadata engine ${this.displayUrl} is closed`);
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.untrack();
    }
  }

  private untrack(): void {
    if (--this.inFlight === 0) this.drained?.();
  }

  /**
   * A pooled connection. `begin` is the BEGIN to use on it: a connection whose last read left
   * its read-only transaction open gets "COMMIT;" in front (see `read`).
   */
  private async acquire(begin: string): Promise<TxConnection> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw fsError.EIO(`cannot reach PostgreSQL at ${this.displayUrl}: ${String(error)}`, error);
    }
    const endsOpenRead = this.openReads.delete(client);
    return {
      client,
      prepared: this.preparedOn(client),
      begin: endsOpenRead ? `COMMIT;\n${begin}` : begin,
      endsOpenRead,
    };
  }

  private preparedOn(client: pg.PoolClient): Set<string> {
    let prepared = this.prepared.get(client);
    if (!prepared) this.prepared.set(client, (prepared = new Set()));
    return prepared;
  }

  /** Hands a connection back; `openRead` when it still holds a read-only transaction. */
  private giveBack(client: pg.PoolClient, broken: Error | undefined, openRead: boolean, tx?: PgTx): void {
    if (tx?.poisoned && broken === undefined)
      broken = new Error('prepared statements of this connection unknown');
    if (openRead && broken === undefined) this.openReads.add(client);
    client.release(broken);
  }

  /**
   * Reads leave their REPEATABLE READ, READ ONLY transaction open when they hand the connection
   * back: its COMMIT rides in front of the next transaction on that connection, so a getattr
   * costs one round trip instead of two (on this kind of machine each round trip costs the
   * client ~150 µs of CPU). Idle connections close after POOL_IDLE_TIMEOUT_MS, so an open
   * read-only snapshot never holds back vacuum for longer than that.
   */
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.track(() =>
      withRetry(
        async () => {
          const conn = await this.acquire(READ_BEGIN);
          const { client, endsOpenRead } = conn;
          const tx = new PgTx(this.shared, () => Promise.resolve(conn), false, this.lastNowUs, 0, this.cache);
          try {
            const result = await fn(tx);
            await tx.settled();
            this.giveBack(client, undefined, tx.started || endsOpenRead, tx);
            return result;
          } catch (error) {
            const broken = await this.rollback(client, tx, error);
            this.giveBack(client, broken, !tx.started && endsOpenRead, tx);
            throw this.translate(error);
          }
        },
        this.retryPolicy,
        () => this.retries++,
      ),
    );
  }

  /**
   * The first attempt of a write decides from cached rows where it can (row-cache.ts) and
   * checks them in its commit batch; a later attempt (after a failed check, a conflict, or a
   * POSIX error that may come from a stale value) reads everything from PostgreSQL. The first
   * attempt takes a connection only when it has to ask PostgreSQL something before its commit;
   * if it never does, it commits with other such transactions (group-commit.ts).
   */
  write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    // Attempts that decide from the cache: the first, and the second once refill() fetched
    // names the first assumed absent.
    let cachedAttempts = 1;
    return this.track(() =>
      withRetry(
        async (attempt) => {
          const cached = attempt <= cachedAttempts;
          const grouped = cached ? this.committer : undefined;
          const given = grouped ? undefined : await this.acquire(this.writeBegin);
          const nowUs = this.nextNowUs();
          const tx = new PgTx(
            this.shared,
            () => (given ? Promise.resolve(given) : this.acquire(this.writeBegin)),
            true,
            nowUs,
            this.history ? nowUs : 0,
            this.cache,
            cached,
            grouped,
          );
          this.counts.writes++;
          try {
            const result = await fn(tx);
            const commitStartMs = performance.now();
            await tx.commit();
            this.commitLatency.observe(0, performance.now() - commitStartMs);
            this.counts.commits++;
            tx.finish(true);
            this.notifier?.publish(tx.changes);
            const conn = tx.connection ?? given;
            if (conn) this.giveBack(conn.client, undefined, !tx.started && conn.endsOpenRead, tx);
            return result;
          } catch (error) {
            tx.finish(false);
            const conn = tx.connection ?? given;
            if (conn) {
              const broken = await this.rollback(conn.client, tx, error);
              this.giveBack(conn.client, broken, !tx.started && conn.endsOpenRead, tx);
            }
            if (sqlState(error) === STALE_CACHE_SQLSTATE && this.cache) this.cache.staleReads++;
            if (isFsError(error) && tx.usedCache) {
              if (attempt === 1 && (await this.refill(tx.speculatedEntries()))) cachedAttempts = 2;
              throw staleDecision(error);
            }
            throw this.translate(error);
          }
        },
        this.retryPolicy,
        () => this.retries++,
      ),
    );
  }

  /**
   * After a first attempt failed with a POSIX error while it assumed names absent that the
   * cache did not know (a rename or unlink of an entry this server never saw, or one evicted):
   * reads those names, with their directories and inodes, through the batched lookups, which
   * offer them to the cache, so that the next attempt decides from them and still commits
   * grouped, instead of reading each row under its lock with a round trip of its own and
   * committing alone. True when one of the names exists (the assumption was what failed).
   * Read failures are left to the next attempt, which reads PostgreSQL itself.
   */
  private async refill(entries: ReadonlyArray<readonly [number, string]>): Promise<boolean> {
    const reads = this.batchedReads;
    if (!reads || !this.cache || entries.length === 0) return false;
    try {
      const found = await Promise.all(
        entries.map(async ([dir, name]) => {
          const parent = asIno(dir);
          return (await reads.readLookup(parent, name)).lookup(parent, name);
        }),
      );
      if (!found.some((entry) => entry !== undefined)) return false;
      this.counts.refills++;
      return true;
    } catch {
      return false;
    }
  }

  /** One statement outside the namespace transactions (maintenance, stats). */
  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const { client, endsOpenRead } = await this.acquire('');
    let broken: Error | undefined;
    try {
      if (endsOpenRead) await client.query('COMMIT');
      return (await client.query<R>(text, values)).rows;
    } catch (error) {
      broken = isConnectionError(error) ? asError(error) : undefined;
      throw error;
    } finally {
      this.giveBack(client, broken, false);
    }
  }

  /** Rolls back; returns the error to destroy the connection with when it is unusable. */
  private async rollback(client: pg.PoolClient, tx: PgTx, error: unknown): Promise<Error | undefined> {
    if (isConnectionError(error)) return asError(error);
    try {
      await tx.settled();
      if (!tx.started) return undefined;
      await client.query('ROLLBACK');
      return undefined;
    } catch (rollbackError) {
      return asError(rollbackError);
    }
  }

  /** Leaves FsErrors and retryable conflicts alone; anything else from PostgreSQL becomes EIO. */
  private translate(error: unknown): unknown {
    if (isFsError(error) || isRetryable(error)) return error;
    if (sqlState(error) === undefined && !isConnectionError(error)) return error; // a bug in fn: keep its stack
    return this.failure(error);
  }

  /** A failure of PostgreSQL or of the connection to it, as the EIO the caller sees. */
  private failure(error: unknown): Error {
    return fsError.EIO(`PostgreSQL metadata engine at ${this.displayUrl} failed: ${String(error)}`, error);
  }

  async pruneHistory(beforeUs: number, maxRows: number): Promise<number> {
    return this.track(async () => {
      let removed = 0;
      for (const table of HISTORY_TABLES) {
        if (removed >= maxRows) break;
        // History rows are appended in (roughly) commit order: prune from the front only, so a
        // batch never scans the whole table looking for old rows.
        const [row] = await this.query<{ n: number }>(
          `WITH d AS (DELETE FROM ${table} WHERE seq IN (
             SELECT seq FROM (SELECT seq, to_us FROM ${table} ORDER BY seq LIMIT $2) f WHERE to_us < $1
           ) RETURNING 1) SELECT count(*) AS n FROM d`,
          [beforeUs, maxRows - removed],
        );
        removed += row.n;
      }
      return removed;
    });
  }

  /** CallOutcomeStore (src/meta/call-outcomes.ts): committed state, from any server. */
  async getCallOutcome(clientId: string, seq: number): Promise<Buffer | undefined> {
    return this.track(async () => {
      const [row] = await this.query<{ reply: Buffer }>(
        'SELECT reply FROM call_outcome WHERE client_id = $1 AND seq = $2',
        [clientId, seq],
      );
      return row?.reply;
    });
  }

  async pruneCallOutcomes(beforeUs: number, maxRows: number): Promise<number> {
    return this.track(async () => {
      // Outcomes are appended in about commit order: prune from the front, in one batch.
      const [row] = await this.query<{ n: number }>(
        `WITH d AS (DELETE FROM call_outcome WHERE seq_no IN (
           SELECT seq_no FROM (SELECT seq_no, at_us FROM call_outcome ORDER BY seq_no LIMIT $2) f
           WHERE at_us < $1
         ) RETURNING 1) SELECT count(*) AS n FROM d`,
        [beforeUs, maxRows],
      );
      return Number(row.n);
    });
  }

  async wipe(): Promise<void> {
    await this.track(async () => {
      await this.query(
        `TRUNCATE ${ALL_TABLES.join(', ')} RESTART IDENTITY; ALTER SEQUENCE dentry_cursor_seq RESTART`,
      );
      // Fetched cursors would come round again from the restarted sequence.
      this.shared.cursors = [];
      this.cursorEpoch++;
      this.shared.counterEstimates.clear();
    });
  }

  async stats(): Promise<EngineStats> {
    return this.track(async () => {
      const counts = HISTORY_TABLES.map((t) => `(SELECT count(*) FROM ${t})`).join(' + ');
      const [row] = await this.query<{ history_rows: number; size_bytes: number }>(
        `SELECT (${counts})::bigint AS history_rows, pg_database_size(current_database()) AS size_bytes`,
      );
      return { historyRows: row.history_rows, sizeBytes: row.size_bytes };
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.cursorRefill;
    clearInterval(this.saveTimer);
    await this.saveLastCommit().catch(() => undefined);
    await this.notifier?.close();
    await this.committer?.close();
    await this.batchedReads?.close();
    const feed = this.feed;
    this.feed = undefined;
    if (feed) await (await feed.catch(() => undefined))?.close();
    await this.pool.end();
  }
}

/** Registered for the postgres:// and postgresql:// schemes. */
export function openPostgresEngine(url: string, options: EngineOptions): Promise<Engine> {
  return PostgresEngine.open(url, options);
}
