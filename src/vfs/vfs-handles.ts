import { constants as fsConstants } from 'node:fs';
import { Errno, fsError, isFsError, type Ino } from '../common/index.js';
import {
  WriteFlags,
  type CreateReply,
  type FileLock,
  type LentBytes,
  type OpenReply,
  type RequestContext,
} from '../fuse/index.js';
import type { Caller, InodeAttr, LockOwner } from '../meta/api.js';
import { contentVersion, isRegular, requireFileEnd } from './attr.js';
import { HeldLocks } from './held-locks.js';
import { fromLockRange, setLockWaiting, toLockRange } from './locks.js';
import type { OpenFile } from './open-files.js';
import { RecentLookups } from './recent-lookups.js';
import { nowUs } from './version-history.js';
import { seekOpenFile } from './seek.js';
import { VfsSession } from './vfs-session.js';

const { O_TRUNC, O_APPEND, O_DIRECT, O_SYNC, O_DSYNC, O_EXCL, O_RDONLY, O_WRONLY, R_OK, W_OK } = fsConstants;
/** The access-mode bits of open flags (Linux; not in node's fs.constants). */
const O_ACCMODE = 3;

/** A cached version no content version equals: the kernel's pages may be of any version. */
const PAGES_OF_UNKNOWN_VERSION = '';

/** Who registers open files again under a new session: the mount itself, not a process. */
const MOUNT_CALLER: Caller = { uid: 0, gid: 0, pid: process.pid };

/** One open(2) of a file: the kernel's `fh` names it. */
interface Handle {
  ino: Ino;
  flags: number;
  file: OpenFile;
  /** The service ended the session its locks lived in (see sessionRenewed): I/O fails with EIO. */
  locksLost?: true;
}

/**
 * The VFS operations on open files (see Vfs): open and create, the handles the kernel names
 * by `fh`, reads and writes through the per-inode open-file state, flush, release and fsync,
 * POSIX, OFD and flock locks, and the data-map operations on an open file.
 */
export abstract class VfsHandles extends VfsSession {
  private readonly handles = new Map<number, Handle>();
  private readonly heldLocks = new HeldLocks();
  private nextFh = 1;
  /** Content version last handed to the kernel per inode: unchanged on open means keep the page cache. */
  private readonly cachedVersions = new Map<Ino, string>();
  /** Regular files the kernel looked up a moment ago: see openedAttr. */
  protected readonly recentLookups = new RecentLookups();
  /** O_TMPFILE files made here without O_EXCL and not named yet: linkat gives them a first name. */
  protected readonly linkableTmpfiles = new Set<Ino>();
  /**
   * Files this mount created that are still open and had no xattr set since: the kernel asks
   * for their security.capability before their first write (file_remove_privs), one metadata
   * round trip per new file that can only say "none".
   */
  protected readonly createdWithoutXattrs = new Set<Ino>();
  /**
   * Tells the kernel to drop what it caches of an inode (attributes, pages). Set by the
   * composition root once the FUSE session exists; an open that finds the file changed by
   * another mount uses it, because the kernel would otherwise trust a stale size until the
   * attribute timeout.
   */
  onStaleInode: (ino: Ino) => Promise<void> = () => Promise.resolve();

  async forget(ino: Ino): Promise<void> {
    this.cachedVersions.delete(ino);
    this.linkableTmpfiles.delete(ino);
    this.createdWithoutXattrs.delete(ino);
    this.specialNodes.forget(ino);
  }

  // --- open files ---

  async open(ctx: RequestContext, ino: Ino, flags: number, killSuidgid = false): Promise<OpenReply> {
    const caller = this.callers.of(ctx);
    // Close-to-open: the open asks the metadata service, so another mount's closed writes are
    // seen. A read, not an open registration: see protectOpenFile for why that can wait.
    const opened = await this.openedAttr(ino, flags);
    let attr = opened.attr;
    // Linux truncates on O_TRUNC whatever the access mode (O_RDONLY|O_TRUNC included): the
    // kernel has already checked write permission for it (build_open_flags adds MAY_WRITE).
    if (flags & O_TRUNC && isRegular(attr.mode)) {
      await this.openFiles.flush(ino, caller);
      attr = await this.meta.setattr(caller, ino, { sizeBytes: 0, killSuid: killSuidgid || undefined });
      this.openFiles.invalidate(ino);
    }
    return this.newHandle(ino, flags, attr, opened.seenAtUs);
  }

