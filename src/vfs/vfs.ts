import { hostname } from 'node:os';
import { constants as fsConstants } from 'node:fs';
import { Errno, fsError, isFsError, type Ino } from '../common/index.js';
import {
  direntTypeOfMode,
  WriteFlags,
  type AttrReply,
  type CreateReply,
  type DirEntryOut,
  type Entry,
  type FileLock,
  type FileSystem,
  type NegativeEntry,
  type OpenReply,
  type RequestContext,
  type SetAttrIn,
  type StatFs,
} from '../fuse/index.js';
import type { Caller, InodeAttr, LockOwner, MetaApi, SetAttrChanges, VolumeSettings } from '../meta/api.js';
import { RENAME_EXCHANGE } from '../meta/api.js';
import { ACL_ACCESS_XATTR, isMinimalAcl, modeBitsOfAcl } from './acl-mode.js';
import { contentVersion, isRegular, toFuseAttr } from './attr.js';
import { CallerResolver } from './caller.js';
import { foreignChownRefusal } from './foreign-chown.js';
import { fromLockRange, setLockWaiting, toLockRange } from './locks.js';
import type { VfsOptions } from './options.js';
import { OpenDirs } from './open-dirs.js';
import { SpecialNodes } from './special-nodes.js';
import { OpenFiles, type OpenFile } from './open-files.js';
import { seekOpenFile } from './seek.js';
import type { DataPath } from '../data/index.js';

const { O_TRUNC, O_APPEND, O_DIRECT, O_SYNC, O_DSYNC, O_EXCL, O_RDONLY, O_WRONLY, R_OK, W_OK } = fsConstants;
/** The access-mode bits of open flags (Linux; not in node's fs.constants). */
const O_ACCMODE = 3;

/** One open(2) of a file: the kernel's `fh` names it. */
interface Handle {
  ino: Ino;
  flags: number;
  file: OpenFile;
}

const READDIR_BATCH = 128;
const READDIRPLUS_BATCH = 32;
const STATFS_BLOCK_BYTES = 4096;

/**
 * The POSIX file system of a mount: the FUSE layer's `FileSystem` over the metadata
 * service (`MetaApi`) and the data path. Namespace operations go straight to the metadata
 * service; file data goes through per-inode open-file state that buffers writes and
 * commits them on flush/fsync/close (close-to-open consistency between mounts).
 */
export class Vfs implements FileSystem {
  private sessionIdValue: string | null = null;
  private volumeSettings: VolumeSettings | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly handles = new Map<number, Handle>();
  /**
   * Per inode, the lock owners that took POSIX or OFD locks on it and the handles they
   * locked through. Per inode: a close of any descriptor of the file drops the process's
   * locks, even ones taken through another (flush). The handles: an OFD lock's owner is
   * its open file, whose last close the kernel reports only as that handle's release.
   */
  private readonly lockOwnersByIno = new Map<Ino, Map<bigint, Set<number>>>();
  private nextFh = 1;
  private readonly openFiles: OpenFiles;
  private readonly openDirs: OpenDirs;
  private readonly specialNodes = new SpecialNodes();
  private readonly callers = new CallerResolver();
  /** Content version last handed to the kernel per inode: unchanged on open means keep the page cache. */
  private readonly cachedVersions = new Map<Ino, string>();
  /** O_TMPFILE files made here without O_EXCL and not named yet: linkat gives them a first name. */
  private readonly linkableTmpfiles = new Set<Ino>();
  /**
   * Tells the kernel to drop what it caches of an inode (attributes, pages). Set by the
   * composition root once the FUSE session exists; an open that finds the file changed by
   * another mount uses it, because the kernel would otherwise trust a stale size until the
   * attribute timeout.
   */
  onStaleInode: (ino: Ino) => void = () => undefined;

  constructor(
    private readonly meta: MetaApi,
    private readonly data: DataPath,
    private readonly options: VfsOptions,
  ) {
    this.openFiles = new OpenFiles(meta, data, options);
    this.openDirs = new OpenDirs(meta);
  }

  /**
   * The metadata server says other mounts changed these inodes (`all`: it cannot tell which).
   * Files open here stop trusting where their data lived: a program that takes a lock after the
   * other mount's write and reads through a descriptor it kept open (SQLite) must see the write.
   */
  changedElsewhere(inos: readonly Ino[], all: boolean): void {
    if (all) this.openFiles.changedElsewhereAll();
    else for (const ino of inos) this.openFiles.changedElsewhere(ino);
  }

