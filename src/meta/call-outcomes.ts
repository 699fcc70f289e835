import { AsyncLocalStorage } from 'node:async_hooks';
import { Packr } from 'msgpackr';
import type { Engine, WriteTx } from './engine.js';

/**
 * At-most-once across metadata servers. A client numbers each change it sends (client id +
 * sequence number) and resends it under the same number after losing its server, possibly to
 * another server of the same volume. The outcome of a numbered change is stored by the change's
 * own transaction, so it exists exactly when the change committed, whichever server ran it and
 * whether or not that server lived to answer; a resend finds it and gets the original reply
 * instead of running again (a create answering EEXIST for the file it just made).
 *
 * Only successes are stored: a failed change rolled back and changed nothing, so running it
 * again is harmless. Outcomes are pruned by age (`CALL_OUTCOME_RETENTION_MS`), far longer than
 * any client keeps resending.
 *
 * Engines opt in by implementing the two small interfaces below (SQLite and PostgreSQL do).
 */
export interface CallOutcomeWriter {
  /** Stores (or replaces) the reply of call `seq` of `clientId`, in this transaction. */
  putCallOutcome(clientId: string, seq: number, reply: Buffer): Promise<void>;
}

export interface CallOutcomeStore {
  /** The committed reply of call `seq` of `clientId`, if that call committed. */
  getCallOutcome(clientId: string, seq: number): Promise<Buffer | undefined>;
  /** Deletes at most `maxRows` outcomes stored before `beforeUs`; returns how many went. */
  pruneCallOutcomes(beforeUs: number, maxRows: number): Promise<number>;
}

/** A numbered call as the service thread sees it. */
export interface CallKey {
  clientId: string;
  seq: number;
  /** The client sent it before (lost connection or server): look for a stored outcome first. */
  isRetry: boolean;
  method: string;
}

export const CALL_OUTCOME_RETENTION_MS = 10 * 60_000;
const PRUNE_INTERVAL_MS = 30_000;
const PRUNE_BATCH_ROWS = 10_000;

/**
 * Changes whose reply is what their one transaction returns. The others are not recorded:
 * `allocateSliceIds` and `openSession` shape their reply outside the transaction, and running
 * them twice only wastes ids or leaves a session that expires.
 */
const RECORDED = new Set([
  'mknod',
  'mkdir',
  'symlink',
  'link',
  'setattr',
  'open',
  'tmpfile',
  'linkTmpfile',
  'commitWrites',
  'fallocate',
  'copyFileRange',
  'replaceChunkSlices',
]);
/** Recorded changes whose reply is empty, whatever their transaction returned. */
const RECORDED_VOID = new Set([
  'unlink',
  'rmdir',
  'rename',
  'release',
  'setxattr',
  'removexattr',
  'setlk',
  'closeSession',
]);

const packr = new Packr({ useRecords: false, moreTypes: false });
const current = new AsyncLocalStorage<CallKey>();
/**
 * The numbered call being handed on, set only while the code that hands it on runs synchronously:
 * to a service on another thread (forwardNumberedCall), or to the engine write of a service that
 * reaches it before any await (runNumberedCall with `direct`). No AsyncLocalStorage there: once
 * used, its promise hooks cost every promise of the thread, several µs per create.
 */
let forwarding: CallKey | undefined;
/** The last key an engine write took from `forwarding` (runNumberedCall checks it was its own). */
let taken: CallKey | undefined;

export function hasCallOutcomes(engine: Engine): engine is Engine & CallOutcomeStore {
  return typeof (engine as Partial<CallOutcomeStore>).getCallOutcome === 'function';
}

function canRecord(tx: WriteTx): tx is WriteTx & CallOutcomeWriter {
  return typeof (tx as Partial<CallOutcomeWriter>).putCallOutcome === 'function';
}

/** The numbered call this code runs for, if any (read by the engine-thread bridge). */
export function currentCallKey(): CallKey | undefined {
  return forwarding ?? current.getStore();
}

/**
 * Runs `run` as numbered call `key`: every engine write it makes stores the call's outcome. For
 * a retry whose first attempt committed (here or on another server), answers the stored reply
 * instead of running it.
 */
export async function runNumberedCall<T>(
  engine: Engine | undefined,
  key: CallKey,
  run: () => Promise<T>,
  direct?: DirectRun,
): Promise<T> {
  const recorded = RECORDED.has(key.method) || RECORDED_VOID.has(key.method);
  if (!recorded) return run();
  if (key.isRetry && engine && hasCallOutcomes(engine)) {
    const prior = await engine.getCallOutcome(key.clientId, key.seq);
    if (prior !== undefined) {
      return (RECORDED_VOID.has(key.method) ? undefined : packr.unpack(prior)) as T;
    }
  }
  if (direct === undefined) return current.run(key, run);
  for (let wait = direct.ready(key.method); wait !== undefined; wait = direct.ready(key.method)) await wait;
  const outer = forwarding;
  forwarding = key;
  taken = undefined;
  let result: Promise<T>;
  try {
    result = run();
  } finally {
    forwarding = outer;
  }
  const stored = taken === key;
  const value = await result;
  if (!stored && engine && hasCallOutcomes(engine)) {
    // Committed without its outcome: a resend would run it again. Loud, so tests catch it.
    throw new Error(`${key.method} reached its engine write after an await: its outcome was not stored`);
  }
  return value;
}