  /**
   * The inode an open names, from the service. Gone means a change since the kernel looked the
   * name up removed it (a commit by rename over the name, on this mount or another). A read-only
   * open of a file this mount looked up a moment ago opens the version the lookup saw, read from
   * the history (RecentLookups, OpenFile.slicesBeforeRemoval); otherwise ESTALE makes the
   * kernel look the name up again and open what it names now, as it does for NFS. ENOENT failed
   * the open of a name that exists, whole, all along.
   */
  private async openedAttr(ino: Ino, flags: number): Promise<{ attr: InodeAttr; seenAtUs?: number }> {
    try {
      return { attr: await this.meta.getattr(ino) };
    } catch (err) {
      if (!isFsError(err) || err.errno !== Errno.ENOENT) throw err;
      const readOnly = (flags & O_ACCMODE) === O_RDONLY && (flags & O_TRUNC) === 0;
      const looked = readOnly ? this.recentLookups.get(ino, nowUs()) : undefined;
      if (looked !== undefined) return looked;
      throw fsError.ESTALE(
        `inode ${ino} was removed after the kernel looked up the name opened; it looks the name up again`,
      );
    }
  }

  async create(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    mode: number,
    flags: number,
  ): Promise<CreateReply> {
    let attr: InodeAttr;
    try {
      attr = await this.meta.mknod(this.callers.of(ctx), parent, name, mode, 0, ctx.umask);
    } catch (err) {
      if (flags & O_EXCL || !isFsError(err) || err.errno !== Errno.EEXIST) throw err;
      return this.openRacedCreate(ctx, parent, name, flags, err);
    }
    this.createdWithoutXattrs.add(attr.ino);
    return { ...this.entry(attr), ...this.newHandle(attr.ino, flags, attr) };
  }

  /**
   * Another mount created the name after this kernel's lookup missed it. open(2) without
   * O_EXCL opens the existing file, so this does, with the permission checks the kernel
   * skips for a file it believes it created. Anything but a regular file there (a
   * symlink the kernel would have followed, a directory) keeps the EEXIST.
   */
  private async openRacedCreate(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    flags: number,
    raced: Error,
  ): Promise<CreateReply> {
    const caller = this.callers.of(ctx);
    const found = await this.meta.lookup(caller, parent, name);
    if (!isRegular(found.mode)) throw raced;
    const accessMode = flags & O_ACCMODE;
    const wants = accessMode === O_RDONLY ? R_OK : accessMode === O_WRONLY ? W_OK : R_OK | W_OK;
    await this.meta.access(caller, found.ino, wants | (flags & O_TRUNC ? W_OK : 0));
    const handle = await this.open(ctx, found.ino, flags);
    return { ...this.entry(await this.meta.getattr(found.ino)), ...handle };
  }

  /** O_TMPFILE: an unnamed file (nlink 0) that lives while open, as an open-but-unlinked file does. */
  async tmpfile(ctx: RequestContext, parent: Ino, mode: number, flags: number): Promise<CreateReply> {
    const caller = this.callers.of(ctx);
    const attr = await this.withSession((sessionId) =>
      this.meta.tmpfile(caller, sessionId, parent, mode, ctx.umask),
    );
    const reply = { ...this.entry(attr), ...this.newHandle(attr.ino, flags, attr) };
    // The service counted this open already: the last release must end it, freeing the file.
    this.handle(reply.fh, attr.ino).file.registered = true;
    if (!(flags & O_EXCL)) this.linkableTmpfiles.add(attr.ino);
    return reply;
  }

  /**
   * An unlinked file must keep its data while it is open. Registering every open with the
   * metadata service would cost a durable write per open and per close, so this mount
   * registers an open file only when it is about to remove (or rename over) one of its names.
   * Opens in other mounts are not protected this way (as in JuiceFS): their reads keep
   * working from the slices they already know until garbage collection, which waits for the
   * history retention anyway.
   */
  protected async protectOpenFile(caller: Caller, parent: Ino, name: string): Promise<void> {
    if (this.openFiles.size === 0) return;
    let ino: Ino;
    try {
      ino = (await this.meta.lookup(caller, parent, name)).ino;
    } catch {
      return; // The removal itself reports a missing name.
    }
    const file = this.openFiles.get(ino);
    if (file === undefined || file.registered) return;
    file.registered = true;
    await this.withSession((sessionId) => this.meta.open(caller, sessionId, ino, 0));
  }

