import pg from 'pg';
import { NOTIFIER_APP_PREFIX, encodeChange } from './changefeed.js';
import type { TxChanges } from './tx.js';

/** Transactions merged into one notification at most (their union must stay small). */
const MAX_CHANGES_PER_NOTIFY = 64;
/**
 * At most one notification per this interval: each one wakes every listening backend and
 * server (this one's own feed included), which cost more than the changes it carried when every
 * commit sent one. 10 ms is far below the 1 s coherence bound and the kernel caches' timeouts.
 */
const NOTIFY_INTERVAL_MS = 10;
/** Before connecting again after the notifier connection failed. */
const RECONNECT_DELAY_MS = 200;

/**
 * Publishes committed changes on the change feed after their commit, from one connection of
 * its own, merging those that commit while a notification is on its way, or within
 * NOTIFY_INTERVAL_MS of the previous one, into the next one.
 *
 * Why not pg_notify inside each write transaction: PostgreSQL serializes the commits of all
 * transactions that NOTIFY (a database-wide lock held from before the commit record until
 * after its WAL flush, so that the queue is in commit order). Every create of every server then
 * waited for the previous create's fsync, which capped the volume at one commit per flush
 * (~500/s here) whatever the number of servers. A notification sent after the commit carries
 * no WAL and holds that lock for microseconds, and one notification covers many commits.
 *
 * The price: a server that dies between a commit and its notification never announces that
 * change. Its notifier connection dies with it, and peers that see it vanish invalidate every
 * cached entry and attribute (ChangeFeed), so a client's cache is never stale for longer than
 * their presence poll.
 */
export class ChangeNotifier {
  private readonly queue: TxChanges[] = [];
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private closing = false;
  private lastSentMs = -Infinity;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly originId: string,
  ) {}

  /** Connects now, so that peers see this server before its first commit (see above). */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Queues a committed transaction's changes; sent at once, or with the next notification. */
  publish(changes: TxChanges): void {
    if (this.closed || (changes.inos.size === 0 && changes.entries.size === 0)) return;
    this.queue.push(changes);
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  /** Resolves once everything queued so far has been sent (or given up at close). */
  async flushed(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const waitMs = this.lastSentMs + NOTIFY_INTERVAL_MS - performance.now();
      if (waitMs > 0 && !this.closing) await new Promise((resolve) => setTimeout(resolve, waitMs));
      const batch = this.queue.splice(0, this.queue.length);
      const statements: string[] = [];
      for (let first = 0; first < batch.length; first += MAX_CHANGES_PER_NOTIFY) {
        const inos = new Set<number>();
        const entries = new Map<string, [number, string]>();
        for (const changes of batch.slice(first, first + MAX_CHANGES_PER_NOTIFY)) {
          for (const ino of changes.inos) inos.add(ino);
          for (const [key, entry] of changes.entries) entries.set(key, entry);
        }
        const payload = encodeChange(this.originId, inos, entries.values());
        statements.push(`SELECT pg_notify(${pg.escapeLiteral(this.channel)}, ${pg.escapeLiteral(payload)})`);
      }
      try {
        const client = await this.connect();
        this.lastSentMs = performance.now();
        await client.query(statements.join(';\n'));
      } catch {
        // Not sent: keep the changes for the next attempt. Peers saw this connection vanish
        // (or will) and invalidated everything, so a late notification only repeats news.
        this.drop();
        if (this.closing) return;
        this.queue.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
      }
    }
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.connectionString,
        application_name: `${NOTIFIER_APP_PREFIX}${this.originId}`,
      });
      client.on('error', () => {
        if (this.client === client) this.drop();
      });
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private drop(): void {
    const client = this.client;
    this.client = undefined;
    client?.end().catch(() => undefined);
  }

  /** Sends what is queued (one try), then closes the connection. */
  async close(): Promise<void> {
    this.closing = true;
    await this.flushed();
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
