import {
  Errno,
  fsError,
  isFsError,
  type FsError,
  type Ino,
  type SliceRef,
  type SliceWrite,
} from '../common/index.js';
import type { DataPath, FileWriter, FillListener, ReadLease } from '../data/index.js';
import type { LentBytes } from '../fuse/index.js';
import type { Caller, InodeAttr, MetaApi, Timespec, VolumeSettings } from '../meta/api.js';
import { changeTimeAfter, compareTimes, contentVersion, exactVersion, nowTimespec } from './attr.js';
import { Compactor } from './compactor.js';
import type { VfsOptions } from './options.js';
import type { PageCache, PushSource } from './page-cache.js';
import { RecentSlices } from './recent-slices.js';
import { instantOfVersion, nowUs } from './version-history.js';

/** A metadata change that follows a flush and sets the file's mtime to `mtime` (see flush). */
export interface FollowingChange {
  start: () => Promise<unknown>;
  mtime: Timespec;
}

/**
 * The state of one inode while this mount has it open: a writer shared by all its handles
 * (so reads through any handle see the mount's own writes), the slice lists read so far
 * (valid until this mount changes the file or a reopen sees another mount's change),
 * and the size including writes not yet committed.
 */
export class OpenFile implements PushSource {
  refs = 0;
  /** Whether the metadata service knows this mount has the file open (see Vfs.protectOpenFile). */
  registered = false;
  attr: InodeAttr;
  /** When this mount last took `attr` from the service: the file was that version then. */
  private attrSeenAtUs: number;
  private writer: FileWriter | null = null;
  /** Byte range covered by writes not yet committed: reads overlapping it flush first. */
  private pendingStart = Number.POSITIVE_INFINITY;
  private pendingEnd = 0;
  /** End of the writes being committed right now (their bytes are neither pending nor in attr yet). */
  private committingEnd = 0;
  /**
   * Uploaded writes whose commit failed (the metadata service out of reach past the retries):
   * kept, still pending, so the next flush commits them. Dropping them made a retried fsync
   * succeed with the data lost, and this mount read the old bytes back.
   */
  private uncommitted: SliceWrite[] = [];
  private readonly slices = new Map<number, SliceRef[]>();
  /**
   * Lists dropped by invalidate(), per chunk, until the service answers for that chunk again:
   * if it answers that the inode is gone (another mount removed its last name while this
   * mount has it open), reads go on from what this mount knew, as on a local file system.
   * The objects stay for the history retention at least (garbage collection waits for it).
   */
  private readonly lastKnownSlices = new Map<number, SliceRef[]>();
  private slicesVersion: string;
  /**
   * The exact inode state (exactVersion) the cached lists are at least as new as, and when the
   * oldest of them was asked for: what RecentSlices needs to reuse them after the last close.
   */
  private slicesExact: string | null = null;
  private slicesReadAtMs = Number.POSITIVE_INFINITY;
  /**
   * Another mount changed the file while this mount held writes to it (seen by noteAttr, pushed
   * by the server, or told by the commit's reply: see flushOnce): the lists were kept for the
   * commit to come, but that commit must not make them current by appending its slices
   * (afterCommit), or the other mount's slices stay missing from them, and its bytes read as the
   * old ones (or zeros) here, even after its close.
   */
  private changedElsewhereWhilePending = false;
  /** A commit found the file changed elsewhere meanwhile: the kernel's pages may hold old bytes. */
  private kernelPagesStale = false;
  private flushing: Promise<void> = Promise.resolve();
  /** When the newest uncommitted write happened: the file's mtime until that write is committed. */
  private lastWriteTime: Timespec | null = null;
  /** Who wrote last: commits not tied to a close (a read of pending data, unmount) run as them. */
  lastWriter: Caller = { uid: 0, gid: 0, pid: 0 };
  private readonly getChunkSlices = (chunkIndex: number): Promise<SliceRef[]> => this.chunkSlices(chunkIndex);
  /** Where a whole-file copy into the disk cache sends what it verified: the kernel page cache. */
  private readonly fillListener: FillListener | undefined;

  constructor(
    attr: InodeAttr,
    private readonly meta: MetaApi,
    private readonly data: DataPath,
    private readonly compactor: Compactor,
    private readonly pageCache: PageCache | undefined,
    /** Other mounts may change the volume (VfsOptions.sharedWithOtherMounts). */
    private readonly sharedWithOtherMounts: boolean,
    seenAtUs = nowUs(),
  ) {
    this.attr = attr;
    this.attrSeenAtUs = seenAtUs;
    if (pageCache !== undefined)
      this.fillListener = { startFill: () => pageCache.fillSink(this.ino, this.attr.sizeBytes) };
    this.slicesVersion = contentVersion(attr);
  }

