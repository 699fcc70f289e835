import type pg from 'pg';
import type { InodeRow } from '../../engine.js';
import { toInode, type InodeRecord } from '../rows.js';
import { int8Array } from './binary-array.js';
import { sqlState } from './retry.js';
import { SQL } from './sql.js';

/** Reads of one batch in flight at once, each on a connection of the reader's own. */
const READS_IN_FLIGHT = 2;
/** Inodes per query, at most. */
const BATCH_INODES = 256;

interface Waiter {
  ino: number;
  resolve: (row: InodeRow | undefined) => void;
  reject: (error: Error) => void;
}

/**
 * Reads of single inodes (getattr), batched: what arrives while a batch is in flight, and
 * everything asked in one turn of the event loop, goes as one `SELECT ... WHERE ino = ANY($1)`
 * on a connection of its own, outside any transaction. On this kind of machine a PostgreSQL
 * round trip costs the server ~150 µs of CPU whatever it carries, so one per getattr made
 * getattr on PostgreSQL cost ~170-230 µs of the server's CPU and ~100 µs of PostgreSQL's.
 *
 * Each query is its own snapshot, taken after every read of its batch was asked: a read sees
 * every change committed before it was asked, as a read on a pooled connection did.
 */
export class InodeReadBatcher {
  private queue: Waiter[] = [];
  private inFlight = 0;
  private pumpQueued = false;
  private readonly idle: pg.Client[] = [];
  private closed = false;
  /** Queries sent and inodes they carried (tests, benchmarks). */
  batches = 0;
  inodesRead = 0;

  constructor(
    /** Opens a connection for the reader (the engine's, with its type parsers). */
    private readonly open: () => Promise<pg.Client>,
    /** Turns a failure into the error the caller sees (the engine's EIO with its URL). */
    private readonly translate: (error: unknown) => Error,
  ) {}

  /** The inode as committed when its batch's query ran, or undefined when there is none. */
  read(ino: number): Promise<InodeRow | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ino, resolve, reject });
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

  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((client) => client.end().catch(() => undefined)));
  }

  private pump(): void {
    while (this.inFlight < READS_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH_INODES);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /**
   * A new connection whose death while idle (PostgreSQL restarted, the backend terminated) takes
   * it out of the idle list instead of crashing the process with an unhandled 'error' event.
   */
  private async openWatched(): Promise<pg.Client> {
    const client = await this.open();
    const forget = (): void => {
      const at = this.idle.indexOf(client);
      if (at >= 0) this.idle.splice(at, 1);
    };
    client.on('error', forget);
    client.on('end', forget);
    return client;
  }

  private async run(batch: Waiter[]): Promise<void> {
    const inos = [...new Set(batch.map((waiter) => waiter.ino))];
    let rows: InodeRecord[] | undefined;
    // A kept connection may have died while idle (PostgreSQL restarted): one more try on a new one.
    for (let attempt = 1; rows === undefined; attempt++) {
      let client: pg.Client;
      try {
        client = this.idle.pop() ?? (await this.openWatched());
      } catch (error) {
        for (const waiter of batch) waiter.reject(this.translate(error));
        return;
      }
      try {
        const query = { name: SQL.getInodes.name, text: SQL.getInodes.text, values: [int8Array(inos)] };
        rows = (await client.query<InodeRecord>(query)).rows;
      } catch (error) {
        void client.end().catch(() => undefined);
        if (attempt < 2 && sqlState(error) === undefined) continue;
        for (const waiter of batch) waiter.reject(this.translate(error));
        return;
      }
      if (this.closed) void client.end().catch(() => undefined);
      else this.idle.push(client);
    }
    this.batches++;
    this.inodesRead += inos.length;
    const byIno = new Map<number, InodeRecord>();
    for (const row of rows) byIno.set(Number(row.ino), row);
    for (const waiter of batch) {
      const row = byIno.get(waiter.ino);
      waiter.resolve(row && toInode(row));
    }
  }
}