/**
 * Hands the key to the engine write synchronously instead of through AsyncLocalStorage (whose
 * promise hooks cost every promise of the thread). For services whose recorded changes call
 * `engine.write` before any await once `ready(method)` answers undefined (MetaService: after
 * `inosInHand()` for the creates).
 */
export interface DirectRun {
  ready(method: string): Promise<void> | undefined;
}

/** The creates wait for an inode number in hand first; MetaService's other changes need nothing. */
const ALLOCATES_INO = new Set(['mknod', 'mkdir', 'symlink', 'tmpfile']);

/** DirectRun for a MetaService (structural, so that this file need not import it). */
export function directRunOf(service: { inosInHand(): Promise<void> | undefined }): DirectRun {
  return { ready: (method) => (ALLOCATES_INO.has(method) ? service.inosInHand() : undefined) };
}

/**
 * Runs `run`, which hands the call to a service on another thread before its first await, as
 * numbered call `key`: that thread looks for a stored outcome and records the new one itself
 * (worker-main.ts). Nothing is looked up or stored on this thread.
 */
export function forwardNumberedCall<T>(key: CallKey, run: () => Promise<T>): Promise<T> {
  if (!RECORDED.has(key.method) && !RECORDED_VOID.has(key.method)) return run();
  const outer = forwarding;
  forwarding = key;
  try {
    return run();
  } finally {
    forwarding = outer;
  }
}

/**
 * Code that works for all calls (an id range reserved for whoever needs it next) must not store
 * its transaction's result as one call's outcome.
 */
export function outsideNumberedCall<T>(fn: () => T): T {
  const outer = forwarding;
  forwarding = undefined;
  try {
    return current.exit(fn);
  } finally {
    forwarding = outer;
  }
}

/**
 * Makes `engine` store the outcome of each numbered call in the call's write transaction, and
 * prune old outcomes in the background until it closes. Engines without the capability are
 * returned unchanged.
 */
export function recordCallOutcomes(engine: Engine): Engine {
  if (!hasCallOutcomes(engine)) return engine;
  const write = engine.write.bind(engine);
  const close = engine.close.bind(engine);
  engine.write = <T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> => {
    const key = forwarding ?? current.getStore();
    if (key === undefined) return write(fn);
    taken = forwarding;
    return write(async (tx) => {
      const value = await fn(tx);
      if (canRecord(tx)) {
        const reply = RECORDED_VOID.has(key.method) ? EMPTY_REPLY : packr.pack(value);
        if (
          reply !== EMPTY_REPLY &&
          typeof value === 'object' &&
          value !== null &&
          Object.isExtensible(value)
        ) {
          Object.defineProperty(value, PACKED_REPLY, { value: reply });
        }
        await tx.putCallOutcome(key.clientId, key.seq, reply);
      }
      return value;
    });
  };
  const prune = setInterval(() => {
    pruneExpiredCallOutcomes(engine, Date.now()).catch(() => undefined);
  }, PRUNE_INTERVAL_MS);
  prune.unref();
  engine.close = (): Promise<void> => {
    clearInterval(prune);
    return close();
  };
  return engine;
}

/**
 * Deletes the outcomes older than the retention as of `nowMs`, a batch at a time, until a batch
 * comes back short. One batch per tick removed at most 333 rows a second, while one serial
 * writer over RPC stores more (2,000 `echo > f` through a strata mount: 4,000 rows in 13 s, one
 * per group commit): a busy server's outcomes grew for as long as it stayed busy.
 */
export async function pruneExpiredCallOutcomes(store: CallOutcomeStore, nowMs: number): Promise<number> {
  const beforeUs = (nowMs - CALL_OUTCOME_RETENTION_MS) * 1000;
  let total = 0;
  for (;;) {
    const deleted = await store.pruneCallOutcomes(beforeUs, PRUNE_BATCH_ROWS);
    total += deleted;
    if (deleted < PRUNE_BATCH_ROWS) return total;
  }
}

const EMPTY_REPLY = Buffer.alloc(0);

/**
 * The stored (msgpack) reply of a recorded result object, for whoever sends it on (worker-main.ts),
 * as a hidden symbol property: a WeakMap entry per change cost more in GC than it saved.
 */
const PACKED_REPLY = Symbol('strata.meta.packedReply');

/** The msgpack bytes stored as `value`'s outcome, when `value` is a recorded change's result object. */
export function packedReplyOf(value: unknown): Buffer | undefined {
  return typeof value === 'object' && value !== null
    ? (value as { [PACKED_REPLY]?: Buffer })[PACKED_REPLY]
    : undefined;
}
