/**
 * At-most-once execution of retried calls. A client numbers its non-idempotent calls
 * (client id + sequence number) and resends a call with the same number after losing a
 * connection; the server keeps each numbered call's outcome and answers a resend with it
 * instead of running the call again.
 *
 * What is remembered stays small: every request also carries the client's lowest sequence
 * number still awaiting an answer (`ackBelowSeq`), so outcomes the client has already seen
 * are dropped at once. Outcomes of clients that went away expire after `windowMs`, and
 * `maxEntries` bounds the total whatever clients do.
 */
export interface ReplayOptions {
  /** How long an outcome stays replayable after the call finished. */
  windowMs?: number;
  maxEntries?: number;
}

export const DEFAULT_REPLAY_WINDOW_MS = 5 * 60_000;
export const DEFAULT_REPLAY_MAX_ENTRIES = 200_000;

interface Entry {
  outcome: Promise<unknown>;
  /** 0 while the call runs. */
  settledAtMs: number;
}

export class ReplayCache {
  private readonly windowMs: number;
  private readonly maxEntries: number;
  /** Per client, entries in arrival order; clients in least-recently-used order. */
  private readonly clients = new Map<string, Map<number, Entry>>();
  private entryCount = 0;
  /** Calls answered from the cache instead of being run again (for metrics and tests). */
  replayedCount = 0;

  constructor(options: ReplayOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_REPLAY_MAX_ENTRIES;
  }

  get size(): number {
    return this.entryCount;
  }

  /**
   * Runs `run(arg)` unless call `seq` of `clientId` ran before, in which case its outcome (value
   * or error) is returned again. A resend that arrives while the first run is still going waits
   * for that run rather than starting a second one. The caller reports when the outcome settled
   * (`settled`): watching the promise here cost every call a promise and a closure.
   */
  execute<A>(
    clientId: string,
    seq: number,
    ackBelowSeq: number,
    run: (arg: A) => Promise<unknown>,
    arg: A,
  ): Promise<unknown> {
    let entries = this.clients.get(clientId);
    if (entries) {
      this.clients.delete(clientId); // re-inserted below: most recently used last
      this.forgetAcknowledged(entries, ackBelowSeq);
    } else {
      entries = new Map();
    }
    this.clients.set(clientId, entries);
    const known = entries.get(seq);
    if (known) {
      this.replayedCount++;
      return known.outcome;
    }
    const entry: Entry = { outcome: run(arg), settledAtMs: 0 };
    entries.set(seq, entry);
    this.entryCount++;
    if (this.entryCount > this.maxEntries) this.evictOldest();
    return entry.outcome;
  }

  /**
   * Call `seq` of `clientId` has its outcome: from now on it may be forgotten once acknowledged
   * or older than the window. Until then it is kept whatever the client acknowledges.
   */
  settled(clientId: string, seq: number, nowMs: number = Date.now()): void {
    const entry = this.clients.get(clientId)?.get(seq);
    if (entry !== undefined && entry.settledAtMs === 0) entry.settledAtMs = nowMs;
  }

  /** Drops outcomes older than the window; call it periodically. */
  expire(nowMs: number = Date.now()): void {
    const oldestKeptMs = nowMs - this.windowMs;
    for (const [clientId, entries] of this.clients) {
      for (const [seq, entry] of entries) {
        if (entry.settledAtMs === 0 || entry.settledAtMs > oldestKeptMs) break;
        entries.delete(seq);
        this.entryCount--;
      }
      if (entries.size === 0) this.clients.delete(clientId);
    }
  }

  /** Sequence numbers arrive almost in order, so the acknowledged ones sit at the front. */
  private forgetAcknowledged(entries: Map<number, Entry>, ackBelowSeq: number): void {
    // keys() and get(): iterating [seq, entry] pairs allocated one array per entry looked at.
    for (const seq of entries.keys()) {
      if (seq >= ackBelowSeq || (entries.get(seq) as Entry).settledAtMs === 0) break;
      entries.delete(seq);
      this.entryCount--;
    }
  }

  private evictOldest(): void {
    for (const [clientId, entries] of this.clients) {
      for (const seq of entries.keys()) {
        entries.delete(seq);
        this.entryCount--;
        if (this.entryCount <= this.maxEntries) break;
      }
      if (entries.size === 0) this.clients.delete(clientId);
      if (this.entryCount <= this.maxEntries) return;
    }
  }
}