  get ino(): Ino {
    return this.attr.ino;
  }

  get hasPending(): boolean {
    return this.pendingEnd > 0 || this.committingEnd > 0;
  }

  /** The size the kernel must see: committed size grown by this mount's pending writes. */
  get sizeBytes(): number {
    return Math.max(this.attr.sizeBytes, this.pendingEnd, this.committingEnd);
  }

  /**
   * The attributes the kernel must see: the committed ones grown by this mount's pending
   * writes, whose size counts and whose time is the file's mtime and ctime (as on a local
   * file system, where a write moves mtime at once, not at close).
   */
  withPending(attr: InodeAttr): InodeAttr {
    const sizeBytes = Math.max(attr.sizeBytes, this.sizeBytes);
    // The service counts committed data only: a file being written would show fewer blocks
    // than it holds (none while new), and tar --sparse archives a file with st_blocks 0 as all
    // holes. Until the commit, its blocks are those of its size, as before allocated bytes.
    const allocatedBytes = this.hasPending
      ? Math.max(attr.allocatedBytes ?? 0, sizeBytes)
      : attr.allocatedBytes;
    const writeTime = this.lastWriteTime;
    if (writeTime === null) {
      return sizeBytes === attr.sizeBytes && allocatedBytes === attr.allocatedBytes
        ? attr
        : { ...attr, sizeBytes, allocatedBytes };
    }
    return {
      ...attr,
      sizeBytes,
      allocatedBytes,
      mtime: writeTime,
      ctime: changeTimeAfter(attr.ctime, writeTime),
    };
  }

  /**
   * A newer view of the inode from the metadata service (open, getattr, setattr), taken at
   * `seenAtUs` (an open of a file removed since its lookup passes the lookup's instant).
   */
  noteAttr(attr: InodeAttr, seenAtUs = nowUs()): void {
    // A getattr answered before our own commit may arrive after it: never step back in time.
    if (isOlder(attr, this.attr)) return;
    this.attr = attr;
    this.attrSeenAtUs = seenAtUs;
    if (contentVersion(attr) === this.slicesVersion) return;
    // On a volume no other mount changes, a new version while writes are pending is this
    // mount's own commit, answered to a getattr before its own reply came: the lists stay.
    if (this.hasPending && !this.sharedWithOtherMounts) return;
    // Another mount changed the file (seen at open or getattr): our slice lists are stale.
    this.changedElsewhere();
  }

  /** Another mount changed the file: the lists go now, or with the commit of this mount's writes. */
  changedElsewhere(): void {
    if (this.hasPending) this.changedElsewhereWhilePending = true;
    else this.invalidate();
  }

  /**
   * True once after a commit that found the file changed elsewhere meanwhile: the kernel's
   * pages of the file are not known to be its current version (VfsHandles).
   */
  takeKernelPagesStale(): boolean {
    const stale = this.kernelPagesStale;
    this.kernelPagesStale = false;
    return stale;
  }

  invalidate(): void {
    this.pageCache?.changed(this.ino);
    for (const [chunkIndex, list] of this.slices) this.lastKnownSlices.set(chunkIndex, list);
    this.slices.clear();
    this.slicesVersion = contentVersion(this.attr);
    this.slicesExact = null;
    this.slicesReadAtMs = Number.POSITIVE_INFINITY;
    this.changedElsewhereWhilePending = false;
  }

  /**
   * Forgets the writes not committed yet: the locks they were made under were released by the
   * metadata service (it ended this mount's session), and committing them now could overwrite
   * what another mount wrote since, holding those locks. A commit already under way finishes.
   */
  async discardPending(): Promise<void> {
    await this.flushing;
    const writer = this.writer;
    this.writer = null;
    this.uncommitted = [];
    this.pendingStart = Number.POSITIVE_INFINITY;
    this.pendingEnd = 0;
    this.lastWriteTime = null;
    this.invalidate();
    if (writer !== null) await writer.abort();
  }

  /** Lists another open of the same unchanged file read (see RecentSlices). */
  seedSlices(slices: Map<number, SliceRef[]>, readAtMs: number): void {
    if (this.slices.size > 0 || this.hasPending) return;
    for (const [chunkIndex, list] of slices) this.slices.set(chunkIndex, list);
    this.slicesExact = exactVersion(this.attr);
    this.slicesReadAtMs = readAtMs;
  }

