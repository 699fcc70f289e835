import type { Ino, SliceId, SliceRef } from '../common/index.js';
import type { LockType, SessionInfo } from './api.js';

/**
 * The storage contract under the metadata service. The service (service.ts) owns every
 * POSIX rule; an engine only stores rows, runs transactions and keeps history. SQLite
 * (engines/sqlite) and PostgreSQL (engines/postgres) implement it and must both pass the
 * conformance suite in test/meta/conformance unchanged.
 *
 * Transactions
 * - `write(fn)` runs `fn` as ONE atomic transaction: all of its changes commit together or
 *   none do, and the returned promise settles only after the commit is visible to every
 *   reader and survives a crash of this process (not necessarily a power loss: see
 *   `sync`). When `fn`
 *   throws (an FsError such as EEXIST, or a bug), nothing it wrote survives, and the error is
 *   rethrown unchanged. An engine may group several `write` calls into one physical
 *   transaction (SQLite group commit, each call under its own savepoint) as long as a failing
 *   call never undoes or blocks the others.
 * - An engine may run `fn` more than once (PostgreSQL retries on serialization failure or
 *   deadlock), so `fn` must have no side effects outside `tx` until it returns.
 * - `fn` sees its own writes. Write transactions are serializable with respect to each other
 *   (SQLite: one writer; PostgreSQL: SERIALIZABLE or row locks + retry).
 * - `read(fn)` runs `fn` over committed state only (never another caller's uncommitted
 *   writes), as one consistent snapshot. A read whose `fn` awaits anything but `tx` (a dump
 *   writing to a stream) says so with `{ long: true }`: an engine may hold writes back while a
 *   short read runs (SQLite reads on its writer's connection right after commits).
 *
 * History
 * - Every row of the versioned tables (inodes, dentries, xattrs, chunks) carries the commit
 *   time of the transaction that last changed it. When a write changes or deletes a row whose
 *   version is older than the current transaction, the engine first copies the old image into
 *   history with its validity interval [fromUs, toUs). A row changed several times in one
 *   transaction is copied once. `tx.nowUs` is the transaction's commit instant, strictly
 *   greater than that of every earlier transaction of this engine.
 * - Reads take `asOfUs` (undefined = current state). As of T, a row is visible when it was
 *   created at or before T and not changed or deleted at or before T.
 * - Current-state reads never touch history tables (they must not slow down as history grows).
 * - Sessions, open files, locks, counters, settings, slice reference counts and the deleted
 *   slice log are NOT versioned.
 */

/** The one source of time: microseconds since the epoch. Injectable for tests. */
export interface Clock {
  nowUs(): number;
}

export const systemClock: Clock = {
  // Date.now() has millisecond resolution; performance.timeOrigin + now() gives microseconds.
  nowUs: () => Math.floor((performance.timeOrigin + performance.now()) * 1000),
};

/** An inode as stored. Times are sec + nsec integers (nanoseconds do not fit a JS number). */
export interface InodeRow {
  ino: Ino;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  sizeBytes: number;
  rdev: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  generation: number;
  /** For directories: the parent directory (root: itself). 0 for everything else (hard links). */
  parent: Ino;
  /** For symlinks: the target. Null otherwise. */
  target: string | null;
  /**
   * Regular files: the bytes the data map covers with data (holes and punched ranges excluded),
   * kept by the service with every chunk change (allocation.ts, chunks.ts). 0 for everything else.
   */
  allocatedBytes: number;
}

export interface DentryRow {
  parent: Ino;
  name: string;
  ino: Ino;
  /** Type bits of st_mode (mode & S_IFMT). */
  type: number;
  /**
   * Assigned by the engine on insert: unique among the entries a directory has ever held,
   * increasing, >= 1. readdir pages by it. An entry re-inserted under the same name (rename
   * over it) gets a new cursor.
   */
  cursor: number;
}

export interface LockRow {
  ino: Ino;
  sessionId: string;
  owner: string;
  /** flock (whole file) and POSIX byte-range locks never conflict with each other. */
  flock: boolean;
  type: Exclude<LockType, 'unlock'>;
  start: number;
  /** Inclusive; Number.MAX_SAFE_INTEGER = to end of file. */
  end: number;
  pid: number;
}

export interface SessionRow {
  sessionId: string;
  info: SessionInfo;
  startedUs: number;
  heartbeatUs: number;
  /**
   * The lowest slice id the session's mount may still commit, as it last reported (with its
   * heartbeat). Undefined until it reports one, and for mounts older than floors: such a session
   * blocks reclaiming leaked blocks (src/meta/reclaim-floor.ts).
   */
  sliceFloor?: number;
}

export interface DeletedSliceRow {
  id: SliceId;
  sliceSizeBytes: number;
  /** When the last reference left the current state; objects may go once this leaves retention. */
  deletedUs: number;
}