  /** Registers this mount with the metadata service and starts the heartbeat. */
  async start(): Promise<VolumeSettings> {
    const { sessionId, volume } = await this.meta.openSession({
      hostname: hostname(),
      mountpoint: this.options.mountpoint,
      pid: process.pid,
      version: this.options.version,
    });
    this.sessionIdValue = sessionId;
    this.volumeSettings = volume;
    this.openFiles.setVolume(volume);
    this.heartbeatTimer = setInterval(() => {
      this.meta.heartbeat(sessionId).catch((err: unknown) => {
        this.options.log(`session heartbeat failed: ${(err as Error).message}; will retry`);
      });
    }, this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    return volume;
  }

  /** Commits everything still pending and closes the session. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.openFiles.flushAll();
    const sessionId = this.sessionIdValue;
    this.sessionIdValue = null;
    if (sessionId !== null) await this.meta.closeSession(sessionId);
  }

  get volume(): VolumeSettings {
    if (this.volumeSettings === null) throw fsError.EIO('the VFS was used before start()');
    return this.volumeSettings;
  }

  private get sessionId(): string {
    if (this.sessionIdValue === null) throw fsError.ENOTCONN('the mount has no metadata session');
    return this.sessionIdValue;
  }

  async destroy(): Promise<void> {
    await this.openFiles.flushAll();
  }

  async forget(ino: Ino): Promise<void> {
    this.cachedVersions.delete(ino);
    this.linkableTmpfiles.delete(ino);
    this.specialNodes.forget(ino);
  }

  // --- attributes ---

  private entry(attr: InodeAttr): Entry {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      generation: attr.generation,
      entryTimeoutMs: this.options.entryTimeoutMs,
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }

  private attrReply(attr: InodeAttr): AttrReply {
    this.specialNodes.note(attr);
    return {
      attr: toFuseAttr(this.openFiles.withPending(attr)),
      attrTimeoutMs: this.options.attrTimeoutMs,
    };
  }

  async lookup(ctx: RequestContext, parent: Ino, name: string): Promise<Entry | NegativeEntry> {
    try {
      return this.entry(await this.meta.lookup(this.callers.of(ctx), parent, name));
    } catch (err) {
      if (isFsError(err) && err.errno === Errno.ENOENT && this.options.entryTimeoutMs > 0) {
        return { negative: true, entryTimeoutMs: this.options.entryTimeoutMs };
      }
      throw err;
    }
  }

  async getattr(_ctx: RequestContext, ino: Ino): Promise<AttrReply> {
    let attr: InodeAttr;
    try {
      attr = await this.meta.getattr(ino);
    } catch (err) {
      const removed =
        isFsError(err) && err.errno === Errno.ENOENT
          ? (this.openDirs.removedAttr(ino) ?? this.specialNodes.removedAttr(ino))
          : undefined;
      if (removed === undefined) throw err;
      return this.attrReply(removed);
    }
    this.openFiles.noteAttr(attr);
    return this.attrReply(attr);
  }

  async setattr(ctx: RequestContext, ino: Ino, changes: SetAttrIn): Promise<AttrReply> {
    const caller = this.callers.of(ctx);
    if (caller.uid !== 0 && isEmptySetattr(changes)) await this.refuseForeignChown(caller, ino);
    const metaChanges: SetAttrChanges = {};
    if (changes.mode !== undefined) metaChanges.mode = changes.mode;
    if (changes.uid !== undefined) metaChanges.uid = changes.uid;
    if (changes.gid !== undefined) metaChanges.gid = changes.gid;
    if (changes.atime !== undefined) metaChanges.atime = changes.atime;
    if (changes.mtime !== undefined) metaChanges.mtime = changes.mtime;
    if (changes.ctime !== undefined) metaChanges.ctime = changes.ctime;
    if (changes.killSuidgid) metaChanges.killSuid = true;
    if (changes.sizeBytes !== undefined) metaChanges.sizeBytes = changes.sizeBytes;
    let setting: Promise<InodeAttr> | undefined;
    const set = (): Promise<InodeAttr> => (setting = this.meta.setattr(caller, ino, metaChanges));
    if (changes.sizeBytes !== undefined || changes.mtime !== undefined) {
      // Pending writes land first, so a truncate cuts them like it cuts committed data and an
      // explicit mtime (utimes after a write) is not overwritten by their later commit. Setting
      // only times to an explicit instant (tar's futimens before close) cannot conflict with
      // writes committed at that same mtime: it joins their metadata batch (see flush).
      const mtime = changes.mtime;
      const timesOnly =
        typeof mtime === 'object' &&
        changes.sizeBytes === undefined &&
        changes.mode === undefined &&
        changes.uid === undefined &&
        changes.gid === undefined &&
        !changes.killSuidgid;
      await this.openFiles.flush(ino, caller, timesOnly ? { start: set, mtime } : undefined);
    }
    const attr = await (setting ?? set());
    if (changes.sizeBytes !== undefined) this.openFiles.invalidate(ino);
    this.openFiles.noteAttr(attr);
    return this.attrReply(attr);
  }

  /** An empty SETATTR may be a chown(-1, -1) that Linux refuses: see foreignChownRefusal. */
  private async refuseForeignChown(caller: Caller, ino: Ino): Promise<void> {
    const refusal = foreignChownRefusal(caller, await this.meta.getattr(ino));
    if (refusal !== undefined) throw fsError.EPERM(refusal);
  }

  // --- namespace ---

  async readlink(_ctx: RequestContext, ino: Ino): Promise<string> {
    return this.meta.readlink(ino);
  }

  async symlink(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<Entry> {
    return this.entry(await this.meta.symlink(this.callers.of(ctx), parent, name, target));
  }

  async mknod(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number): Promise<Entry> {
    return this.entry(await this.meta.mknod(this.callers.of(ctx), parent, name, mode, rdev, ctx.umask));
  }

  async mkdir(ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry> {
    return this.entry(await this.meta.mkdir(this.callers.of(ctx), parent, name, mode, ctx.umask));
  }

  async unlink(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const caller = this.callers.of(ctx);
    await this.protectOpenFile(caller, parent, name);
    await this.meta.unlink(caller, parent, name);
  }

  async rmdir(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const caller = this.callers.of(ctx);
    const openDir = await this.openDirs.victim(caller, parent, name);
    await this.meta.rmdir(caller, parent, name);
    this.openDirs.removed(openDir);
  }

  async rename(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    const caller = this.callers.of(ctx);
    await this.protectOpenFile(caller, newParent, newName);
    const openDir =
      flags & RENAME_EXCHANGE ? undefined : await this.openDirs.victim(caller, newParent, newName);
    await this.meta.rename(caller, parent, name, newParent, newName, flags);
    this.openDirs.removed(openDir);
  }

  async link(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<Entry> {
    if (!this.linkableTmpfiles.has(ino)) {
      return this.entry(await this.meta.link(this.callers.of(ctx), ino, newParent, newName));
    }
    const attr = await this.meta.linkTmpfile(this.callers.of(ctx), ino, newParent, newName);
    this.linkableTmpfiles.delete(ino);
    return this.entry(attr);
  }

  // --- open files ---

  async open(ctx: RequestContext, ino: Ino, flags: number, killSuidgid = false): Promise<OpenReply> {
    const caller = this.callers.of(ctx);
    // Close-to-open: the open asks the metadata service, so another mount's closed writes are
    // seen. A read, not an open registration: see protectOpenFile for why that can wait.
    let attr = await this.meta.getattr(ino);
    // Linux truncates on O_TRUNC whatever the access mode (O_RDONLY|O_TRUNC included): the
    // kernel has already checked write permission for it (build_open_flags adds MAY_WRITE).
    if (flags & O_TRUNC && isRegular(attr.mode)) {
      await this.openFiles.flush(ino, caller);
      attr = await this.meta.setattr(caller, ino, { sizeBytes: 0, killSuid: killSuidgid || undefined });
      this.openFiles.invalidate(ino);
    }
    return this.newHandle(ino, flags, attr);
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
    const attr = await this.meta.tmpfile(this.callers.of(ctx), this.sessionId, parent, mode, ctx.umask);
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
  private async protectOpenFile(caller: Caller, parent: Ino, name: string): Promise<void> {
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
    await this.meta.open(caller, this.sessionId, ino, 0);
  }

  private newHandle(ino: Ino, flags: number, attr: InodeAttr): OpenReply {
    const file = this.openFiles.acquire(attr);
    const fh = this.nextFh++;
    this.handles.set(fh, { ino, flags, file });
    const version = contentVersion(attr);
    const cached = this.cachedVersions.get(ino);
    const keepCache = !file.hasPending && cached === version;
    if (cached !== undefined && cached !== version && !file.hasPending) this.onStaleInode(ino);
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

  async read(_ctx: RequestContext, ino: Ino, fh: number, offset: number, size: number): Promise<Buffer> {
    return this.handle(fh, ino).file.read(offset, size);
  }

  async write(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    data: Buffer,
    flags: number,
  ): Promise<number> {
    const handle = this.handle(fh, ino);
    const file = handle.file;
    if (flags & WriteFlags.KILL_SUIDGID && file.attr.mode & 0o6000) {
      file.noteAttr(await this.meta.setattr(this.callers.of(ctx), ino, { killSuid: true }));
    }
    // O_APPEND: the kernel's idea of the size may be stale when another mount appended.
    // Not for page-cache writeback (WRITE_CACHE: dirty pages of a shared mapping, which
    // the kernel may send through any writable handle): those belong at their own offset.
    const append = (handle.flags & O_APPEND) !== 0 && (flags & WriteFlags.CACHE) === 0;
    const at = append ? Math.max(offset, file.sizeBytes) : offset;
    await file.write(at, data, this.callers.of(ctx));
    if (handle.flags & (O_SYNC | O_DSYNC)) {
      await file.flush(this.callers.of(ctx));
      await this.meta.sync();
    }
    return data.length;
  }

  async flush(ctx: RequestContext, ino: Ino, fh: number, lockOwner: bigint): Promise<void> {
    const handle = this.handle(fh, ino);
    await handle.file.flush(this.callers.of(ctx));
    // close(2) drops the POSIX locks this owner holds on the file.
    if (this.forgetLockOwner(ino, lockOwner)) await this.unlockAll(ino, lockOwner, ctx.pid);
    this.cachedVersions.set(ino, contentVersion(handle.file.attr));
  }

  /** Whether `lockOwner` took POSIX or OFD locks on the inode; it is forgotten. */
  private forgetLockOwner(ino: Ino, lockOwner: bigint): boolean {
    const owners = this.lockOwnersByIno.get(ino);
    if (!owners?.delete(lockOwner)) return false;
    if (owners.size === 0) this.lockOwnersByIno.delete(ino);
    return true;
  }

  private async unlockAll(ino: Ino, lockOwner: bigint, pid: number): Promise<void> {
    const range = { type: 'unlock', start: 0, end: Number.MAX_SAFE_INTEGER, pid } as const;
    await this.meta.setlk(ino, this.lockOwner(lockOwner), range, false);
  }

  /**
   * Owners still holding locks taken through a handle at its release. A process's own
   * close flushed (and forgot) it first, so these are OFD locks, owned by this open file.
   */
  private lockOwnersOf(ino: Ino, fh: number): bigint[] {
    const owners = this.lockOwnersByIno.get(ino);
    if (owners === undefined) return [];
    return [...owners].filter(([, handles]) => handles.has(fh)).map(([owner]) => owner);
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
    try {
      await handle.file.flush(this.callers.of(ctx));
      if (isFlockRelease) {
        await this.meta.setlk(
          ino,
          this.lockOwner(lockOwner),
          { type: 'unlock', start: 0, end: Number.MAX_SAFE_INTEGER, pid: ctx.pid },
          true,
        );
      }
      for (const owner of this.lockOwnersOf(ino, fh)) {
        this.forgetLockOwner(ino, owner);
        await this.unlockAll(ino, owner, ctx.pid);
      }
    } finally {
      this.handles.delete(fh);
      if (this.openFiles.release(handle.file) && handle.file.registered) {
        await this.meta.release(this.sessionId, ino);
      }
    }
  }

  async fsync(ctx: RequestContext, ino: Ino, fh: number, _datasync = false): Promise<void> {
    await this.handle(fh, ino).file.flush(this.callers.of(ctx));
    // Metadata commits survive a crash of the service but not a power loss until synced.
    await this.meta.sync();
  }

  /** Names created or removed in the directory were committed already; make them durable. */
  async fsyncdir(_ctx: RequestContext, _ino: Ino, _fh: number, _datasync = false): Promise<void> {
    await this.meta.sync();
  }

  // --- directories ---

  async opendir(_ctx: RequestContext, ino: Ino, _flags: number): Promise<OpenReply> {
    this.openDirs.opened(ino);
    return { fh: 0 };
  }

  async releasedir(_ctx: RequestContext, ino: Ino, _fh: number): Promise<void> {
    this.openDirs.released(ino);
  }

  async readdir(
    ctx: RequestContext,
    ino: Ino,
    _fh: number,
    offset: number,
    plus: boolean,
  ): Promise<DirEntryOut[]> {
    const caller = this.callers.of(ctx);
    const limit = plus ? READDIRPLUS_BATCH : READDIR_BATCH;
    const entries = await this.meta.readdir(caller, ino, offset, limit, plus);
    return entries.map((e) => {
      const out: DirEntryOut = {
        name: e.name,
        ino: e.ino,
        type: direntTypeOfMode(e.type),
        nextOffset: e.cursor,
      };
      if (plus && e.attr !== undefined && e.name !== '.' && e.name !== '..') out.entry = this.entry(e.attr);
      return out;
    });
  }

  // --- volume ---

  async statfs(): Promise<StatFs> {
    const info = await this.meta.statfs();
    const blocks = Math.floor(info.capacityBytes / STATFS_BLOCK_BYTES);
    const free = Math.max(0, blocks - Math.ceil(info.usedBytes / STATFS_BLOCK_BYTES));
    return {
      blocks,
      blocksFree: free,
      blocksAvailable: free,
      files: info.inodesTotal,
      filesFree: Math.max(0, info.inodesTotal - info.inodesUsed),
      blockSizeBytes: STATFS_BLOCK_BYTES,
      nameMaxBytes: 255,
      fragmentSizeBytes: STATFS_BLOCK_BYTES,
    };
  }

  // --- extended attributes (POSIX ACLs are stored as the system.posix_acl_* xattrs) ---

  async setxattr(ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    // The value is a view into the request buffer; the metadata call may outlive it (RPC queues).
    const copy = Buffer.from(value);
    const caller = this.callers.of(ctx);
    if (name === ACL_ACCESS_XATTR && isMinimalAcl(copy)) {
      // Only the mode changes (the owner-only chmod rules apply); an ACL the inode had goes.
      const attr = await this.meta.getattr(ino);
      const mode = (attr.mode & ~0o777) | (modeBitsOfAcl(copy) ?? 0);
      this.openFiles.noteAttr(await this.meta.setattr(caller, ino, { mode }));
      await this.meta.removexattr(caller, ino, name).catch((err: unknown) => {
        if (!isFsError(err) || err.errno !== Errno.ENODATA) throw err;
      });
      return;
    }
    await this.meta.setxattr(caller, ino, name, copy, flags);
    const bits = name === ACL_ACCESS_XATTR ? modeBitsOfAcl(copy) : null;
    if (bits !== null) {
      const attr = await this.meta.getattr(ino);
      if ((attr.mode & 0o777) !== bits) {
        this.openFiles.noteAttr(await this.meta.setattr(caller, ino, { mode: (attr.mode & ~0o777) | bits }));
      }
    }
  }

  async getxattr(_ctx: RequestContext, ino: Ino, name: string): Promise<Buffer> {
    return this.meta.getxattr(ino, name);
  }

  async listxattr(ctx: RequestContext, ino: Ino): Promise<string[]> {
    const names = await this.meta.listxattr(ino);
    // The kernel hides trusted.* from callers without CAP_SYS_ADMIN only for file systems
    // that list through its xattr handlers; FUSE passes the list through, so filter here
    // (uid 0 stands in for the capability, as everywhere in StrataFS).
    return ctx.uid === 0 ? names : names.filter((name) => !name.startsWith('trusted.'));
  }

  async removexattr(ctx: RequestContext, ino: Ino, name: string): Promise<void> {
    await this.meta.removexattr(this.callers.of(ctx), ino, name);
  }

  async access(ctx: RequestContext, ino: Ino, mask: number): Promise<void> {
    await this.meta.access(this.callers.of(ctx), ino, mask);
  }

  // --- locks ---

  private lockOwner(owner: bigint): LockOwner {
    return { sessionId: this.sessionId, owner: owner.toString() };
  }

  async getlk(
    _ctx: RequestContext,
    ino: Ino,
    _fh: number,
    lockOwner: bigint,
    lock: FileLock,
  ): Promise<FileLock> {
    return fromLockRange(await this.meta.getlk(ino, this.lockOwner(lockOwner), toLockRange(lock)));
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
    this.handle(fh, ino); // an unknown handle fails with EBADF
    const range = toLockRange(lock);
    const owner = this.lockOwner(lockOwner);
    if (sleep && range.type !== 'unlock') {
      await setLockWaiting(this.meta, ino, owner, range, isFlock, ctx.signal, this.options.lockRetryMaxMs);
    } else {
      await this.meta.setlk(ino, owner, range, isFlock);
    }
    if (!isFlock && range.type !== 'unlock') {
      let owners = this.lockOwnersByIno.get(ino);
      if (owners === undefined) this.lockOwnersByIno.set(ino, (owners = new Map()));
      let handles = owners.get(lockOwner);
      if (handles === undefined) owners.set(lockOwner, (handles = new Set()));
      handles.add(fh);
    }
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

/** chown(-1, -1) and file_remove_privs() both arrive as a SETATTR that changes nothing. */
function isEmptySetattr(changes: SetAttrIn): boolean {
  return (
    changes.mode === undefined &&
    changes.uid === undefined &&
    changes.gid === undefined &&
    changes.sizeBytes === undefined &&
    changes.atime === undefined &&
    changes.mtime === undefined &&
    !changes.killSuidgid
  );
}
