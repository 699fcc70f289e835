import type pg from 'pg';
import type { Ino } from '../../../common/index.js';
import { ACL_ACCESS_XATTR } from '../../acl.js';
import type { DentryRow, InodeRow, LookupReads } from '../../engine.js';
import { toDentry, toInode, type InodeRecord } from '../rows.js';
import { int8Array, textArray } from './binary-array.js';
import { isConnectionError } from './retry.js';
import { dentryKey, inodeKey, xattrKey, type RowCache } from './row-cache.js';
import { INODE_COLUMNS, SQL } from './sql.js';

/** Batches in flight at once per kind of read, each on a connection of the readers' own. */
const BATCHES_IN_FLIGHT = 2;
/** Reads per query, at most. */
const BATCH_READS = 256;

/**
 * Connections of the batched readers: opened on demand, kept while idle, and dropped when they
 * die while idle (PostgreSQL restarted, the backend terminated) instead of crashing the process
 * with an unhandled 'error' event.
 */
class ReaderConnections {
  private readonly idle: pg.Client[] = [];
  private closed = false;

  constructor(private readonly open: () => Promise<pg.Client>) {}

  async take(): Promise<pg.Client> {
    const kept = this.idle.pop();
    if (kept) return kept;
    const client = await this.open();
    const forget = (): void => {
      const at = this.idle.indexOf(client);
      if (at >= 0) this.idle.splice(at, 1);
    };
    client.on('error', forget);
    client.on('end', forget);
    return client;
  }

  give(client: pg.Client, broken: boolean): void {
    if (broken || this.closed) void client.end().catch(() => undefined);
    else this.idle.push(client);
  }

  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((client) => client.end().catch(() => undefined)));
  }
}

interface Waiter<K, V> {
  key: K;
  resolve: (value: V) => void;
  reject: (error: Error) => void;
}

/**
 * Reads of one kind, batched: every read asked in one turn of the event loop, and whatever
 * arrives while a batch is in flight, goes as one query outside any transaction. On this kind
 * of machine a PostgreSQL round trip costs the server ~150 µs of CPU whatever it carries, so
 * one per getattr made getattr on PostgreSQL cost ~170-230 µs of the server's CPU and ~100 µs of
 * PostgreSQL's.
 *
 * Each query is its own snapshot, taken after every read of its batch was asked: a read sees
 * every change committed before it was asked, as a read transaction did.
 */
class ReadBatcher<K, V> {
  private queue: Waiter<K, V>[] = [];
  private inFlight = 0;
  private pumpQueued = false;
  /** Queries sent and reads they carried (tests, benchmarks). */
  batches = 0;
  reads = 0;

  constructor(
    private readonly connections: ReaderConnections,
    /** One query for the batch: a value per key, in the keys' order. */
    private readonly query: (client: pg.Client, keys: K[]) => Promise<V[]>,
    /** Turns a failure into the error the caller sees (the engine's EIO with its URL). */
    private readonly translate: (error: unknown) => Error,
  ) {}