  protected async sessionRenewed(sessionId: string): Promise<number> {
    const files = new Set<OpenFile>();
    for (const handle of this.handles.values()) if (handle.file.registered) files.add(handle.file);
    for (const file of files) {
      try {
        await this.meta.open(MOUNT_CALLER, sessionId, file.ino, 0);
      } catch (err) {
        // Reclaimed with the old session (it was unlinked): its known slices still read
        // until garbage collection, as opens on other mounts do (see protectOpenFile).
        if (!isFsError(err) || err.errno !== Errno.ENOENT) throw err;
        file.registered = false;
      }
    }
    const locked = this.heldLocks.takeLockedInodes((fh) => this.handles.get(fh)?.ino);
    let lost = 0;
    for (const handle of this.handles.values()) {
      if (!locked.has(handle.ino)) continue;
      handle.locksLost = true;
      lost++;
    }
    for (const ino of locked) await this.openFiles.get(ino)?.discardPending();
    return lost;
  }

  private newHandle(ino: Ino, flags: number, attr: InodeAttr, seenAtUs?: number): OpenReply {
    const file = this.openFiles.acquire(attr, seenAtUs);
    const fh = this.nextFh++;
    this.handles.set(fh, { ino, flags, file });
    const version = contentVersion(attr);
    const cached = this.cachedVersions.get(ino);
    const keepCache = !file.hasPending && cached === version;
    if (cached !== undefined && cached !== version && !file.hasPending) void this.onStaleInode(ino);
    this.cachedVersions.set(ino, version);
    return { fh, directIo: (flags & O_DIRECT) !== 0, keepCache };
  }

  private handle(fh: number, ino: Ino): Handle {
    const handle = this.handles.get(fh);
    if (handle === undefined || handle.ino !== ino) {
      throw fsError.EBADF(`no open file handle ${fh} for inode ${ino}; it was closed already`);
    }
    return handle;
  }

  /**
   * The handle for I/O that a lock may guard. Once the service released this file's locks
   * (it ended the session), another mount may hold them and change the file: like NFS after
   * a lost lease, the program learns it from EIO rather than working on in the belief that
   * it holds them.
   */
  private lockedHandle(fh: number, ino: Ino): Handle {
    const handle = this.handle(fh, ino);
    if (handle.locksLost) {
      throw fsError.EIO(
        `the locks on inode ${ino} held through this descriptor were released when the metadata service ended this mount's session; reopen the file and lock it again`,
      );
    }
    return handle;
  }

  async read(_ctx: RequestContext, ino: Ino, fh: number, offset: number, size: number): Promise<Buffer> {
    return this.lockedHandle(fh, ino).file.read(offset, size);
  }

  async readLent(
    _ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    size: number,
  ): Promise<LentBytes> {
    return this.lockedHandle(fh, ino).file.readLent(offset, size);
  }

  async write(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    data: Buffer,
    flags: number,
    fileFlags?: number,
  ): Promise<number> {
    const handle = this.lockedHandle(fh, ino);
    const file = handle.file;
    if (flags & WriteFlags.KILL_SUIDGID && file.attr.mode & 0o6000) {
      file.noteAttr(await this.meta.setattr(this.callers.of(ctx), ino, { killSuid: true }));
    }
    // O_APPEND: the kernel's idea of the size may be stale when another mount appended.
    // Not for page-cache writeback (WRITE_CACHE: dirty pages of a shared mapping, which
    // the kernel may send through any writable handle): those belong at their own offset.
    // The descriptor's flags now, not at open: fcntl(F_SETFL) may have cleared O_APPEND.
    const nowFlags = fileFlags ?? handle.flags;
    const append = (nowFlags & O_APPEND) !== 0 && (flags & WriteFlags.CACHE) === 0;
    const at = append ? Math.max(offset, file.sizeBytes) : offset;
    await file.write(at, data, this.callers.of(ctx));
    if ((handle.flags | nowFlags) & (O_SYNC | O_DSYNC)) {
      await file.flush(this.callers.of(ctx));
      await this.meta.sync();
    }
    return data.length;
  }