  /** The cached lists, when they describe committed state and nothing is pending. */
  reusableSlices(): { version: string; slices: Map<number, SliceRef[]>; readAtMs: number } | null {
    if (this.hasPending || this.slicesExact === null || this.slices.size === 0) return null;
    if (this.slicesVersion !== contentVersion(this.attr)) return null;
    return { version: this.slicesExact, slices: this.slices, readAtMs: this.slicesReadAtMs };
  }

  async write(offset: number, data: Buffer, caller: Caller): Promise<void> {
    this.lastWriter = caller;
    this.lastWriteTime = nowTimespec();
    this.pageCache?.changed(this.ino);
    this.writer ??= this.data.openWriter(this.ino);
    await this.writer.write(offset, data);
    if (offset < this.pendingStart) this.pendingStart = offset;
    if (offset + data.length > this.pendingEnd) this.pendingEnd = offset + data.length;
  }

  /** The bytes, which may be a view of cached memory: kept for any time, or until `lease` is released. */
  async read(offset: number, size: number, lease?: ReadLease): Promise<Buffer> {
    // Read-your-writes: the data path sees committed slices only.
    if (this.pendingEnd > 0 && offset < this.pendingEnd && offset + size > this.pendingStart) {
      await this.flush(this.lastWriter);
    } else {
      await this.flushing;
    }
    // Pending writes past the committed size make the bytes between them a hole: zeros.
    return this.data.read(
      this.ino,
      offset,
      size,
      this.getChunkSlices,
      this.sizeBytes,
      this.fillListener,
      lease,
    );
  }

  /** read() for a reply: the cache's memory is lent until `done`, then it may hold other blocks. */
  async readLent(offset: number, size: number): Promise<LentBytes> {
    const lease = this.data.newReadLease();
    try {
      const data = await this.read(offset, size, lease);
      return { data, done: () => lease.release() };
    } catch (error) {
      lease.release();
      throw error;
    }
  }

  /**
   * PushSource: committed bytes verified in memory already, lent until `done` (so the cache's
   * memory behind them may hold other blocks afterwards); none while writes are pending.
   */
  async cachedRange(offsetBytes: number, lengthBytes: number): Promise<LentBytes | null> {
    if (this.hasPending) return null;
    const lease = this.data.newReadLease();
    try {
      const data = await this.data.readCached(
        offsetBytes,
        lengthBytes,
        this.getChunkSlices,
        this.attr.sizeBytes,
        lease,
      );
      if (data !== null) return { data, done: () => lease.release() };
    } catch (error) {
      lease.release();
      throw error;
    }
    lease.release(); // nothing in memory: nothing lent
    return null;
  }

  private async chunkSlices(chunkIndex: number): Promise<SliceRef[]> {
    const cached = this.slices.get(chunkIndex);
    if (cached !== undefined) return cached;
    const version = this.slicesVersion;
    // The lists are at least as new as the inode state known when asking for them.
    const exact = exactVersion(this.attr);
    const askedAtMs = Date.now();
    let fetched: SliceRef[];
    try {
      fetched = (await this.meta.readSlices(this.ino, chunkIndex, chunkIndex)).get(chunkIndex) ?? [];
    } catch (err) {
      if (!isFsError(err) || err.errno !== Errno.ENOENT) throw err;
      return this.lastKnownSlices.get(chunkIndex) ?? (await this.slicesBeforeRemoval(chunkIndex, err));
    }
    this.lastKnownSlices.delete(chunkIndex);
    if (version === this.slicesVersion) {
      this.slices.set(chunkIndex, fetched);
      this.slicesExact ??= exact;
      this.slicesReadAtMs = Math.min(this.slicesReadAtMs, askedAtMs);
    }
    this.compactor.consider(this.ino, chunkIndex, fetched);
    return fetched;
  }

  /**
   * The lists of a chunk never read here of a file the service says is gone (another mount
   * removed its last name, or renamed over it, while this mount has it open): as the file was
   * when this mount last saw it, from the service's history, which keeps them for the history
   * retention as garbage collection keeps their blocks. So a reader that opened the old version
   * of a file committed by rename reads it whole, as on a local file system, where NFS answers
   * ESTALE. If the history does not show the version this mount knows, the ENOENT stands.
   */
  private async slicesBeforeRemoval(chunkIndex: number, gone: FsError): Promise<SliceRef[]> {
    let slices: SliceRef[];
    try {
      const asOfUs = await instantOfVersion(this.meta, this.attr, this.attrSeenAtUs);
      if (asOfUs === undefined) throw gone;
      slices =
        (await this.meta.readSlices(this.ino, chunkIndex, chunkIndex, { asOfUs })).get(chunkIndex) ?? [];
    } catch {
      throw gone;
    }
    this.lastKnownSlices.set(chunkIndex, slices);
    return slices;
  }