/** One row of the deleted slice log, exactly (a slice may be logged more than once). */
export type DeletedSliceKey = Pick<DeletedSliceRow, 'id' | 'deletedUs'>;

/** What the GC must know of a slice before it deletes the slice's objects. */
export interface SliceGcState {
  id: SliceId;
  /** Current references (0: no current chunk list refers to it). */
  refs: number;
  /** The latest instant the slice was logged deleted; undefined when it is not in the log. */
  lastDeletedUs: number | undefined;
}

/** The reads of one lookup (Engine.readLookup): current state only. */
export type LookupReads = Pick<ReadTx, 'getInode' | 'getXattr' | 'lookup'>;

/** Reads, current or as of an instant. */
export interface ReadTx {
  getInode(ino: Ino, asOfUs?: number): Promise<InodeRow | undefined>;
  lookup(parent: Ino, name: string, asOfUs?: number): Promise<DentryRow | undefined>;
  /** Entries of `parent` with cursor > afterCursor, in cursor order, at most `limit`. */
  listDir(parent: Ino, afterCursor: number, limit: number, asOfUs?: number): Promise<DentryRow[]>;
  /** True when the directory has at least one entry (current state). */
  hasEntries(parent: Ino): Promise<boolean>;
  getXattr(ino: Ino, name: string, asOfUs?: number): Promise<Buffer | undefined>;
  listXattrs(ino: Ino, asOfUs?: number): Promise<string[]>;
  /** The chunk's slices in overlay order (later on top); [] when the chunk has none. */
  getChunk(ino: Ino, chunkIndex: number, asOfUs?: number): Promise<SliceRef[]>;
  /** Chunk indexes of `ino` holding at least one slice, ascending, within [first, last]. */
  listChunkIndexes(ino: Ino, firstChunk: number, lastChunk: number, asOfUs?: number): Promise<number[]>;
  getSetting(key: string): Promise<string | undefined>;
  getCounter(name: string): Promise<number>;
  getSession(sessionId: string): Promise<SessionRow | undefined>;
  listSessions(): Promise<SessionRow[]>;
  listLocks(ino: Ino): Promise<LockRow[]>;
  /** Opens of `ino` across all sessions. */
  openCount(ino: Ino): Promise<number>;
  listDeletedSlices(deletedBeforeUs: number, limit: number): Promise<DeletedSliceRow[]>;
  /** For each id, in order: its reference count and latest deletion (see src/ops/gc.ts). */
  getSliceStates(ids: readonly SliceId[]): Promise<SliceGcState[]>;
}

/** A write transaction: reads see the current state including this transaction's own writes. */
export interface WriteTx extends ReadTx {
  /** The commit instant of this transaction (history timestamps), µs. */
  readonly nowUs: number;

  /**
   * Inserts or replaces (history: the old image is kept). `fresh` promises that no row for
   * this inode exists (a newly allocated number), so an engine may skip looking for an old image.
   */
  putInode(row: InodeRow, fresh?: boolean): Promise<void>;
  /** Removes the inode row with its xattrs and chunks (history kept). Dentries are the caller's job. */
  deleteInode(ino: Ino): Promise<void>;
  /**
   * Inserts or replaces the entry `parent/name`; returns the row with its new cursor. `fresh`
   * promises the name does not exist in `parent` (the caller just looked), as for putInode.
   */
  putDentry(parent: Ino, name: string, ino: Ino, type: number, fresh?: boolean): Promise<DentryRow>;
  deleteDentry(parent: Ino, name: string): Promise<void>;
  putXattr(ino: Ino, name: string, value: Buffer): Promise<void>;
  deleteXattr(ino: Ino, name: string): Promise<void>;
  /** Replaces the chunk's whole slice list; [] deletes the chunk. */
  putChunk(ino: Ino, chunkIndex: number, slices: SliceRef[]): Promise<void>;

  putSetting(key: string, value: string): Promise<void>;
  /** Adds `delta` (may be negative) and returns the new value; a missing counter starts at 0. */
  addCounter(name: string, delta: number): Promise<number>;

  putSession(row: SessionRow): Promise<void>;
  deleteSession(sessionId: string): Promise<void>;

  /** Replaces all locks of (ino, session, owner, flock) with `locks` ([] releases them). */
  replaceLocks(
    ino: Ino,
    sessionId: string,
    owner: string,
    flock: boolean,
    locks: Pick<LockRow, 'type' | 'start' | 'end' | 'pid'>[],
  ): Promise<void>;
  deleteSessionLocks(sessionId: string): Promise<void>;

