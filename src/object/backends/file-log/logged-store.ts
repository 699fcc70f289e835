import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../../store.js';
import { isLogOwnerAlive, newLogOwner, type LogOwner } from './owner.js';
import { encodeRecord, RecordKind } from './record.js';
import { readRecord, scanSegment, WritableSegment, type ScannedRecord } from './segment.js';

/** What the log needs from the plain file store it sits in front of. */
export interface PlainFileStore extends ObjectStore {
  readonly root: string;
  /** Throws, as its put would, for a key it cannot hold: checked before a put is logged. */
  checkPlacement(key: string): Promise<void>;
  /** Writes an object file as put does, without making it durable. */
  putWithoutSync(key: string, data: Buffer): Promise<void>;
  /** Makes every file written so far durable, at once. */
  syncFileSystem(): Promise<void>;
}

export interface FileLogOptions {
  /**
   * Puts up to this size go through the log; larger ones are written as object files directly.
   * 0 logs nothing new but still reads, recovers and drains logs that other processes left.
   */
  maxLoggedObjectBytes: number;
  /** Size of a log segment, preallocated with zeros. */
  segmentBytes: number;
  /**
   * Object files the drain writes at once. It shares libuv's four threads with the puts' own
   * appends: two leave them room.
   */
  drainConcurrency: number;
  /** Most objects the drain writes out before one file-system sync makes them durable. */
  drainBatchObjects: number;
  /** Wait before retrying a drain that failed (disk full, I/O error). */
  drainRetryMs: number;
  /**
   * The drain starts once no object has been logged for this long, or once drainBacklogBytes
   * wait (close() does not wait): a burst of small files is acknowledged from the log while
   * the disk is not also busy writing the files out, and the drain then writes them in large
   * batches, one sync each.
   */
  drainIdleMs: number;
  /** Logged bytes waiting that start the drain even while puts keep coming. */
  drainBacklogBytes: number;
}

export const FILE_LOG_DEFAULTS: FileLogOptions = {
  maxLoggedObjectBytes: 128 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  drainConcurrency: 2,
  drainBatchObjects: 1024,
  drainRetryMs: 1_000,
  drainIdleMs: 200,
  drainBacklogBytes: 64 * 1024 * 1024,
};

/** The log's folder inside the store root; list() never shows it and no key may live in it. */
export const LOG_DIR = '.strata-log';
const SEGMENT_SUFFIX = '.seg';

/** A segment this process knows of: its own (appended to or claimed) or another live process's. */
interface SegmentRef {
  readonly name: string;
  /** Open for appends and reads when the segment is this process's; null for another's. */
  readonly own: WritableSegment | null;
  /** Put records in it not yet written out as object files nor deleted. */
  livePuts: number;
  /** Own segments holding puts that this segment's tombstones cancel: they must go first. */
  readonly cancels: Set<string>;
  /** Entries that point into it, dropped from the index when it goes. */
  readonly entries: LogEntry[];
  /** Another process's segment: how far it has been scanned. */
  scannedToOffset: number;
}

