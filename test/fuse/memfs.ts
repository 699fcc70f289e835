import { constants } from 'node:fs';
import { Errno, FsError, fsError, type Ino } from '../../src/common/index.js';
import {
  direntTypeOfMode,
  RenameFlags,
  SeekWhence,
  WriteFlags,
  type AttrReply,
  type CreateReply,
  type DirEntryOut,
  type Entry,
  type FileLock,
  type FileSystem,
  type FuseAttr,
  type NegativeEntry,
  type OpenReply,
  type RequestContext,
  type SetAttrIn,
  type StatFs,
} from '../../src/fuse/index.js';
import { LockTable } from './memfs-locks.js';

// A test-only in-memory file system behind the FUSE FileSystem interface: enough POSIX
// for coreutils, tar, xattrs, locks, rename exchange and sparse files beyond 4 GiB.
// File data lives in fixed-size blocks so that holes cost nothing.

/** 1 MiB: a 128 KiB readahead or a 1 MiB direct read usually falls in one block and is served without a copy. */
const BLOCK_BYTES = 1024 * 1024;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
/** Stands for the lock table of an inode that never had one: testing it finds no conflict. */
const noLocks = new LockTable();

interface Inode {
  ino: Ino;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  nlink: number;
  sizeBytes: number;
  atime: [number, number];
  mtime: [number, number];
  ctime: [number, number];
  blocks: Map<number, Buffer>;
  target: string;
  children: Map<string, Ino> | undefined;
  parent: Ino;
  // Made on first use, like `locks`: most files never get either, and each create then
  // allocates two hash tables fewer (less for the GC to copy in bench/fuse).
  xattrs: Map<string, Buffer> | undefined;
  locks: LockTable | undefined;
  openCount: number;
  forgotten: boolean;
}

interface Handle {
  ino: Ino;
  flags: number;
  /** Directory listing taken at opendir (or rewind), so offsets stay stable. */
  listing?: DirEntryOut[];
}

export interface MemFsOptions {
  entryTimeoutMs?: number;
  attrTimeoutMs?: number;
  /** Open files with FOPEN_DIRECT_IO. */
  directIo?: boolean;
  /**
   * POSIX and flock locks kept here (default true). Without them MemFs has no `getlk`,
   * `setlk` nor `flush` (which only drops locks): the kernel keeps locks locally and stops
   * sending FLUSH, as for bindfs (libfuse without lock or flush handlers) in bench/fuse.
   */
  locks?: boolean;
}

function now(): [number, number] {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
}

export class MemFs implements FileSystem {
  readonly inodes = new Map<number, Inode>();
  /** Inodes the FUSE layer reported forgotten, in order: lets tests watch lookup counting. */
  readonly forgottenInos: number[] = [];
  private readonly handles = new Map<number, Handle>();
  private nextIno = 2;
  private nextFh = 1;
  private readonly entryTimeoutMs: number;
  private readonly attrTimeoutMs: number;
  private readonly directIo: boolean;
  // Own properties rather than methods, so that `locks: false` can leave them out.
  readonly flush: FileSystem['flush'];
  readonly getlk: FileSystem['getlk'];
  readonly setlk: FileSystem['setlk'];

  constructor(options: MemFsOptions = {}) {
    this.entryTimeoutMs = options.entryTimeoutMs ?? 1000;
    this.attrTimeoutMs = options.attrTimeoutMs ?? 1000;
    this.directIo = options.directIo ?? false;
    const locks = options.locks ?? true;
    this.flush = locks ? this.dropLocksOnClose.bind(this) : undefined;
    this.getlk = locks ? this.testLock.bind(this) : undefined;
    this.setlk = locks ? this.setLock.bind(this) : undefined;
    const root = this.newInode(S_IFDIR | 0o755, 0, 0);
    root.ino = 1 as Ino;
    root.parent = 1 as Ino;
    root.nlink = 2;
    this.inodes.clear();
    this.inodes.set(1, root);
  }

  private newInode(mode: number, uid: number, gid: number): Inode {
    const t = now();
    const inode: Inode = {
      ino: this.nextIno++ as Ino,
      mode,
      uid,
      gid,
      rdev: 0,
      nlink: 1,
      sizeBytes: 0,
      atime: t,
      mtime: t,
      ctime: t,
      blocks: new Map(),
      target: '',
      children: (mode & S_IFMT) === S_IFDIR ? new Map() : undefined,
      parent: 1 as Ino,
      xattrs: undefined,
      locks: undefined,
      openCount: 0,
      forgotten: false,
    };
    this.inodes.set(inode.ino, inode);
    return inode;
  }