  /**
   * Uploads and commits pending writes; one flush at a time per file, errors reach the caller.
   * `then`, when given, is a metadata change the caller needs after the writes: it is started
   * right behind their commit, once their data is durable, without waiting for that commit, so
   * the two share one metadata batch (one commit instead of two in sequence). The writes are
   * committed with `then.mtime`, the change's own explicit mtime, so the result does not depend
   * on which of the two lands first. `then` is not started when the flush fails before its
   * commit, nor when nothing was pending: the caller starts it then.
   */
  flush(caller: Caller, then?: FollowingChange): Promise<void> {
    const run = this.flushing.then(
      () => this.flushOnce(caller, then),
      () => this.flushOnce(caller, then),
    );
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(caller: Caller, then?: FollowingChange): Promise<void> {
    const writer = this.writer;
    if (writer === null || (writer.pendingBytes === 0 && this.pendingEnd === 0)) return;
    const pendingStart = this.pendingStart;
    this.committingEnd = this.pendingEnd;
    this.pendingStart = Number.POSITIVE_INFINITY;
    this.pendingEnd = 0;
    const mtime = then?.mtime ?? this.lastWriteTime ?? nowTimespec();
    this.lastWriteTime = null;
    let writes: SliceWrite[] = [];
    try {
      writes = [...this.uncommitted, ...(await writer.flush())];
      this.uncommitted = [];
      if (writes.length === 0) return;
      // The state the lists are known to be at: a getattr answered meanwhile may carry our own
      // commit, whose ctime is not the one the commit found.
      const knownCtime = this.attr.ctime;
      const committed = this.meta.commitWrites(caller, this.ino, writes, this.endOf(writes), mtime);
      // Its caller awaits it once this flush succeeded; if the commit fails, that error wins.
      then?.start().catch(() => undefined);
      const { ctimeBefore, ...attr } = await committed;
      this.attr = attr;
      this.attrSeenAtUs = nowUs();
      // The service found the inode at another ctime than the one this mount knows: another
      // change landed between, whose push may come after this reply (several metadata servers
      // hear of each other's commits through PostgreSQL), or never reached us. Taken as that
      // push, so this commit does not make the lists current. A change of this mount's own
      // answered late (a chmod racing the commit) only costs a re-read of the lists. Only a
      // shared mount can see another mount's change; an older server answers no ctimeBefore.
      if (
        ctimeBefore !== undefined &&
        this.sharedWithOtherMounts &&
        compareTimes(ctimeBefore, knownCtime) !== 0
      ) {
        this.changedElsewhereWhilePending = true;
      }
      this.afterCommit(writes);
      writes = [];
    } catch (err) {
      // A failed commit keeps its writes pending (see uncommitted), in their order; a failed
      // upload keeps those of an earlier failed commit.
      if (writes.length > 0) this.uncommitted = [...writes, ...this.uncommitted];
      if (this.uncommitted.length > 0) {
        this.pendingStart = Math.min(this.pendingStart, pendingStart);
        this.pendingEnd = Math.max(this.pendingEnd, this.committingEnd);
        this.lastWriteTime ??= mtime;
      }
      if (isFsError(err)) throw err;
      throw fsError.EIO(`writing inode ${this.ino} failed: ${(err as Error).message}`, err);
    } finally {
      this.committingEnd = 0;
    }
  }

  private endOf(writes: SliceWrite[]): number {
    let end = 0;
    for (const w of writes) {
      const e = w.chunkIndex * this.data.chunkSizeBytes + w.slice.chunkOffsetBytes + w.slice.lengthBytes;
      if (e > end) end = e;
    }
    return end;
  }

  private afterCommit(writes: SliceWrite[]): void {
    for (const w of writes) this.compactor.noteCommit(this.ino, w.chunkIndex);
    if (this.changedElsewhereWhilePending) {
      // The other mount's slices may lie under ours or beside them: ask the service again.
      this.invalidate();
      this.kernelPagesStale = true;
      return;
    }
    for (const w of writes) {
      const cached = this.slices.get(w.chunkIndex);
      // Overlay order: our new slice is the top layer, exactly what the service appended.
      if (cached !== undefined) this.slices.set(w.chunkIndex, [...cached, w.slice]);
    }
    this.slicesVersion = contentVersion(this.attr);
    // The lists now include slices we appended rather than read: right while this file stays
    // open, but another mount's commit may have landed between, so never reuse them past a close.
    this.slicesExact = null;
    this.slicesReadAtMs = Number.POSITIVE_INFINITY;
  }

  /** Drops the writer after the last handle closed (its data was flushed or reported as lost). */
  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = null;
    this.uncommitted = [];
    if (writer !== null && writer.pendingBytes > 0) await writer.abort();
    this.data.forget(this.ino);
  }
}