interface LogEntry {
  readonly key: string;
  readonly segment: SegmentRef;
  readonly offset: number;
  readonly spanBytes: number;
  readonly sizeBytes: number;
  readonly stampMs: number;
  /** Written out as an object file, durable. */
  drained: boolean;
  /** Drained or deleted: no longer counted in its segment's livePuts. */
  done: boolean;
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

let lastStampMs = 0;

/**
 * Wall-clock milliseconds, comparable between the processes of one machine, and strictly
 * increasing within this one (a thousandth of a millisecond past the last stamp when the clock
 * has not moved on, or went back): a put after a delete of the same key here always carries
 * the later stamp. performance.now() would not do: its clock drifts from the wall clock (a
 * millisecond every few seconds measured on this machine), so two long-lived processes would
 * disagree on the order of their records.
 */
function stampNowMs(): number {
  lastStampMs = Math.max(Date.now(), lastStampMs + 0.001);
  return lastStampMs;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function segmentOwner(name: string): string {
  return name.slice(0, name.lastIndexOf('-'));
}

/**
 * A write-ahead log for small objects in front of a file store. A small put appends one record
 * to this process's current log segment and resolves after that segment's fdatasync, shared by
 * every put that arrived meanwhile (group commit): an overwrite of preallocated blocks, no
 * journal commit, where an object file costs a new inode, a rename and a directory sync. A
 * background drain then writes logged objects out as ordinary object files through the plain
 * store (same layout, same durability), and only once every put of a segment is durable as a
 * file is the segment deleted. At rest (after close) the store is exactly the plain layout.
 *
 * Several processes may open one store: each appends only to segments named after it (see
 * owner.ts). A process that misses a key rescans the other processes' segments before saying
 * not-found; segments of a process that died are claimed (renamed to the claimer's name, which
 * only one claimer wins) and drained. A delete of a key that is in a log appends a tombstone,
 * durable before the object file goes, so a recovery does not bring the object back. Puts and
 * tombstones carry wall-clock stamps: a tombstone cancels only puts made before it, so a key
 * put again after a delete survives. A tombstone can still be lost (another process draining
 * the key concurrently, or retired before the segment it cancels by a crash between the two):
 * that only brings back an object nothing refers to, which `strata gc --reclaim-leaked` removes.
 */
export class LoggedFileStore implements ObjectStore {
  readonly description: string;
  readonly abandonedPutAttempts = 0;
  private readonly logDir: string;
  private readonly owner: LogOwner = newLogOwner();
  private nextSegmentNumber = 0;
  private readonly index = new Map<string, LogEntry>();
  /** Own segments, oldest first: they retire in this order. */
  private readonly ownSegments: SegmentRef[] = [];
  private readonly foreignSegments = new Map<string, SegmentRef>();
  /** The newest tombstone stamp seen per key, for puts scanned from segments later. */
  private readonly tombstones = new Map<string, number>();
  private current: SegmentRef | null = null;
  private spare: Promise<SegmentRef> | null = null;
  private rotating: Promise<void> | null = null;
  private readonly drainQueue: LogEntry[] = [];
  /** Payload bytes of the entries in drainQueue when they were queued. */
  private queuedBytes = 0;
  private draining: Promise<void> | null = null;
  private drainRetry: NodeJS.Timeout | null = null;
  private drainError: unknown = null;
  /** Set when a file-system sync cannot be run: the drain then syncs each object it writes. */
  private syncEachObject = false;
  private readonly drainingKeys = new Map<string, Promise<void>>();
  private retiring: Promise<void> = Promise.resolve();
  private rescanning: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly plain: PlainFileStore,
    private readonly options: FileLogOptions,
  ) {
    this.description = plain.description;
    this.logDir = join(plain.root, LOG_DIR);
  }

  /**
   * Opens the log of `plain`'s store. Segments left by processes that are gone are claimed and
   * indexed before this resolves, so every object they hold is served from the first call on;
   * writing them out as files happens in the background.
   */
  static async open(plain: PlainFileStore, options: Partial<FileLogOptions> = {}): Promise<LoggedFileStore> {
    const store = new LoggedFileStore(plain, { ...FILE_LOG_DEFAULTS, ...options });
    const created = await mkdir(store.logDir, { recursive: true });
    if (created !== undefined) await syncDirectory(plain.root);
    await store.rescan();
    if (store.options.maxLoggedObjectBytes > 0) {
      // Preallocating a segment takes a while (8 MiB of zeros and two syncs): have it ready for
      // the first small put instead of making that put wait for all of it.
      store.spare = store.createSegment();
      store.spare.catch(() => undefined);
    }
    return store;
  }

  /** Objects only in a log segment right now, not yet written out as files (tests, status). */
  get loggedObjects(): number {
    let count = 0;
    for (const entry of this.index.values()) if (!entry.drained) count++;
    return count;
  }

  async put(key: string, data: Buffer): Promise<void> {
    const max = this.options.maxLoggedObjectBytes;
    if (max <= 0 || data.length > max || this.closed) return this.plain.put(key, data);
    await this.plain.checkPlacement(key);
    // Objects never change under a key: one already durable in a log needs nothing more.
    if (this.index.has(key)) return;
    const record = encodeRecord(RecordKind.Put, key, data, stampNowMs());
    const segment = await this.segmentWithRoom(record.length);
    const own = segment.own as WritableSegment;
    const { offset, durable } = own.append(record);
    segment.livePuts++;
    try {
      await durable;
    } catch (error) {
      segment.livePuts--;
      throw error;
    }
    if (this.index.has(key)) {
      // A concurrent put of the same key got there first; this record is a duplicate.
      segment.livePuts--;
      return;
    }
    const entry: LogEntry = {
      key,
      segment,
      offset,
      spanBytes: record.length,
      sizeBytes: data.length,
      stampMs: record.readDoubleLE(16),
      drained: false,
      done: false,
    };
    segment.entries.push(entry);
    this.index.set(key, entry);
    this.queueForDrain(entry);
    this.startDrain();
  }

  async get(key: string, offset?: number, length?: number): Promise<Buffer> {
    const logged = await this.readLogged(key);
    if (logged !== null) return slice(logged, offset, length);
    try {
      return await this.plain.get(key, offset, length);
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError)) throw error;
    }
    // Perhaps another process logged it: look at its segments before saying not-found.
    await this.rescan();
    const found = await this.readLogged(key);
    if (found !== null) return slice(found, offset, length);
    // Its owner may have written it out and retired the segment meanwhile.
    return this.plain.get(key, offset, length);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const entry = this.index.get(key);
    if (entry) return infoOf(entry);
    const info = await this.plain.head(key);
    if (info !== null) return info;
    await this.rescan();
    const found = this.index.get(key);
    if (found) return infoOf(found);
    return this.plain.head(key);
  }

  async delete(key: string): Promise<void> {
    const entry = this.index.get(key);
    if (entry) {
      await this.appendTombstone(key, entry.segment);
      if (this.index.get(key) === entry) this.index.delete(key);
      this.settle(entry);
      // A drain writing the key out right now would put the file back after our unlink.
      await this.drainingKeys.get(key);
    }
    await this.plain.delete(key);
    if (entry) this.scheduleRetire();
  }

  list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    return this.merged(prefix, startAfter ?? '');
  }

  /** The plain store's walk merged with logged keys, in key order, each key once. */
  private async *merged(prefix: string, startAfter: string): AsyncGenerator<ObjectInfo> {
    await this.rescan();
    const logged = [...this.index.values()]
      .filter((entry) => entry.key.startsWith(prefix) && entry.key > startAfter)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let next = 0;
    for await (const info of this.plain.list(prefix, startAfter)) {
      while (next < logged.length && logged[next].key < info.key) yield infoOf(logged[next++]);
      if (next < logged.length && logged[next].key === info.key) next++;
      yield info;
    }
    while (next < logged.length) yield infoOf(logged[next++]);
  }

  /**
   * Writes every logged object out, deletes this process's segments and closes. A clean
   * shutdown leaves no log behind; if the drain fails, the log stays for the next open.
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.rotating !== null) await this.rotating;
    this.current = null;
    const spare = await this.spare?.catch(() => null);
    this.spare = null;
    if (spare) await this.removeSegmentFile(spare);
    for (const segment of this.ownSegments) await segment.own?.settled();
    if (this.drainRetry !== null) clearTimeout(this.drainRetry);
    this.drainRetry = null;
    this.drainError = null;
    this.startDrain();
    while (this.draining !== null) await this.draining;
    if (this.drainError !== null) {
      throw new Error(
        `cannot write logged objects out to ${this.description}; the log stays for the next open`,
        {
          cause: this.drainError,
        },
      );
    }
    this.scheduleRetire();
    await this.retiring;
    await this.plain.close();
  }

  private segmentPath(name: string): string {
    return join(this.logDir, name);
  }

  // --- appending ---

  private async segmentWithRoom(bytes: number): Promise<SegmentRef> {
    for (;;) {
      const current = this.current;
      if (current !== null && (current.own as WritableSegment).freeBytes() >= bytes) {
        // Half full: have the next one preallocated before it is needed.
        if (this.spare === null && current.own!.freeBytes() < this.options.segmentBytes / 2) {
          this.spare = this.createSegment();
          this.spare.catch(() => undefined);
        }
        return current;
      }
      if (this.rotating === null) {
        this.rotating = this.rotate(current).finally(() => {
          this.rotating = null;
        });
      }
      await this.rotating;
    }
  }

  private async rotate(from: SegmentRef | null): Promise<void> {
    const next = this.spare ?? this.createSegment();
    this.spare = null;
    const segment = await next;
    this.ownSegments.push(segment);
    if (this.current === from) this.current = segment;
    this.scheduleRetire();
  }

  private async createSegment(): Promise<SegmentRef> {
    const name = `${this.owner.id}-${String(this.nextSegmentNumber++).padStart(6, '0')}${SEGMENT_SUFFIX}`;
    const own = await WritableSegment.create(this.logDir, name, this.options.segmentBytes, () =>
      syncDirectory(this.logDir),
    );
    // Listed among the own segments only once it becomes current (rotate): a spare holds nothing.
    return newSegmentRef(name, own);
  }

  private async appendTombstone(key: string, cancelled: SegmentRef): Promise<void> {
    const stampMs = stampNowMs();
    const record = encodeRecord(RecordKind.Tombstone, key, Buffer.alloc(0), stampMs);
    // A later scan of the segment holding the put (another process's, scanned again from the
    // start after it moved) must not bring the key back.
    this.tombstones.set(key, Math.max(stampMs, this.tombstones.get(key) ?? -Infinity));
    const segment = await this.segmentWithRoom(record.length);
    if (cancelled.own !== null && cancelled !== segment) segment.cancels.add(cancelled.name);
    await (segment.own as WritableSegment).append(record).durable;
  }

  // --- reading ---

  /** The whole object from a log segment, or null when no log holds it (any more). */
  private async readLogged(key: string): Promise<Buffer | null> {
    const entry = this.index.get(key);
    if (!entry) return null;
    let handle: FileHandle | null = entry.segment.own?.handle ?? null;
    let opened = false;
    try {
      if (handle === null) {
        handle = await open(this.segmentPath(entry.segment.name), 'r');
        opened = true;
      }
      const read = await readRecord(handle, entry.offset, entry.spanBytes);
      if (read !== null && read.record.kind === RecordKind.Put && read.record.key === key) {
        return read.buf.subarray(
          read.record.payloadOffset,
          read.record.payloadOffset + read.record.payloadBytes,
        );
      }
      if (entry.segment.own !== null && !entry.drained) {
        throw new Error(
          `log record of "${key}" at ${entry.offset} in ${this.segmentPath(entry.segment.name)} fails its checksum`,
        );
      }
    } catch (error) {
      // Only an object not yet written out must come from the log; anything else has its file.
      if (entry.segment.own !== null && !entry.drained) throw error;
    } finally {
      if (opened) await handle?.close().catch(() => undefined);
    }
    // Another process's segment that went away (retired or claimed): forget what it held.
    if (entry.segment.own === null) this.forgetForeign(entry.segment);
    return null;
  }

  // --- draining ---

  private queueForDrain(entry: LogEntry): void {
    this.drainQueue.push(entry);
    this.queuedBytes += entry.sizeBytes;
  }

  private startDrain(): void {
    if (this.draining !== null || this.drainQueue.length === 0) return;
    const idleEnough = this.closed || this.options.drainIdleMs <= 0;
    if (idleEnough || (this.drainError === null && this.queuedBytes >= this.options.drainBacklogBytes)) {
      if (this.drainRetry !== null) clearTimeout(this.drainRetry);
      this.drainRetry = null;
      this.drainNow();
      return;
    }
    // A failed drain waits for its retry; otherwise each new object pushes the start back.
    if (this.drainRetry !== null) {
      if (this.drainError === null) this.drainRetry.refresh();
      return;
    }
    this.drainRetry = setTimeout(() => {
      this.drainRetry = null;
      this.drainNow();
    }, this.options.drainIdleMs);
    this.drainRetry.unref();
  }

  private drainNow(): void {
    if (this.draining !== null || this.drainQueue.length === 0) return;
    this.draining = this.drainAll().finally(() => {
      this.draining = null;
    });
  }

  /**
   * Writes logged objects out in batches: every object file of a batch is written and renamed
   * into place without a sync, then one file-system sync makes the whole batch durable, and
   * only then do its entries count as drained. A crash before that sync leaves the objects in
   * their segments, which the next open drains again (the rename of identical bytes is
   * harmless). A failure puts the batch back and retries later; nothing leaves the log unsynced.
   */
  private async drainAll(): Promise<void> {
    while (this.drainQueue.length > 0) {
      const taken = this.drainQueue.splice(0, this.options.drainBatchObjects);
      for (const entry of taken) this.queuedBytes -= entry.sizeBytes;
      const batch = taken.filter((entry) => !entry.done);
      try {
        await this.writeOut(batch, this.syncEachObject);
        if (!this.syncEachObject) await this.syncBatch(batch);
      } catch (error) {
        const back = batch.filter((entry) => !entry.done);
        for (const entry of back) this.queuedBytes += entry.sizeBytes;
        this.drainQueue.unshift(...back);
        this.drainError = error;
        if (!this.closed) {
          this.drainRetry = setTimeout(() => {
            this.drainRetry = null;
            this.drainNow();
          }, this.options.drainRetryMs);
          this.drainRetry.unref();
        }
        return;
      }
      for (const entry of batch) {
        if (entry.done) continue;
        entry.drained = true;
        this.settle(entry);
      }
      this.scheduleRetire();
    }
    this.drainError = null;
  }

  /**
   * One file-system sync for the batch. If that cannot run at all (no `sync` program), the
   * batch is written again with a sync per object, and so are later ones.
   */
  private async syncBatch(batch: LogEntry[]): Promise<void> {
    try {
      await this.plain.syncFileSystem();
    } catch (error) {
      if (!isErrno((error as { cause?: unknown }).cause, 'ENOENT')) throw error;
      this.syncEachObject = true;
      await this.writeOut(batch, true);
    }
  }

  /** Writes the batch's object files, a few at once; rejects with the first failure. */
  private async writeOut(batch: LogEntry[], durable: boolean): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const entry = batch[next++];
        if (entry.done) continue;
        const written = this.writeOne(entry, durable);
        this.drainingKeys.set(entry.key, written);
        try {
          await written;
        } finally {
          if (this.drainingKeys.get(entry.key) === written) this.drainingKeys.delete(entry.key);
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: this.options.drainConcurrency }, worker));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  private async writeOne(entry: LogEntry, durable: boolean): Promise<void> {
    const data = await this.readLogged(entry.key);
    if (entry.done) return;
    if (data === null) throw new Error(`logged object "${entry.key}" vanished from its segment`);
    if (durable) await this.plain.put(entry.key, data);
    else await this.plain.putWithoutSync(entry.key, data);
  }

  private settle(entry: LogEntry): void {
    if (entry.done) return;
    entry.done = true;
    if (entry.segment.own !== null) entry.segment.livePuts--;
  }

  // --- retiring ---

  private scheduleRetire(): void {
    this.retiring = this.retiring.then(() => this.retireDone()).catch(() => undefined);
  }

  /**
   * Deletes own segments (not the current one) whose puts are all durable as files or deleted,
   * each deletion durable before the next. A segment whose tombstones cancel puts in another
   * own segment waits for that one: a tombstone never goes before the put it cancels.
   */
  private async retireDone(): Promise<void> {
    for (const segment of [...this.ownSegments]) {
      if (segment === this.current) continue;
      await segment.own?.settled();
      if (segment.livePuts > 0) continue;
      const live = new Set(this.ownSegments.map((s) => s.name));
      if ([...segment.cancels].some((name) => name !== segment.name && live.has(name))) continue;
      this.ownSegments.splice(this.ownSegments.indexOf(segment), 1);
      for (const entry of segment.entries) {
        if (this.index.get(entry.key) === entry) this.index.delete(entry.key);
      }
      await this.removeSegmentFile(segment);
    }
  }

  private async removeSegmentFile(segment: SegmentRef): Promise<void> {
    await segment.own?.close();
    await unlink(this.segmentPath(segment.name)).catch((error) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
    await syncDirectory(this.logDir);
  }

  // --- other processes' segments ---

  /** One rescan after every call: a rescan already running may have listed the folder too early. */
  private rescan(): Promise<void> {
    const run = this.rescanning.then(() => this.rescanOnce());
    this.rescanning = run.catch(() => undefined);
    return run;
  }

  private async rescanOnce(): Promise<void> {
    const names = (await readdir(this.logDir)).filter((name) => name.endsWith(SEGMENT_SUFFIX)).sort();
    const present = new Set(names);
    for (const [name, segment] of this.foreignSegments) if (!present.has(name)) this.forgetForeign(segment);
    const ownNames = new Set(this.ownSegments.map((segment) => segment.name));
    for (const name of names) {
      if (ownNames.has(name)) continue;
      const owner = segmentOwner(name);
      if (owner === this.owner.id) continue;
      if (!this.closed && !isLogOwnerAlive(owner)) await this.claim(name);
      else await this.scanForeign(name);
    }
  }

  private forgetForeign(segment: SegmentRef): void {
    if (this.foreignSegments.get(segment.name) !== segment) return;
    this.foreignSegments.delete(segment.name);
    for (const entry of segment.entries) {
      if (this.index.get(entry.key) === entry) this.index.delete(entry.key);
    }
  }

  private async scanForeign(name: string): Promise<void> {
    let segment = this.foreignSegments.get(name);
    if (!segment) {
      segment = newSegmentRef(name, null);
      this.foreignSegments.set(name, segment);
    }
    let handle: FileHandle;
    try {
      handle = await open(this.segmentPath(name), 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) {
        this.forgetForeign(segment);
        return;
      }
      throw error;
    }
    try {
      const { records, endOffset } = await scanSegment(handle, segment.scannedToOffset);
      segment.scannedToOffset = endOffset;
      this.indexRecords(segment, records);
    } finally {
      await handle.close();
    }
  }

  /** Takes over the segment of a process that is gone, and queues its objects for the drain. */
  private async claim(name: string): Promise<void> {
    const newName = `${this.owner.id}-${String(this.nextSegmentNumber++).padStart(6, '0')}${SEGMENT_SUFFIX}`;
    try {
      await rename(this.segmentPath(name), this.segmentPath(newName));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return; // another process claimed it first
      throw error;
    }
    const stale = this.foreignSegments.get(name);
    if (stale) this.forgetForeign(stale);
    const own = await WritableSegment.adopt(this.segmentPath(newName), newName);
    const segment = newSegmentRef(newName, own);
    this.ownSegments.push(segment);
    const { records } = await scanSegment(own.handle, 0);
    this.indexRecords(segment, records);
    this.startDrain();
  }

  /** Adds scanned records to the index: puts not cancelled by a later tombstone, tombstones. */
  private indexRecords(segment: SegmentRef, records: ScannedRecord[]): void {
    for (const record of records) {
      if (record.kind === RecordKind.Tombstone) {
        if ((this.tombstones.get(record.key) ?? -Infinity) < record.stampMs) {
          this.tombstones.set(record.key, record.stampMs);
        }
        const entry = this.index.get(record.key);
        if (entry && entry.stampMs < record.stampMs) {
          this.index.delete(record.key);
          this.settle(entry);
          if (segment.own !== null && entry.segment.own !== null) segment.cancels.add(entry.segment.name);
        }
        continue;
      }
      if ((this.tombstones.get(record.key) ?? -Infinity) > record.stampMs) continue;
      const existing = this.index.get(record.key);
      // Our own durable copy serves; a foreign one is replaced by one we now own and drain.
      if (existing && (existing.segment.own !== null || segment.own === null)) continue;
      const entry: LogEntry = {
        key: record.key,
        segment,
        offset: record.offset,
        spanBytes: record.spanBytes,
        sizeBytes: record.payloadBytes,
        stampMs: record.stampMs,
        drained: false,
        done: false,
      };
      segment.entries.push(entry);
      this.index.set(record.key, entry);
      if (segment.own !== null) {
        segment.livePuts++;
        this.queueForDrain(entry);
      }
    }
  }
}

function newSegmentRef(name: string, own: WritableSegment | null): SegmentRef {
  return { name, own, livePuts: 0, cancels: new Set(), entries: [], scannedToOffset: 0 };
}

function infoOf(entry: LogEntry): ObjectInfo {
  return { key: entry.key, sizeBytes: entry.sizeBytes, modifiedMs: Math.floor(entry.stampMs) };
}

function slice(data: Buffer, offset?: number, length?: number): Buffer {
  const start = Math.min(offset ?? 0, data.length);
  const end = length === undefined ? data.length : Math.min(data.length, start + length);
  return data.subarray(start, end);
}