  private get(ino: Ino): Inode {
    const inode = this.inodes.get(ino);
    if (!inode) throw fsError.ESTALE(`inode ${ino} no longer exists`);
    return inode;
  }

  private dir(ino: Ino): Map<string, Ino> {
    const children = this.get(ino).children;
    if (!children) throw fsError.ENOTDIR(`inode ${ino} is not a directory`);
    return children;
  }

  private attr(inode: Inode): FuseAttr {
    let allocated = 0;
    for (const block of inode.blocks.values()) allocated += block.length;
    return {
      ino: inode.ino,
      sizeBytes: (inode.mode & S_IFMT) === S_IFLNK ? Buffer.byteLength(inode.target) : inode.sizeBytes,
      blocks: Math.ceil(allocated / 512),
      atimeSec: inode.atime[0],
      atimeNsec: inode.atime[1],
      mtimeSec: inode.mtime[0],
      mtimeNsec: inode.mtime[1],
      ctimeSec: inode.ctime[0],
      ctimeNsec: inode.ctime[1],
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      rdev: inode.rdev,
      blksize: BLOCK_BYTES,
    };
  }

  private entry(inode: Inode): Entry {
    return {
      attr: this.attr(inode),
      generation: 0,
      entryTimeoutMs: this.entryTimeoutMs,
      attrTimeoutMs: this.attrTimeoutMs,
    };
  }

  private attrReply(inode: Inode): AttrReply {
    return { attr: this.attr(inode), attrTimeoutMs: this.attrTimeoutMs };
  }

  /** Drops an inode once it has no names, no open files and the kernel forgot it. */
  private maybeFree(inode: Inode): void {
    if (inode.nlink === 0 && inode.openCount === 0 && inode.forgotten) this.inodes.delete(inode.ino);
  }

  private addChild(ctx: RequestContext, parent: Ino, name: string, mode: number): Inode {
    const children = this.dir(parent);
    if (Buffer.byteLength(name) > 255) throw fsError.ENAMETOOLONG(`name of ${Buffer.byteLength(name)} bytes`);
    if (children.has(name)) throw fsError.EEXIST(`"${name}" already exists in directory ${parent}`);
    const parentInode = this.get(parent);
    // The kernel leaves the umask to us since POSIX ACLs are negotiated.
    const masked = (mode & S_IFMT) === S_IFLNK ? mode : mode & ~(ctx.umask & 0o777);
    const gid = parentInode.mode & S_ISGID ? parentInode.gid : ctx.gid;
    const inode = this.newInode(masked, ctx.uid, gid);
    if ((mode & S_IFMT) === S_IFDIR) {
      inode.nlink = 2;
      inode.parent = parent;
      if (parentInode.mode & S_ISGID) inode.mode |= S_ISGID;
      parentInode.nlink++;
    }
    children.set(name, inode.ino);
    parentInode.mtime = parentInode.ctime = now();
    return inode;
  }

  async lookup(_ctx: RequestContext, parent: Ino, name: string): Promise<Entry | NegativeEntry> {
    const parentInode = this.get(parent);
    if (name === '.') return this.entry(parentInode);
    if (name === '..') return this.entry(this.get(parentInode.parent));
    const ino = this.dir(parent).get(name);
    // Every create starts with a failed lookup: answer it without building an exception,
    // and with timeout 0 so the kernel does not cache the absence.
    if (ino === undefined) return { negative: true, entryTimeoutMs: 0 };
    return this.entry(this.get(ino));
  }

  /** For tests: the entry of an existing name (ENOENT otherwise). */
  async lookupEntry(ctx: RequestContext, parent: Ino, name: string): Promise<Entry> {
    const entry = await this.lookup(ctx, parent, name);
    if ('negative' in entry) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
    return entry;
  }

  async forget(ino: Ino): Promise<void> {
    this.forgottenInos.push(ino);
    const inode = this.inodes.get(ino);
    if (!inode) return;
    inode.forgotten = true;
    this.maybeFree(inode);
  }

  async getattr(_ctx: RequestContext, ino: Ino): Promise<AttrReply> {
    return this.attrReply(this.get(ino));
  }