  async flush(ctx: RequestContext, ino: Ino, fh: number, lockOwner: bigint): Promise<void> {
    const handle = this.handle(fh, ino);
    if (!handle.locksLost) await handle.file.flush(this.callers.of(ctx));
    // close(2) drops the POSIX locks this owner holds on the file.
    if (this.heldLocks.forgetOwner(ino, lockOwner)) await this.unlockAll(ino, lockOwner, ctx.pid);
    this.noteKernelVersion(handle.file);
    // Its writes not committed when the locks were lost were dropped: close(2) reports it.
    this.lockedHandle(fh, ino);
  }

  /** Drops every POSIX (or, with `isFlock`, flock) lock `lockOwner` holds on the inode. */
  private async unlockAll(ino: Ino, lockOwner: bigint, pid: number, isFlock = false): Promise<void> {
    const range = { type: 'unlock', start: 0, end: Number.MAX_SAFE_INTEGER, pid } as const;
    await this.meta.setlk(ino, this.lockOwner(lockOwner), range, isFlock);
  }

  async release(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    _flags: number,
    lockOwner: bigint,
    isFlockRelease: boolean,
  ): Promise<void> {
    const handle = this.handle(fh, ino);
    const owners = this.heldLocks.ownersOf(ino, fh);
    const dropping = this.dropLocksAtRelease(ctx, handle, fh, lockOwner, isFlockRelease, owners);
    // Registered before the first await: a lock call the kernel queued after this RELEASE
    // is handled after it (see HeldLocks.noteRelease).
    if (isFlockRelease || owners.length > 0) this.heldLocks.noteRelease(ino, dropping);
    try {
      await dropping;
    } finally {
      this.handles.delete(fh);
      const lastHandle = this.openFiles.release(handle.file);
      if (lastHandle) this.createdWithoutXattrs.delete(ino);
      if (lastHandle && handle.file.registered) {
        const sessionId = this.sessionId;
        await this.meta.release(sessionId, ino).catch(async (err: unknown) => {
          // Ended by the service, which dropped the registration with it; no retry.
          if (!this.sessionEnded(err)) throw err;
          await this.renewSession(sessionId);
        });
      }
    }
  }

  /** Flushes the handle's writes, then drops the flock and OFD locks its last close ends. */
  private async dropLocksAtRelease(
    ctx: RequestContext,
    handle: Handle,
    fh: number,
    lockOwner: bigint,
    isFlockRelease: boolean,
    owners: bigint[],
  ): Promise<void> {
    await handle.file.flush(this.callers.of(ctx));
    if (isFlockRelease) {
      this.heldLocks.forgetFlock(fh);
      await this.unlockAll(handle.ino, lockOwner, ctx.pid, true);
    }
    for (const owner of owners) {
      this.heldLocks.forgetOwner(handle.ino, owner);
      await this.unlockAll(handle.ino, owner, ctx.pid);
    }
  }

  async fsync(ctx: RequestContext, ino: Ino, fh: number, _datasync = false): Promise<void> {
    const file = this.lockedHandle(fh, ino).file;
    await file.flush(this.callers.of(ctx));
    this.committedHere(file);
    // Metadata commits survive a crash of the service but not a power loss until synced.
    await this.meta.sync();
  }

  /** Names created or removed in the directory were committed already; make them durable. */
  async fsyncdir(_ctx: RequestContext, _ino: Ino, _fh: number, _datasync = false): Promise<void> {
    await this.meta.sync();
  }

  // --- locks ---

  private lockOwner(owner: bigint, sessionId = this.sessionId): LockOwner {
    return { sessionId, owner: owner.toString() };
  }

  async getlk(
    _ctx: RequestContext,
    ino: Ino,
    _fh: number,
    lockOwner: bigint,
    lock: FileLock,
  ): Promise<FileLock> {
    const range = toLockRange(lock);
    await this.heldLocks.awaitReleases(ino);
    return fromLockRange(
      await this.withSession((sessionId) =>
        this.meta.getlk(ino, this.lockOwner(lockOwner, sessionId), range),
      ),
    );
  }