  read(key: K): Promise<V> {
    return new Promise((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      if (!this.pumpQueued) {
        // After the current turn: the engine thread's batch of calls all joins one query.
        this.pumpQueued = true;
        queueMicrotask(() => {
          this.pumpQueued = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < BATCHES_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH_READS);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async run(batch: Waiter<K, V>[]): Promise<void> {
    const keys = batch.map((waiter) => waiter.key);
    let values: V[] | undefined;
    // A kept connection may have died while idle: one more try on a new one.
    for (let attempt = 1; values === undefined; attempt++) {
      let client: pg.Client;
      try {
        client = await this.connections.take();
      } catch (error) {
        for (const waiter of batch) waiter.reject(this.translate(error));
        return;
      }
      try {
        values = await this.query(client, keys);
        this.connections.give(client, false);
      } catch (error) {
        this.connections.give(client, true);
        if (attempt < 2 && isConnectionError(error)) continue;
        for (const waiter of batch) waiter.reject(this.translate(error));
        return;
      }
    }
    this.batches++;
    this.reads += batch.length;
    batch.forEach((waiter, n) => waiter.resolve(values[n]));
  }
}

/** What a lookup reads, from one snapshot. */
interface LookupRows {
  dir: InodeRow | undefined;
  dirAcl: Buffer | undefined;
  entry: DentryRow | undefined;
  inode: InodeRow | undefined;
}

const prefixed = (alias: string): string =>
  INODE_COLUMNS.map((column) => `${alias}.${column} AS ${alias}_${column}`).join(', ');

/** Everything the lookups of a batch read, one row per lookup in the batch's order. */
const LOOKUPS = {
  name: 'strata_read_lookups',
  text: `SELECT ${prefixed('p')}, d.ino AS d_ino, d.type AS d_type, d.cursor AS d_cursor, ${prefixed('i')},
      a.value AS a_value
    FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS k(parent, name, n)
    LEFT JOIN inode p ON p.ino = k.parent
    LEFT JOIN dentry d ON d.parent = k.parent AND d.name = k.name
    LEFT JOIN inode i ON i.ino = d.ino
    LEFT JOIN xattr a ON a.ino = k.parent AND a.name = $3
    ORDER BY k.n`,
};

function inodeOf(row: Record<string, unknown>, alias: string): InodeRow | undefined {
  if (row[`${alias}_ino`] === null) return undefined;
  const record: Record<string, unknown> = {};
  for (const column of INODE_COLUMNS) record[column] = row[`${alias}_${column}`];
  return toInode(record as unknown as InodeRecord);
}

/** Reads that answer from one lookup's rows: the reads `MetaService.lookup` makes, and only those. */
class PrefetchedLookup implements LookupReads {
  constructor(
    private readonly parent: Ino,
    private readonly name: string,
    private readonly rows: LookupRows,
  ) {}

  async getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined> {
    this.current(asOfUs);
    if (ino === this.parent) return this.rows.dir && { ...this.rows.dir };
    if (this.rows.entry && ino === this.rows.entry.ino) return this.rows.inode && { ...this.rows.inode };
    throw new Error(`a prefetched lookup of "${this.name}" in ${this.parent} has no inode ${ino}`);
  }

  async getXattr(ino: Ino, name: string, asOfUs?: number): Promise<Buffer | undefined> {
    this.current(asOfUs);
    if (ino === this.parent && name === ACL_ACCESS_XATTR) return this.rows.dirAcl;
    throw new Error(`a prefetched lookup of "${this.name}" in ${this.parent} has no xattr ${name} of ${ino}`);
  }

  async lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined> {
    this.current(asOfUs);
    if (parent === this.parent && name === this.name) return this.rows.entry && { ...this.rows.entry };
    throw new Error(
      `a prefetched lookup of "${this.name}" in ${this.parent} has no entry "${name}" in ${parent}`,
    );
  }

  private current(asOfUs: number | undefined): void {
    if (asOfUs !== undefined) throw new Error('a prefetched lookup reads the current state only');
  }
}

/** What a read transaction's lookup would have offered the cache: present inodes, the entry or its absence, the ACL or its absence. */
function offerLookup(cache: RowCache, parent: Ino, name: string, found: LookupRows): void {
  if (found.dir) cache.offer(inodeKey(parent), { ...found.dir });
  cache.offer(xattrKey(parent, ACL_ACCESS_XATTR), found.dirAcl ?? null);
  cache.offer(dentryKey(parent, name), found.entry ? { ...found.entry } : null);
  if (found.inode) cache.offer(inodeKey(found.inode.ino), { ...found.inode });
}

/**
 * getattr's and lookup's reads, batched (see ReadBatcher): what `readInode` and `readLookup`
 * answer. What they read is offered to the server's row cache, as a read transaction's reads are.
 */
export class BatchedReads {
  private readonly connections: ReaderConnections;
  readonly inodes: ReadBatcher<number, InodeRow | undefined>;
  readonly lookups: ReadBatcher<{ parent: Ino; name: string }, LookupReads>;

  constructor(
    open: () => Promise<pg.Client>,
    translate: (error: unknown) => Error,
    cache: RowCache | undefined,
  ) {
    this.connections = new ReaderConnections(open);
    this.inodes = new ReadBatcher(
      this.connections,
      async (client, inos) => {
        const query = {
          name: SQL.getInodes.name,
          text: SQL.getInodes.text,
          values: [int8Array([...new Set(inos)])],
        };
        const byIno = new Map<number, InodeRow>();
        for (const row of (await client.query<InodeRecord>(query)).rows) {
          const inode = toInode(row);
          byIno.set(inode.ino, inode);
          cache?.offer(inodeKey(inode.ino), { ...inode });
        }
        return inos.map((ino) => byIno.get(ino));
      },
      translate,
    );
    this.lookups = new ReadBatcher<{ parent: Ino; name: string }, LookupReads>(
      this.connections,
      async (client, keys) => {
        const values = [
          int8Array(keys.map((key) => key.parent)),
          textArray(keys.map((key) => key.name)),
          ACL_ACCESS_XATTR,
        ];
        const { rows } = await client.query<Record<string, unknown>>({ ...LOOKUPS, values });
        return keys.map((key, n) => {
          const row = rows[n];
          const entry =
            row.d_ino === null
              ? undefined
              : toDentry({
                  parent: key.parent,
                  name: key.name,
                  ino: row.d_ino as number,
                  type: row.d_type as number,
                  cursor: row.d_cursor as number,
                });
          const found: LookupRows = {
            dir: inodeOf(row, 'p'),
            dirAcl: (row.a_value as Buffer | null) ?? undefined,
            entry,
            inode: inodeOf(row, 'i'),
          };
          if (cache) offerLookup(cache, key.parent, key.name, found);
          return new PrefetchedLookup(key.parent, key.name, found);
        });
      },
      translate,
    );
  }

  readInode(ino: number): Promise<InodeRow | undefined> {
    return this.inodes.read(ino);
  }

  readLookup(parent: Ino, name: string): Promise<LookupReads> {
    return this.lookups.read({ parent, name });
  }

  close(): Promise<void> {
    return this.connections.close();
  }
}