  /** Adds `delta` to the session's open count of `ino` and returns its new count (rows at 0 vanish). */
  addOpen(sessionId: string, ino: Ino, delta: number): Promise<number>;
  /** The inodes the session has open; removes those rows. */
  takeSessionOpens(sessionId: string): Promise<Ino[]>;

  /**
   * Adds `delta` references to slice `id` (of `sliceSizeBytes`) and returns the new count.
   * The row is created at the first reference and dropped at 0.
   */
  addSliceRefs(id: SliceId, sliceSizeBytes: number, delta: number): Promise<number>;
  /**
   * The volume's reclaim floor: leaked blocks of slice ids below it may be gone, so no commit may
   * introduce such an id (src/meta/reclaim-floor.ts). `exclusive` (the reclaim pass raising it)
   * waits for every transaction that read it shared to end, and they wait for it: so a commit
   * either ends before the raise, or reads the raised floor. Engines that serialize all writers
   * (SQLite) just read it.
   */
  lockReclaimFloor(exclusive: boolean): Promise<number>;
  /** Logs that the slice left the current state at `tx.nowUs` (for the GC). */
  recordDeletedSlice(id: SliceId, sliceSizeBytes: number): Promise<void>;
  /** Drops exactly these rows of the log; other rows of the same slices stay. */
  forgetDeletedSlices(rows: readonly DeletedSliceKey[]): Promise<void>;
}

export interface EngineStats {
  /** Rows across the history tables. */
  historyRows: number;
  /** Bytes the engine uses on disk (database file(s) or relation sizes). */
  sizeBytes: number;
}

export interface ReadOptions {
  /** `fn` awaits more than `tx` and may take long: never hold writes back while it runs. */
  long?: boolean;
}

export interface Engine {
  /** The URL it was opened with, secrets removed (for logs). */
  readonly displayUrl: string;
  read<T>(fn: (tx: ReadTx) => Promise<T>, options?: ReadOptions): Promise<T>;
  write<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  /**
   * Deletes at most `maxRows` history rows whose validity ended before `beforeUs`; returns how
   * many went. Called repeatedly in small batches so writers are never blocked for long.
   */
  pruneHistory(beforeUs: number, maxRows: number): Promise<number>;
  /**
   * Durable barrier: resolves once every write that settled before the call survives a power
   * loss. Concurrent calls should share one flush. Absent = every commit is already durable
   * (PostgreSQL with synchronous_commit on): callers treat it as a no-op.
   */
  sync?(): Promise<void>;
  /**
   * The inode as committed now, read outside any transaction, or undefined when there is none.
   * Engines that batch such reads offer it (PostgreSQL: one query for many getattrs); absent,
   * getattr reads in a read transaction.
   */
  readInode?(ino: Ino): Promise<InodeRow | undefined>;
  /**
   * What a lookup of `name` in `parent` reads (the directory, its access ACL, the entry, the
   * inode it names) from one snapshot taken now, as reads answering from it. Engines that batch
   * such reads offer it (PostgreSQL); absent, lookup reads in a read transaction.
   */
  readLookup?(parent: Ino, name: string): Promise<LookupReads>;
  /** Drops every row of every table (re-format with force). The schema stays. */
  wipe(): Promise<void>;
  stats(): Promise<EngineStats>;
  /** Waits for in-flight writes to commit, then releases the storage. */
  close(): Promise<void>;
}

export interface EngineOptions {
  clock?: Clock;
  /**
   * True: every commit is durable on its own (SQLite synchronous=FULL, one fsync per group
   * commit). False/absent for SQLite: commits survive a process crash (WAL, synchronous=NORMAL)
   * and `sync()` makes them survive a power loss. PostgreSQL: false turns synchronous_commit off.
   */
  durable?: boolean;
  /** Group commit: commit after this many write transactions... */
  groupCommitMaxOps?: number;
  /** ...or once the oldest uncommitted one has waited this long. */
  groupCommitMaxDelayMs?: number;
  /** False disables history (benchmarks only): no old images are kept. */
  history?: boolean;
  /** SQLite: false runs WAL checkpoints inside commits instead of on their own thread (benchmarks). */
  checkpointThread?: boolean;
}

/**
 * Committed state of a volume read from another thread of the process that owns its engine
 * (SQLite: a second connection; the metadata server reads on its serving thread while writes
 * go to the engine thread). Queued reads share one snapshot until `invalidate()`: the owner
 * calls it whenever a write has committed, before passing the write's reply on, so a caller
 * always reads back its own writes.
 */
export interface EngineReader {
  readonly displayUrl: string;
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T>;
  invalidate(): void;
  close(): Promise<void>;
}

export type EngineReaderOpener = (url: string) => Promise<EngineReader>;

/** Opens (creating the schema if missing) the engine at `url`. Registered per URL scheme. */
export type EngineOpener = (url: string, options: EngineOptions) => Promise<Engine>;
