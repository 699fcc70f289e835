import { EventEmitter, on } from 'node:events';
import pg from 'pg';
import { asIno, type Ino } from '../../../common/index.js';

/**
 * What one committed transaction changed, as other metadata servers learn it through
 * PostgreSQL LISTEN/NOTIFY. A server uses it to drop cached attributes/entries and to tell
 * its clients (FUSE notify_inval_inode / notify_inval_entry).
 */
export interface MetaChange {
  /** The engine instance that committed the change (servers skip their own changes). */
  originId: string;
  /** Inodes whose attributes, data map or xattrs changed. */
  inos: Ino[];
  /** Directory entries added, removed or repointed: (parent, name). */
  entries: Array<{ parent: Ino; name: string }>;
  /**
   * True when the change was too large for one notification or notifications may have been
   * lost (the listening connection broke): drop every cached entry and attribute.
   */
  invalidateAll: boolean;
}

/**
 * Every engine's notifier connection (notifier.ts) carries this application_name prefix and its
 * origin id. Feeds watch the set of them: one that vanishes (its server died, or lost
 * PostgreSQL) may have left committed changes unannounced, so the feed asks for a full
 * invalidation.
 */
export const NOTIFIER_APP_PREFIX = 'strata-notify ';

/** The application_name of feed connections (for operators looking at pg_stat_activity). */
export const FEED_APP_NAME = 'strata-feed';

/** How often a feed looks for vanished notifiers (bounds how long a cache may stay stale). */
const PRESENCE_POLL_MS = 250;

/** NOTIFY payloads are limited to 8000 bytes by PostgreSQL; stay safely below. */
const MAX_PAYLOAD_BYTES = 7800;

interface WirePayload {
  o: string;
  i?: number[];
  e?: Array<[number, string]>;
  all?: 1;
}

/** Encodes a change for pg_notify; degrades to coarser invalidation when it does not fit. */
export function encodeChange(
  originId: string,
  inos: Iterable<number>,
  entries: Iterable<[number, string]>,
): string {
  const i = [...new Set(inos)];
  const e = [...entries];
  let text = JSON.stringify({ o: originId, i, e } satisfies WirePayload);
  if (Buffer.byteLength(text) <= MAX_PAYLOAD_BYTES) return text;
  // Too many names: invalidating the parents' attributes still makes peers re-read the dirs.
  const withParents = [...new Set([...i, ...e.map(([parent]) => parent)])];
  text = JSON.stringify({ o: originId, i: withParents } satisfies WirePayload);
  if (Buffer.byteLength(text) <= MAX_PAYLOAD_BYTES) return text;
  return JSON.stringify({ o: originId, all: 1 } satisfies WirePayload);
}

export function decodeChange(payload: string): MetaChange {
  const wire = JSON.parse(payload) as WirePayload;
  return {
    originId: wire.o,
    inos: (wire.i ?? []).map(asIno),
    entries: (wire.e ?? []).map(([parent, name]) => ({ parent: asIno(parent), name })),
    invalidateAll: wire.all === 1,
  };
}

export interface ChangeFeedOptions {
  connectionString: string;
  channel: string;
  /** Delay before reconnecting after the listening connection broke. */
  reconnectDelayMs?: number;
  /** How often to look for vanished notifiers (default 250 ms). */
  presencePollMs?: number;
}

/**
 * One dedicated connection LISTENing on the volume's channel. Emits 'change' (MetaChange)
 * and 'error' (Error; the feed keeps reconnecting). After a reconnect it emits a change with
 * `invalidateAll`, because notifications sent while it was away are gone for good.
 */
export class ChangeFeed extends EventEmitter {
  private client: pg.Client | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly reconnectDelayMs: number;
  private presenceTimer: NodeJS.Timeout | undefined;
  /** Notifier connections (application names) seen by the last presence poll. */
  private notifiers: Set<string> | undefined;
  private polling = false;

  private constructor(private readonly options: ChangeFeedOptions) {
    super();
    this.reconnectDelayMs = options.reconnectDelayMs ?? 500;
  }

  /** Resolves once LISTEN is active, so every change committed after that is seen. */
  static async start(options: ChangeFeedOptions): Promise<ChangeFeed> {
    const feed = new ChangeFeed(options);
    await feed.connect();
    return feed;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: FEED_APP_NAME,
    });
    client.on('notification', (message) => {
      if (message.channel !== this.options.channel || message.payload === undefined) return;
      let change: MetaChange;
      try {
        change = decodeChange(message.payload);
      } catch (error) {
        this.emit(
          'error',
          new Error(`undecodable change notification: ${message.payload}`, { cause: error }),
        );
        return;
      }
      this.emit('change', change);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('change feed connection ended')));
    await client.connect();
    await client.query(`LISTEN ${pg.escapeIdentifier(this.options.channel)}`);
    this.client = client;
    this.notifiers = undefined;
    this.presenceTimer = setInterval(
      () => void this.checkNotifiers(client),
      this.options.presencePollMs ?? PRESENCE_POLL_MS,
    );
    this.presenceTimer.unref();
  }

  /**
   * Servers announce their changes after commit (notifier.ts); one that died in between never
   * will. Its notifier connection dies with it: when one vanishes, every cache must go.
   */
  private async checkNotifiers(client: pg.Client): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    let names: Set<string>;
    try {
      const result = await client.query<{ name: string }>(
        `SELECT application_name AS name FROM pg_stat_activity
          WHERE datname = current_database() AND starts_with(application_name, $1)`,
        [NOTIFIER_APP_PREFIX],
      );
      names = new Set(result.rows.map((row) => row.name));
    } catch {
      return; // a broken connection is reported by its 'error' event (reconnect + full invalidation)
    } finally {
      this.polling = false;
    }
    if (this.client !== client) return;
    const before = this.notifiers;
    this.notifiers = names;
    if (before && [...before].some((name) => !names.has(name))) this.emitInvalidateAll();
  }

  private emitInvalidateAll(): void {
    this.emit('change', { originId: '', inos: [], entries: [], invalidateAll: true } satisfies MetaChange);
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    clearInterval(this.presenceTimer);
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => this.emitInvalidateAll(),
        (error: unknown) => {
          if (this.listenerCount('error') > 0) this.emit('error', error);
          this.scheduleReconnect();
        },
      );
    }, this.reconnectDelayMs);
  }

  /** `for await (const change of feed.changes(signal))`: ends when the signal aborts or the feed closes. */
  async *changes(signal?: AbortSignal): AsyncGenerator<MetaChange> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    this.once('close', onClose);
    signal?.addEventListener('abort', onClose, { once: true });
    try {
      for await (const [change] of on(this, 'change', { signal: abort.signal })) {
        yield change as MetaChange;
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    } finally {
      this.off('close', onClose);
      signal?.removeEventListener('abort', onClose);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.presenceTimer);
    const client = this.client;
    this.client = undefined;
    this.emit('close');
    if (client) await client.end().catch(() => undefined);
  }
}