function isOlder(a: InodeAttr, b: InodeAttr): boolean {
  return compareTimes(a.ctime, b.ctime) < 0;
}

/** What the composition root may add to the VFS options: the kernel page cache pusher. */
export interface PageCacheOption {
  pageCache?: PageCache;
}

/** The open files of a mount, by inode. */
export class OpenFiles {
  private readonly files = new Map<Ino, OpenFile>();
  private readonly recent = new RecentSlices();
  private dataPath: DataPath;
  private readonly compactor: Compactor;
  private readonly pageCache: PageCache | undefined;
  private readonly sharedWithOtherMounts: boolean;

  constructor(
    private readonly meta: MetaApi,
    data: DataPath,
    options: VfsOptions & PageCacheOption,
  ) {
    this.dataPath = data;
    this.pageCache = options.pageCache;
    this.sharedWithOtherMounts = options.sharedWithOtherMounts === true;
    this.compactor = new Compactor(meta, data, options);
    this.compactor.onCompacted = (ino) => {
      this.files.get(ino)?.invalidate();
      this.recent.forget(ino);
    };
  }

  setVolume(volume: VolumeSettings): void {
    // The data path was built with the volume's block and chunk sizes by the composition root.
    this.recent.setRetention(volume.historyRetentionMs);
  }

  /** The open file of `attr.ino`, as the service showed it at `seenAtUs` (default now). */
  acquire(attr: InodeAttr, seenAtUs?: number): OpenFile {
    let file = this.files.get(attr.ino);
    if (file === undefined) {
      file = new OpenFile(
        attr,
        this.meta,
        this.dataPath,
        this.compactor,
        this.pageCache,
        this.sharedWithOtherMounts,
        seenAtUs,
      );
      this.files.set(attr.ino, file);
      this.pageCache?.attach(attr.ino, file);
      const recent = this.recent.take(attr.ino, attr);
      if (recent !== undefined) file.seedSlices(recent.slices, recent.readAtMs);
    } else {
      file.noteAttr(attr, seenAtUs);
    }
    file.refs++;
    return file;
  }

  /** Drops one handle's reference; true when it was the last one. */
  release(file: OpenFile): boolean {
    if (--file.refs > 0) return false;
    this.files.delete(file.ino);
    this.pageCache?.detach(file.ino, file);
    const reusable = file.reusableSlices();
    if (reusable !== null)
      this.recent.remember(file.ino, reusable.version, reusable.slices, reusable.readAtMs);
    void file.close();
    return true;
  }

  get size(): number {
    return this.files.size;
  }

  get(ino: Ino): OpenFile | undefined {
    return this.files.get(ino);
  }

  /** `attr` as the kernel must see it while this mount holds uncommitted writes to the file. */
  withPending(attr: InodeAttr): InodeAttr {
    const file = this.files.get(attr.ino);
    return file === undefined ? attr : file.withPending(attr);
  }

  noteAttr(attr: InodeAttr): void {
    this.files.get(attr.ino)?.noteAttr(attr);
  }

  invalidate(ino: Ino): void {
    this.files.get(ino)?.invalidate();
    this.recent.forget(ino);
  }

  /**
   * Another mount changed `ino` (its metadata server said so): where the open file's data lives
   * may have moved, so the next read asks the service again (after the commit of this mount's
   * own writes to the file, when it holds some: see OpenFile.changedElsewhere).
   */
  changedElsewhere(ino: Ino): void {
    this.files.get(ino)?.changedElsewhere();
    this.recent.forget(ino);
  }

  /** Changes elsewhere may have been missed (lost connection, failover): every open file. */
  changedElsewhereAll(): void {
    for (const ino of [...this.files.keys()]) this.changedElsewhere(ino);
  }

  async flush(ino: Ino, caller: Caller, then?: FollowingChange): Promise<void> {
    await this.files.get(ino)?.flush(caller, then);
  }

  /** Commits every open file's pending writes (unmount, DESTROY). Reports the first failure. */
  async flushAll(): Promise<void> {
    const results = await Promise.allSettled([...this.files.values()].map((f) => f.flush(f.lastWriter)));
    await this.compactor.stop();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