  async setattr(ctx: RequestContext, ino: Ino, changes: SetAttrIn): Promise<AttrReply> {
    const inode = this.get(ino);
    const t = now();
    // chown(-1, -1) arrives as a change of nothing; Linux clears the set-id bits of a
    // non-directory on every chown by its owner or root, even that one.
    const empty = Object.values({ ...changes, fh: undefined, lockOwner: undefined }).every((v) => !v);
    if (empty && !inode.children && (ctx.uid === 0 || ctx.uid === inode.uid)) this.killSuidgid(inode);
    if (changes.mode !== undefined) inode.mode = (inode.mode & S_IFMT) | (changes.mode & 0o7777);
    if (changes.uid !== undefined) inode.uid = changes.uid;
    if (changes.gid !== undefined) inode.gid = changes.gid;
    if (changes.sizeBytes !== undefined) {
      if ((inode.mode & S_IFMT) !== S_IFREG)
        throw fsError.EINVAL(`truncate of inode ${ino}: not a regular file`);
      this.truncate(inode, changes.sizeBytes);
      inode.mtime = t;
    }
    if (changes.killSuidgid) this.killSuidgid(inode);
    if (changes.atime !== undefined)
      inode.atime = changes.atime === 'now' ? t : [changes.atime.sec, changes.atime.nsec];
    if (changes.mtime !== undefined)
      inode.mtime = changes.mtime === 'now' ? t : [changes.mtime.sec, changes.mtime.nsec];
    inode.ctime = changes.ctime ? [changes.ctime.sec, changes.ctime.nsec] : t;
    return this.attrReply(inode);
  }

  private killSuidgid(inode: Inode): void {
    inode.mode &= ~S_ISUID;
    // setgid without group execute means mandatory locking, not privilege: keep it.
    if (inode.mode & 0o010) inode.mode &= ~S_ISGID;
  }

  private truncate(inode: Inode, sizeBytes: number): void {
    if (sizeBytes < inode.sizeBytes) {
      for (const index of inode.blocks.keys()) {
        const start = index * BLOCK_BYTES;
        if (start >= sizeBytes) inode.blocks.delete(index);
        else if (start + BLOCK_BYTES > sizeBytes) inode.blocks.get(index)?.fill(0, sizeBytes - start);
      }
    }
    inode.sizeBytes = sizeBytes;
  }

  async readlink(_ctx: RequestContext, ino: Ino): Promise<string> {
    const inode = this.get(ino);
    if ((inode.mode & S_IFMT) !== S_IFLNK) throw fsError.EINVAL(`inode ${ino} is not a symbolic link`);
    return inode.target;
  }

