import pg from 'pg';
import { prepareStatement, newStatements, quoteLiteral, type Statement } from './sql.js';
import { COUNTER_SHARDS, type TxConnection } from './tx.js';
import {
  APPLY_GROUP,
  SET_PATH_PARAMETER,
  groupParameters,
  type ApplyFailure,
  type TypedBatch,
} from './apply.js';
import { sqlState } from './retry.js';

/** Server transactions per PostgreSQL transaction, at most (one statement each in the batch). */
export const GROUP_MAX_TRANSACTIONS = 64;
/**
 * Groups in flight at once, each on its own connection. A second one leaves only when the one
 * in flight has taken GROUP_STALL_MS: until then what arrives gathers into the next group, and
 * larger groups cost PostgreSQL and the server less per change (in a run of creates 25-29% more
 * per second with 30% less PostgreSQL CPU each than with two groups always in flight), while a
 * group that waits on another server's row lock, or on a slow flush, holds nothing back longer.
 */
export const GROUP_MAX_IN_FLIGHT = 2;
export const GROUP_STALL_MS = 4;

interface Member {
  /** SQL text (EXECUTEs of `uses`), run by strata_try; or, when `typed` is set, nothing. */
  statements: string[];
  uses: Statement[];
  /** The batch as op codes and values, run by strata_apply (apply.ts). */
  typed?: TypedBatch;
  resolve: () => void;
  reject: (error: Error) => void;
  /** The committing transaction, and those whose uncommitted values it decided from (RowCache.publish). */
  order?: CommitOrder;
}

/**
 * A transaction that decided from another one's uncommitted values must reach PostgreSQL after
 * it: in the same group (members run in order) or once its group or own commit has ended. Else
 * its checks may run first, see the rows as they were, and fail (and every member decided from
 * its values after it).
 */
export interface CommitOrder {
  token: object;
  after: ReadonlySet<object>;
}

/**
 * A connection of the committer's own for typed groups: each group is one prepared call in an
 * implicit transaction (no BEGIN, no COMMIT), which a pooled connection cannot always take (its
 * last read may have left a read-only transaction open).
 */
export interface DirectConnection {
  client: pg.Client;
  broken: boolean;
  /** The counter shard every group on this connection adds to (apply.ts, pinCounterShard). */
  counterShard: number;
}

/** What `strata_try` (migration 4) returns for a batch that failed: its SQLSTATE, constraint, message. */
type TryOutcome = [string, string | null, string] | null;

/** An error like node-postgres raises, so the engine's retry rules (retry.ts) apply unchanged. */
function asPgError(outcome: [string, string | null, string]): Error {
  const [code, constraint, message] = outcome;
  return Object.assign(new Error(message), { code, constraint: constraint || undefined });
}

/**
 * Group commit: write transactions that decided everything from this server's cache reach
 * their commit without having sent a query, so they hold no connection and no row lock. Their
 * batches (checks of cached rows, writes, stored call outcome) are committed together: one
 * round trip and one WAL flush for up to GROUP_MAX_TRANSACTIONS of them, instead of one each.
 *
 * Each batch runs inside `strata_try` (migration 4), a PL/pgSQL function with an exception
 * block: its own subtransaction. A batch that fails (a cached row changed, a name inserted by
 * another server meanwhile, a deadlock) undoes only its own writes and returns its error,
 * which its transaction then handles exactly as if it had run alone (the engine retries it
 * reading PostgreSQL); its neighbours commit. Nothing is acknowledged before the group's COMMIT
 * returned, i.e. (synchronous_commit on) before its WAL flush.
 *
 * A transaction that arrives while nothing is in flight is sent at once: grouping adds no wait.
 */
export class GroupCommitter {
  private queue: Member[] = [];
  private inFlight = 0;
  /** When the newest group in flight left (performance.now()). */
  private lastStartMs = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  /** PostgreSQL transactions committed for groups, and the server transactions they carried (metrics, tests). */
  groups = 0;
  groupedTransactions = 0;
  /** Typed groups offered strata_apply3's set-based path, and those of them that fell back to member by member. */
  setGroups = 0;
  setFallbacks = 0;