  async setlk(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    lockOwner: bigint,
    lock: FileLock,
    sleep: boolean,
    isFlock: boolean,
  ): Promise<void> {
    const range = toLockRange(lock);
    // An unknown handle fails with EBADF; one whose locks were lost takes none (unlocks are fine).
    const handle = range.type === 'unlock' ? this.handle(fh, ino) : this.lockedHandle(fh, ino);
    // What was written under the lock is committed before another mount can take it.
    const shared = this.options.sharedWithOtherMounts === true;
    if (shared && range.type === 'unlock' && !handle.locksLost) {
      await handle.file.flush(this.callers.of(ctx));
      this.committedHere(handle.file);
    }
    await this.heldLocks.awaitReleases(ino);
    await this.withSession(async (sessionId) => {
      const owner = this.lockOwner(lockOwner, sessionId);
      if (sleep && range.type !== 'unlock') {
        await setLockWaiting(this.meta, ino, owner, range, isFlock, ctx.signal, this.options.lockRetryMaxMs);
      } else {
        await this.meta.setlk(ino, owner, range, isFlock);
      }
    });
    this.heldLocks.noteLocked(ino, fh, lockOwner, isFlock, range.type === 'unlock');
    if (shared && range.type !== 'unlock') await this.revalidateLocked(handle.file);
  }

  /**
   * Locks order the writes of several mounts (as on NFS): what another mount committed before
   * it released the lock just taken must show now, not after the attribute timeout or its
   * pushed invalidation. A stale size would put an O_APPEND write over that mount's last
   * record and stale pages would read its old data. The kernel's pages stand for the version
   * last handed to it (at open, or committed here): a file still at it keeps its caches. The
   * VFS's own lists of the file went stale with the attributes noteAttr takes, not here.
   */
  private async revalidateLocked(file: OpenFile): Promise<void> {
    const attr = await this.meta.getattr(file.ino);
    file.noteAttr(attr);
    const version = contentVersion(attr);
    if (file.hasPending || this.cachedVersions.get(file.ino) === version) return;
    this.cachedVersions.set(file.ino, version);
    await this.onStaleInode(file.ino);
  }

  /** This mount committed its writes: the kernel's pages are the file's current version. */
  private committedHere(file: OpenFile): void {
    if (!file.hasPending) this.noteKernelVersion(file);
  }

  /**
   * The kernel's pages of the file stand for its committed version now, unless another mount
   * changed it while this mount's writes were pending: then the next open or lock drops them.
   */
  private noteKernelVersion(file: OpenFile): void {
    // Pages once marked stay so until an open or a lock drops them: a later commit here (the
    // close after an fsync, an unlock) does not make the other mount's bytes appear in them.
    const stale =
      file.takeKernelPagesStale() || this.cachedVersions.get(file.ino) === PAGES_OF_UNKNOWN_VERSION;
    this.cachedVersions.set(file.ino, stale ? PAGES_OF_UNKNOWN_VERSION : contentVersion(file.attr));
  }

  // --- data-map operations ---

  async fallocate(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void> {
    const handle = this.handle(fh, ino);
    const caller = this.callers.of(ctx);
    requireFileEnd(offset + length, 'fallocate');
    await handle.file.flush(caller);
    const attr = await this.meta.fallocate(caller, ino, mode, offset, length);
    this.openFiles.invalidate(ino);
    this.openFiles.noteAttr(attr);
  }

  async lseek(_ctx: RequestContext, ino: Ino, fh: number, offset: number, whence: number): Promise<number> {
    return seekOpenFile(this.handle(fh, ino).file, this.meta, this.volume.chunkSizeBytes, offset, whence);
  }

  async copyFileRange(
    ctx: RequestContext,
    inoIn: Ino,
    fhIn: number,
    offsetIn: number,
    inoOut: Ino,
    fhOut: number,
    offsetOut: number,
    length: number,
  ): Promise<number> {
    const caller: Caller = this.callers.of(ctx);
    const source = this.handle(fhIn, inoIn);
    const target = this.handle(fhOut, inoOut);
    requireFileEnd(offsetOut + length, 'copy_file_range');
    // Reference copies see only committed slices: land both files' pending writes first.
    await source.file.flush(caller);
    await target.file.flush(caller);
    const { copiedBytes, attr } = await this.meta.copyFileRange(
      caller,
      inoIn,
      offsetIn,
      inoOut,
      offsetOut,
      length,
    );
    this.openFiles.invalidate(inoOut);
    this.openFiles.noteAttr(attr);
    return copiedBytes;
  }
}