  async symlink(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<Entry> {
    const inode = this.addChild(ctx, parent, name, S_IFLNK | 0o777);
    inode.target = target;
    return this.entry(inode);
  }

  async mknod(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number): Promise<Entry> {
    const inode = this.addChild(ctx, parent, name, mode);
    inode.rdev = rdev;
    return this.entry(inode);
  }

  async mkdir(ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry> {
    return this.entry(this.addChild(ctx, parent, name, S_IFDIR | (mode & 0o7777)));
  }

  private dropName(parent: Ino, name: string): void {
    const children = this.dir(parent);
    const ino = children.get(name);
    if (ino === undefined) return;
    const inode = this.get(ino);
    children.delete(name);
    const parentInode = this.get(parent);
    parentInode.mtime = parentInode.ctime = now();
    if (inode.children) {
      inode.nlink = 0;
      parentInode.nlink--;
    } else {
      inode.nlink--;
      inode.ctime = now();
    }
    this.maybeFree(inode);
  }

  async unlink(_ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const ino = this.dir(parent).get(name);
    if (ino === undefined) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
    if (this.get(ino).children) throw fsError.EISDIR(`"${name}" is a directory; use rmdir`);
    this.dropName(parent, name);
  }

  async rmdir(_ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const ino = this.dir(parent).get(name);
    if (ino === undefined) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
    const children = this.get(ino).children;
    if (!children) throw fsError.ENOTDIR(`"${name}" is not a directory`);
    if (children.size > 0) throw fsError.ENOTEMPTY(`directory "${name}" is not empty`);
    this.dropName(parent, name);
  }

  async rename(
    _ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ino = from.get(name);
    if (ino === undefined) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
    const existing = to.get(newName);
    const inode = this.get(ino);
    const t = now();
    if (flags & RenameFlags.EXCHANGE) {
      if (existing === undefined)
        throw fsError.ENOENT(`rename exchange: no entry "${newName}" in directory ${newParent}`);
      const other = this.get(existing);
      from.set(name, existing);
      to.set(newName, ino);
      if (inode.children && parent !== newParent) this.moveDirLink(inode, parent, newParent);
      if (other.children && parent !== newParent) this.moveDirLink(other, newParent, parent);
      inode.ctime = other.ctime = t;
    } else {
      if (existing === ino) return;
      if (existing !== undefined) {
        if (flags & RenameFlags.NOREPLACE) throw fsError.EEXIST(`"${newName}" exists (RENAME_NOREPLACE)`);
        const target = this.get(existing);
        if (target.children) {
          if (!inode.children)
            throw fsError.EISDIR(`cannot rename a non-directory over directory "${newName}"`);
          if (target.children.size > 0) throw fsError.ENOTEMPTY(`directory "${newName}" is not empty`);
        } else if (inode.children) {
          throw fsError.ENOTDIR(`cannot rename a directory over non-directory "${newName}"`);
        }
        this.dropName(newParent, newName);
      }
      from.delete(name);
      to.set(newName, ino);
      if (inode.children && parent !== newParent) this.moveDirLink(inode, parent, newParent);
      inode.ctime = t;
    }
    const parentInode = this.get(parent);
    const newParentInode = this.get(newParent);
    parentInode.mtime = parentInode.ctime = newParentInode.mtime = newParentInode.ctime = t;
  }

  private moveDirLink(dir: Inode, oldParent: Ino, newParent: Ino): void {
    dir.parent = newParent;
    this.get(oldParent).nlink--;
    this.get(newParent).nlink++;
  }

  async link(_ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<Entry> {
    const inode = this.get(ino);
    if (inode.children) throw fsError.EPERM('hard links to directories are not allowed');
    const to = this.dir(newParent);
    if (to.has(newName)) throw fsError.EEXIST(`"${newName}" already exists in directory ${newParent}`);
    to.set(newName, ino);
    inode.nlink++;
    const t = now();
    const parent = this.get(newParent);
    inode.ctime = parent.mtime = parent.ctime = t;
    return this.entry(inode);
  }

  /** Entry and open handle in one literal: a spread of the two builds a slow object per create. */
  private createReply(inode: Inode, flags: number): CreateReply {
    const { fh, directIo } = this.openHandle(inode, flags);
    return {
      attr: this.attr(inode),
      generation: 0,
      entryTimeoutMs: this.entryTimeoutMs,
      attrTimeoutMs: this.attrTimeoutMs,
      fh,
      directIo,
    };
  }

  private openHandle(inode: Inode, flags: number): OpenReply {
    const fh = this.nextFh++;
    this.handles.set(fh, { ino: inode.ino, flags });
    inode.openCount++;
    return { fh, directIo: this.directIo };
  }

  async open(_ctx: RequestContext, ino: Ino, flags: number, killSuidgid: boolean): Promise<OpenReply> {
    const inode = this.get(ino);
    if (flags & constants.O_TRUNC && (inode.mode & S_IFMT) === S_IFREG) {
      this.truncate(inode, 0);
      inode.mtime = inode.ctime = now();
      if (killSuidgid) this.killSuidgid(inode);
    }
    return this.openHandle(inode, flags);
  }

  async create(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    mode: number,
    flags: number,
  ): Promise<CreateReply> {
    const inode = this.addChild(ctx, parent, name, S_IFREG | (mode & 0o7777));
    return this.createReply(inode, flags);
  }

  async tmpfile(ctx: RequestContext, parent: Ino, mode: number, flags: number): Promise<CreateReply> {
    this.dir(parent);
    const inode = this.newInode(S_IFREG | (mode & 0o7777 & ~(ctx.umask & 0o777)), ctx.uid, ctx.gid);
    inode.nlink = 0;
    return this.createReply(inode, flags);
  }

  private handle(fh: number): Handle {
    const handle = this.handles.get(fh);
    if (!handle) throw fsError.EBADF(`no open file with handle ${fh}`);
    return handle;
  }

  async read(_ctx: RequestContext, ino: Ino, _fh: number, offset: number, size: number): Promise<Buffer> {
    const inode = this.get(ino);
    const length = Math.max(0, Math.min(size, inode.sizeBytes - offset));
    const first = Math.floor(offset / BLOCK_BYTES);
    const within = offset - first * BLOCK_BYTES;
    const only = inode.blocks.get(first);
    // The layer writes the reply before anything else runs, so a view of the block is safe.
    if (only && within + length <= BLOCK_BYTES) return only.subarray(within, within + length);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const index = Math.floor(position / BLOCK_BYTES);
      const within = position - index * BLOCK_BYTES;
      const count = Math.min(BLOCK_BYTES - within, length - done);
      const block = inode.blocks.get(index);
      if (block) block.copy(out, done, within, within + count);
      else out.fill(0, done, done + count);
      done += count;
    }
    return out;
  }

  async write(
    _ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    data: Buffer,
    flags: number,
  ): Promise<number> {
    const inode = this.get(ino);
    const position0 = this.handle(fh).flags & constants.O_APPEND ? inode.sizeBytes : offset;
    let done = 0;
    while (done < data.length) {
      const position = position0 + done;
      const index = Math.floor(position / BLOCK_BYTES);
      const within = position - index * BLOCK_BYTES;
      const count = Math.min(BLOCK_BYTES - within, data.length - done);
      let block = inode.blocks.get(index);
      if (!block) {
        block = Buffer.alloc(BLOCK_BYTES);
        inode.blocks.set(index, block);
      }
      data.copy(block, within, done, done + count); // copy: `data` is only lent to us
      done += count;
    }
    inode.sizeBytes = Math.max(inode.sizeBytes, position0 + data.length);
    inode.mtime = inode.ctime = now();
    if (flags & WriteFlags.KILL_SUIDGID) this.killSuidgid(inode);
    return data.length;
  }

  /** close(2): POSIX locks belong to the closing owner and end with it (the kernel does not send an unlock). */
  private async dropLocksOnClose(
    _ctx: RequestContext,
    ino: Ino,
    _fh: number,
    lockOwner: bigint,
  ): Promise<void> {
    this.get(ino).locks?.remove(lockOwner, { start: 0, end: Number.MAX_SAFE_INTEGER }, false);
  }

  async release(
    _ctx: RequestContext,
    ino: Ino,
    fh: number,
    _flags: number,
    lockOwner: bigint,
    isFlockRelease: boolean,
  ): Promise<void> {
    const inode = this.get(ino);
    if (isFlockRelease) inode.locks?.remove(lockOwner, { start: 0, end: Number.MAX_SAFE_INTEGER }, true);
    if (this.handles.delete(fh)) inode.openCount--;
    this.maybeFree(inode);
  }

  async fsync(): Promise<void> {
    // Memory is as durable as it gets here.
  }

  async opendir(_ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply> {
    this.dir(ino);
    const fh = this.nextFh++;
    this.handles.set(fh, { ino, flags });
    return { fh };
  }

  private listing(ino: Ino, plus: boolean): DirEntryOut[] {
    const inode = this.get(ino);
    const out: DirEntryOut[] = [
      { name: '.', ino, type: 4, nextOffset: 1 },
      { name: '..', ino: inode.parent, type: 4, nextOffset: 2 },
    ];
    for (const [name, child] of this.dir(ino)) {
      const childInode = this.get(child);
      out.push({
        name,
        ino: child,
        type: direntTypeOfMode(childInode.mode),
        nextOffset: out.length + 1,
        entry: plus ? this.entry(childInode) : undefined,
      });
    }
    return out;
  }

  async readdir(
    _ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    plus: boolean,
  ): Promise<DirEntryOut[]> {
    const handle = this.handle(fh);
    // A listing per open directory keeps offsets stable while the directory changes; offset 0 is a rewind.
    if (offset === 0 || !handle.listing) handle.listing = this.listing(ino, plus);
    const listing = handle.listing.slice(offset);
    if (plus) {
      for (const item of listing) {
        const inode = this.inodes.get(item.ino);
        if (item.name !== '.' && item.name !== '..' && inode) item.entry = this.entry(inode);
      }
    }
    return listing;
  }

  async releasedir(_ctx: RequestContext, _ino: Ino, fh: number): Promise<void> {
    this.handles.delete(fh);
  }

  async statfs(): Promise<StatFs> {
    let usedBytes = 0;
    for (const inode of this.inodes.values()) usedBytes += inode.blocks.size * BLOCK_BYTES;
    const totalBlocks = 64 * 1024 * 1024; // 256 GiB of 4 KiB blocks
    const free = totalBlocks - Math.ceil(usedBytes / 4096);
    return {
      blocks: totalBlocks,
      blocksFree: free,
      blocksAvailable: free,
      files: 1_000_000,
      filesFree: 1_000_000 - this.inodes.size,
      blockSizeBytes: 4096,
      nameMaxBytes: 255,
      fragmentSizeBytes: 4096,
    };
  }

  async setxattr(_ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    const inode = this.get(ino);
    const xattrs = (inode.xattrs ??= new Map());
    if (flags & 1 && xattrs.has(name)) throw fsError.EEXIST(`xattr "${name}" exists (XATTR_CREATE)`);
    if (flags & 2 && !xattrs.has(name)) throw fsError.ENODATA(`no xattr "${name}" (XATTR_REPLACE)`);
    xattrs.set(name, Buffer.from(value)); // copy: the value is only lent to us
    inode.ctime = now();
  }

  async getxattr(_ctx: RequestContext, ino: Ino, name: string): Promise<Buffer> {
    const value = this.get(ino).xattrs?.get(name);
    if (!value) throw fsError.ENODATA(`no xattr "${name}" on inode ${ino}`);
    return value;
  }

  async listxattr(_ctx: RequestContext, ino: Ino): Promise<string[]> {
    return [...(this.get(ino).xattrs?.keys() ?? [])];
  }

  async removexattr(_ctx: RequestContext, ino: Ino, name: string): Promise<void> {
    if (!this.get(ino).xattrs?.delete(name)) throw fsError.ENODATA(`no xattr "${name}" on inode ${ino}`);
  }

  private async testLock(
    _ctx: RequestContext,
    ino: Ino,
    _fh: number,
    lockOwner: bigint,
    lock: FileLock,
  ): Promise<FileLock> {
    return (this.get(ino).locks ?? noLocks).test(lockOwner, lock);
  }

  private async setLock(
    ctx: RequestContext,
    ino: Ino,
    _fh: number,
    lockOwner: bigint,
    lock: FileLock,
    sleep: boolean,
    isFlock: boolean,
  ): Promise<void> {
    const inode = this.get(ino);
    await (inode.locks ??= new LockTable()).set(lockOwner, lock, sleep, isFlock, ctx.signal);
  }

  async fallocate(
    ctx: RequestContext,
    ino: Ino,
    _fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void> {
    const inode = this.get(ino);
    const KEEP_SIZE = 1;
    const PUNCH_HOLE = 2;
    if (mode !== 0 && mode !== KEEP_SIZE && mode !== (PUNCH_HOLE | KEEP_SIZE)) {
      throw fsError.ENOTSUP(`fallocate mode ${mode} is not supported`);
    }
    // Every mode modifies the file as tmpfs sees it (file_modified): times move, and a caller
    // without CAP_FSETID (FUSE sends no kill flag here) loses the set-id bits.
    inode.mtime = inode.ctime = now();
    if (ctx.uid !== 0) this.killSuidgid(inode);
    if (mode === 0 || mode === KEEP_SIZE) {
      if (mode === 0) inode.sizeBytes = Math.max(inode.sizeBytes, offset + length);
      return;
    }
    const end = Math.min(offset + length, inode.sizeBytes);
    for (let position = offset; position < end;) {
      const index = Math.floor(position / BLOCK_BYTES);
      const within = position - index * BLOCK_BYTES;
      const count = Math.min(BLOCK_BYTES - within, end - position);
      if (count === BLOCK_BYTES) inode.blocks.delete(index);
      else inode.blocks.get(index)?.fill(0, within, within + count);
      position += count;
    }
  }

  async lseek(_ctx: RequestContext, ino: Ino, _fh: number, offset: number, whence: number): Promise<number> {
    const inode = this.get(ino);
    if (whence !== SeekWhence.SEEK_DATA && whence !== SeekWhence.SEEK_HOLE) {
      throw fsError.EINVAL(`lseek whence ${whence} is handled by the kernel`);
    }
    if (offset >= inode.sizeBytes)
      throw new FsError(Errno.ENXIO, `offset ${offset} is at or past the end of the file`);
    const wantData = whence === SeekWhence.SEEK_DATA;
    for (let index = Math.floor(offset / BLOCK_BYTES); index * BLOCK_BYTES < inode.sizeBytes; index++) {
      if (inode.blocks.has(index) === wantData) return Math.max(offset, index * BLOCK_BYTES);
    }
    if (wantData) throw new FsError(Errno.ENXIO, `no data after offset ${offset}`);
    return inode.sizeBytes;
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
    const data = await this.read(ctx, inoIn, fhIn, offsetIn, Math.min(length, 16 * 1024 * 1024));
    return this.write(ctx, inoOut, fhOut, offsetOut, data, 0);
  }
}