  constructor(
    private readonly connect: () => Promise<TxConnection>,
    private readonly release: (conn: TxConnection, broken: Error | undefined) => void,
    private readonly maxInFlight = GROUP_MAX_IN_FLIGHT,
    private readonly maxTransactions = GROUP_MAX_TRANSACTIONS,
    /** Opens a connection for typed groups (commitTyped); needed only by those. */
    private readonly openDirect?: () => Promise<pg.Client>,
    /** How long a group in flight runs before a further one may leave (GROUP_STALL_MS). */
    private readonly stallMs = GROUP_STALL_MS,
  ) {}

  /** Whether transactions may commit typed batches (commitTyped): the committer has connections for them. */
  get typedBatches(): boolean {
    return this.openDirect !== undefined;
  }

  /** Idle connections for typed groups (at most maxInFlight exist). */
  private readonly idleDirect: DirectConnection[] = [];
  /**
   * Counter shards of this committer's connections: consecutive from a random start, so that its
   * groups in flight never share one and other servers' groups rarely do.
   */
  private nextCounterShard = Math.floor(Math.random() * COUNTER_SHARDS);
  private closed = false;

  /**
   * Commits one transaction's batch (EXECUTEs of `uses`) with whatever else is waiting.
   * Rejects with the batch's own error (SQLSTATE in `code`) or, when the whole group failed,
   * with the group's.
   */
  commit(statements: string[], uses: Statement[], order?: CommitOrder): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ statements, uses, resolve, reject, order });
      this.pump();
    });
  }

  /**
   * Commits one transaction's typed batch (apply.ts) with whatever else is waiting. Rejects as
   * `commit` does.
   */
  commitTyped(batch: TypedBatch, order?: CommitOrder): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ statements: [], uses: [], typed: batch, resolve, reject, order });
      this.pump();
    });
  }

  /** Closes the connections of typed groups (the engine closes after its transactions drained). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.stallTimer);
    const idle = this.idleDirect.splice(0);
    await Promise.all(idle.map((conn) => conn.client.end().catch(() => undefined)));
  }

  /**
   * Transactions of this engine between the start and the end of their commit, grouped or on
   * their own connection (PgTxDriver.commit adds and removes itself, then calls `wake`).
   */
  readonly committing = new Set<object>();

  /** A commit outside the groups ended: a group waiting for it (CommitOrder) may leave. */
  wake(): void {
    this.pump();
  }

  /**
   * True when a member of the next group decided from values of a transaction still committing
   * outside that group (in a group in flight, or on its own connection): see CommitOrder.
   */
  private mustWait(): boolean {
    if (this.committing.size === 0) return false;
    const end = Math.min(this.queue.length, this.maxTransactions);
    let inGroup: Set<object> | undefined;
    for (let index = 0; index < end; index++) {
      const order = this.queue[index].order;
      if (!order || order.after.size === 0) continue;
      if (!inGroup) {
        inGroup = new Set();
        for (let other = 0; other < end; other++) {
          const token = this.queue[other].order?.token;
          if (token) inGroup.add(token);
        }
      }
      for (const token of order.after) if (this.committing.has(token) && !inGroup.has(token)) return true;
    }
    return false;
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      if (this.mustWait()) return; // the group in flight, or the commit it waits for, pumps when it ends
      if (this.inFlight > 0) {
        const waitedMs = performance.now() - this.lastStartMs;
        if (waitedMs < this.stallMs) {
          // Unref'd: the group in flight pumps again when it ends in any case.
          this.stallTimer ??= setTimeout(() => {
            this.stallTimer = undefined;
            this.pump();
          }, this.stallMs - waitedMs).unref();
          return;
        }
      }
      const group = this.queue.splice(0, this.maxTransactions);
      this.inFlight++;
      this.lastStartMs = performance.now();
      void this.run(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(group: Member[]): Promise<void> {
    const typed = group.filter((member) => member.typed !== undefined);
    if (typed.length === 0) return this.runText(group);
    if (typed.length === group.length) return this.runTyped(typed);
    await Promise.all([this.runTyped(typed), this.runText(group.filter((member) => !member.typed))]);
  }

  /**
   * One PostgreSQL transaction for the typed batches: a single prepared call of strata_apply
   * outside BEGIN, so the call is its own implicit transaction, committed (WAL flushed, with
   * synchronous_commit on) before its ReadyForQuery, which is when node-postgres resolves it.
   */
  private async runTyped(group: Member[]): Promise<void> {
    let conn: DirectConnection;
    try {
      conn = await this.takeDirect();
    } catch (error) {
      for (const member of group) member.reject(error as Error);
      return;
    }
    let failures: ApplyFailure[];
    try {
      const values = groupParameters(
        group.map((member) => member.typed!),
        conn.counterShard,
      );
      const result = await conn.client.query<ApplyFailure>({
        name: APPLY_GROUP.name,
        text: APPLY_GROUP.text,
        values,
      });
      failures = result.rows;
      if (values[SET_PATH_PARAMETER] !== null) this.setGroups++;
    } catch (error) {
      // The implicit transaction rolled back as a whole; the connection stays usable unless it broke.
      for (const member of group) member.reject(error as Error);
      if (sqlState(error) === undefined) conn.broken = true; // not an answer of PostgreSQL: the connection failed
      this.giveBackDirect(conn);
      return;
    }
    this.giveBackDirect(conn);
    this.groups++;
    this.groupedTransactions += group.length;
    // Member 0: the set-based path failed and the group ran member by member (schema-set-apply.ts).
    if (failures.some((failure) => failure.member === 0)) this.setFallbacks++;
    const failed = new Map(failures.map((failure) => [failure.member, failure]));
    group.forEach((member, n) => {
      const failure = failed.get(n + 1);
      if (failure) member.reject(asPgError([failure.state, failure.constraint_name, failure.message]));
      else member.resolve();
    });
  }

  private async takeDirect(): Promise<DirectConnection> {
    for (let idle = this.idleDirect.pop(); idle; idle = this.idleDirect.pop()) {
      if (!idle.broken) return idle;
      void idle.client.end().catch(() => undefined);
    }
    if (!this.openDirect)
      throw new Error('group commit of typed batches needs its own connections (openDirect)');
    const client = await this.openDirect();
    const counterShard = this.nextCounterShard++ % COUNTER_SHARDS;
    const conn: DirectConnection = { client, broken: false, counterShard };
    // A connection that dies while idle must not crash the process; it is replaced when next taken.
    conn.client.on('error', () => (conn.broken = true));
    conn.client.on('end', () => (conn.broken = true));
    return conn;
  }

  private giveBackDirect(conn: DirectConnection): void {
    if (conn.broken || this.closed) void conn.client.end().catch(() => undefined);
    else this.idleDirect.push(conn);
  }

  private async runText(group: Member[]): Promise<void> {
    let conn: TxConnection;
    try {
      conn = await this.connect();
    } catch (error) {
      for (const member of group) member.reject(error as Error);
      return;
    }
    const uses = new Map<string, Statement>();
    for (const member of group) for (const statement of member.uses) uses.set(statement.name, statement);
    const preparing = newStatements(conn.prepared, uses.values());
    const text = [
      conn.begin,
      ...preparing.map(prepareStatement),
      ...group.map((member) => `SELECT strata_try(${quoteLiteral(member.statements.join(';\n'))}) AS o`),
      'COMMIT',
    ].join(';\n');
    let results: pg.QueryResult[];
    try {
      const raw = (await conn.client.query(text)) as pg.QueryResult | pg.QueryResult[];
      results = Array.isArray(raw) ? raw : [raw];
    } catch (error) {
      for (const member of group) member.reject(error as Error);
      this.release(conn, await this.abandon(conn, error, preparing.length > 0));
      return;
    }
    for (const statement of preparing) conn.prepared.add(statement.name);
    this.release(conn, undefined);
    this.groups++;
    this.groupedTransactions += group.length;
    const outcomes = results.filter((r) => r.command === 'SELECT');
    group.forEach((member, n) => {
      const outcome = (outcomes[n]?.rows[0] as { o: TryOutcome } | undefined)?.o;
      if (outcome) member.reject(asPgError(outcome));
      else member.resolve();
    });
  }

  /** After a failed group: the error to destroy the connection with, or undefined when it is fine again. */
  private async abandon(conn: TxConnection, error: unknown, prepared: boolean): Promise<Error | undefined> {
    // Which of the new PREPAREs exist is unknown after a failure: the connection goes.
    if (prepared) return error instanceof Error ? error : new Error(String(error));
    try {
      await conn.client.query('ROLLBACK');
      return undefined;
    } catch (rollbackError) {
      return rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
  }
}
