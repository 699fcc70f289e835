import type { Ino } from '../common/index.js';

/**
 * The contract between the FUSE kernel protocol layer and the file system above it (the VFS).
 *
 * Inode-based, like libfuse's lowlevel API or go-fuse's RawFileSystem: the kernel names
 * files by inode number and the layer passes those numbers through unchanged (1 is the
 * root). Every method is async. Only `lookup` and `getattr` are required; a missing
 * method answers ENOSYS to the kernel, except where a default is documented on the
 * method. Errors are reported by throwing `FsError(errno, message)`; anything else
 * thrown becomes EIO plus one log line, and the session keeps serving.
 *
 * Buffers handed to the file system (`write` data, `setxattr` values) are views into
 * the session's request buffers: valid only until the returned promise settles. A file
 * system that keeps the bytes longer must copy them.
 *
 * Lookup counting is done by the layer: it counts every entry it sends to the kernel
 * (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, TMPFILE, READDIRPLUS entries actually
 * packed) and calls `forget(ino)` once, when the kernel has forgotten all of them.
 */

/** Who is asking, and a signal that aborts on FUSE_INTERRUPT or session shutdown. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  /** The caller's umask; meaningful for create/mkdir/mknod/tmpfile (0 elsewhere). */
  umask: number;
  /** The kernel's request id, for log lines. */
  unique: bigint;
  /** Aborts when the kernel interrupts this request (e.g. a signal to the caller) or the session ends. */
  signal: AbortSignal;
}

/** Bytes a file system lends the layer for one READ reply (FileSystem.readLent). */
export interface LentBytes {
  data: Buffer;
  /** The reply was sent (or could not be): the memory is the file system's again. */
  done(): void;
}

/** The attributes the kernel caches for an inode. Times are seconds + nanoseconds since the epoch. */
export interface FuseAttr {
  ino: Ino;
  sizeBytes: number;
  /** Allocated size in 512-byte units (what `stat` reports as st_blocks). */
  blocks: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  /** File type and permission bits, as in st_mode (S_IFREG | 0o644, ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  /** Preferred I/O size; 0 lets the kernel pick. */
  blksize: number;
}

/** A name resolved to an inode, as returned by lookup and the create-like operations. */
export interface Entry {
  attr: FuseAttr;
  /** Distinguishes reuses of the same inode number (NFS export); 0 if inode numbers are never reused. */
  generation: number;
  /** How long the kernel may cache the name -> inode mapping. */
  entryTimeoutMs: number;
  /** How long the kernel may cache the attributes. */
  attrTimeoutMs: number;
}

/** A negative lookup answer the kernel may cache: throw ENOENT instead to not cache it. */
export interface NegativeEntry {
  negative: true;
  entryTimeoutMs: number;
}

export interface AttrReply {
  attr: FuseAttr;
  attrTimeoutMs: number;
}

export interface OpenReply {
  /** The file system's handle for this open; passed back on read/write/flush/release. */
  fh: number;
  /** Bypass the page cache for this open (FOPEN_DIRECT_IO). */
  directIo?: boolean;
  /** Keep the page cache from previous opens (FOPEN_KEEP_CACHE). */
  keepCache?: boolean;
  /** The file is not seekable, e.g. a stream (FOPEN_NONSEEKABLE). */
  nonSeekable?: boolean;
  /** For opendir: let the kernel cache directory contents (FOPEN_CACHE_DIR). */
  cacheDir?: boolean;
}

export type CreateReply = Entry & OpenReply;

export interface StatFs {
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  /** Block size the block counts are expressed in. */
  blockSizeBytes: number;
  nameMaxBytes: number;
  /** Fragment size; usually equal to blockSizeBytes. */
  fragmentSizeBytes: number;
}

/** Directory entry types, as DT_* in <dirent.h> (the file-type bits of mode >> 12). */
export const DirentType = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** The DT_* type of a st_mode value. */
export function direntTypeOfMode(mode: number): number {
  return (mode >>> 12) & 0o17;
}

export interface DirEntryOut {
  name: string;
  ino: Ino;
  /** DT_* value, see `DirentType`. */
  type: number;
  /** The offset the kernel passes back to continue after this entry (must be > 0 and unique in the listing). */
  nextOffset: number;
  /** For READDIRPLUS: the full entry. Omit for "." and ".." (the layer then sends no attributes for it). */
  entry?: Entry;
}

/** A time to set: an explicit value, or "now" as seen by the file system (UTIME_NOW). */
export type SetTime = { sec: number; nsec: number } | 'now';

/** SETATTR decoded: only the fields the kernel asked to change are present. */
export interface SetAttrIn {
  mode?: number;
  uid?: number;
  gid?: number;
  sizeBytes?: number;
  atime?: SetTime;
  mtime?: SetTime;
  ctime?: { sec: number; nsec: number };
  /** The open file this setattr came through (ftruncate, fchmod, ...), if any. */
  fh?: number;
  /** Clear setuid/setgid as part of this change (HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
  /** The lock owner for a truncate through an open file, if the kernel sent one. */
  lockOwner?: bigint;
}

/** Lock types, as in <fcntl.h>. */
export const LockType = { F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 } as const;

/** A byte-range lock. `end` is inclusive; a lock to end of file has end = Number.MAX_SAFE_INTEGER or more. */
export interface FileLock {
  start: number;
  end: number;
  type: number;
  pid: number;
}

/** What the kernel offered at INIT and what the session agreed to. */
export interface InitInfo {
  kernelMajor: number;
  kernelMinor: number;
  maxWriteBytes: number;
  maxReadaheadBytes: number;
  /**
   * The kernel caches writes and is the authority for size and mtime: expect SETATTRs
   * of both, reads through write-only handles (read-modify-write of partial pages), and
   * no O_APPEND in open flags (the layer removes it; appends arrive at explicit offsets).
   */
  writebackCache: boolean;
  /**
   * POSIX ACLs negotiated: the kernel enforces ACLs stored as system.posix_acl_* xattrs
   * and no longer applies the umask; create/mkdir/mknod/tmpfile then receive the
   * unmasked mode and must apply `ctx.umask` themselves (unless a default ACL applies).
   */
  posixAcl: boolean;
}

/** Flags of rename (RENAME2), as in <linux/fs.h>. */
export const RenameFlags = { NOREPLACE: 1, EXCHANGE: 2, WHITEOUT: 4 } as const;

/** Bits of the `flags` argument of `write`, as FUSE_WRITE_* in <linux/fuse.h>. */
export const WriteFlags = { CACHE: 1, LOCKOWNER: 2, KILL_SUIDGID: 4 } as const;

/** `whence` values the kernel sends for LSEEK. */
export const SeekWhence = { SEEK_SET: 0, SEEK_CUR: 1, SEEK_END: 2, SEEK_DATA: 3, SEEK_HOLE: 4 } as const;

export interface FileSystem {
  /** Called once after INIT is negotiated, before any other request. */
  init?(info: InitInfo): Promise<void>;
  /** Called on DESTROY (clean unmount) or session shutdown. */
  destroy?(): Promise<void>;

  /** Must also resolve "." and ".." (EXPORT_SUPPORT is negotiated, for NFS re-export). */
  lookup(ctx: RequestContext, parent: Ino, name: string): Promise<Entry | NegativeEntry>;
  /** The kernel dropped its last reference to `ino`. Default: nothing. No reply is sent. */
  forget?(ino: Ino): Promise<void>;
  getattr(ctx: RequestContext, ino: Ino, fh?: number): Promise<AttrReply>;
  setattr?(ctx: RequestContext, ino: Ino, changes: SetAttrIn): Promise<AttrReply>;

  readlink?(ctx: RequestContext, ino: Ino): Promise<string>;
  symlink?(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<Entry>;
  mknod?(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number): Promise<Entry>;
  mkdir?(ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry>;
  unlink?(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  rmdir?(ctx: RequestContext, parent: Ino, name: string): Promise<void>;
  /** `flags` is a combination of `RenameFlags` (0 for plain RENAME). */
  rename?(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void>;
  link?(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<Entry>;

  /**
   * `flags` are the open(2) flags; O_TRUNC must truncate (ATOMIC_O_TRUNC is negotiated). `killSuidgid`: an O_TRUNC open by a caller without
   * CAP_FSETID; clear setuid/setgid as the truncation happens (HANDLE_KILLPRIV_V2).
   */
  open?(ctx: RequestContext, ino: Ino, flags: number, killSuidgid: boolean): Promise<OpenReply>;
  /** If absent, the kernel falls back to MKNOD + OPEN. */
  create?(ctx: RequestContext, parent: Ino, name: string, mode: number, flags: number): Promise<CreateReply>;
  /** O_TMPFILE: an unnamed file in directory `parent`. */
  tmpfile?(ctx: RequestContext, parent: Ino, mode: number, flags: number): Promise<CreateReply>;
  /**
   * Returns at most `size` bytes; fewer means end of file (unless direct_io). The layer
   * sends the buffer to the kernel as soon as the promise resolves: it may be a view into the
   * file system's own cache (no copy needed) if that memory is never reused (else readLent).
   */
  read?(ctx: RequestContext, ino: Ino, fh: number, offset: number, size: number): Promise<Buffer>;
  /**
   * Like read, for a file system whose reply memory is only lent (a cache that reuses its
   * buffers): the layer sends `data`, then calls `done()` exactly once, and never touches
   * `data` after that. Used instead of read where both exist.
   */
  readLent?(ctx: RequestContext, ino: Ino, fh: number, offset: number, size: number): Promise<LentBytes>;
  /**
   * `data` is valid only until the promise settles. `flags` are `WriteFlags` bits: with
   * KILL_SUIDGID the file system clears setuid/setgid (HANDLE_KILLPRIV_V2: the kernel
   * leaves that to us). `fileFlags` are the descriptor's flags at this write, not at open:
   * fcntl(F_SETFL) may have set or cleared O_APPEND since, and pwritev2(RWF_DSYNC/RWF_SYNC)
   * adds O_DSYNC/O_SYNC for one call (absent from page-cache writeback). Returns the number
   * of bytes written.
   */
  write?(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    data: Buffer,
    flags: number,
    fileFlags?: number,
  ): Promise<number>;
  /**
   * Called on each close(2) of a file descriptor. Without it the layer answers ENOSYS, as
   * libfuse does: the kernel stops sending FLUSH (a round trip saved on every close) and
   * close(2) succeeds. A file system that implements `setlk` must implement it and drop
   * all POSIX locks of `lockOwner` here: with remote locks the kernel sends no unlock on close.
   */
  flush?(ctx: RequestContext, ino: Ino, fh: number, lockOwner: bigint): Promise<void>;
  /** The last reference to the open file is gone. Default: success. */
  release?(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    flags: number,
    lockOwner: bigint,
    isFlockRelease: boolean,
  ): Promise<void>;
  fsync?(ctx: RequestContext, ino: Ino, fh: number, datasync: boolean): Promise<void>;

  /** Default: fh 0. */
  opendir?(ctx: RequestContext, ino: Ino, flags: number): Promise<OpenReply>;
  /**
   * Entries after `offset` (0 = from the start). The layer packs as many as fit in the
   * kernel's buffer and drops the rest; they are asked for again from the last packed
   * entry's nextOffset. With `plus`, entries should carry `entry` (READDIRPLUS).
   */
  readdir?(ctx: RequestContext, ino: Ino, fh: number, offset: number, plus: boolean): Promise<DirEntryOut[]>;
  /** Default: success. */
  releasedir?(ctx: RequestContext, ino: Ino, fh: number): Promise<void>;
  /** Without it: ENOSYS, after which the kernel stops asking and fsync on a directory succeeds. */
  fsyncdir?(ctx: RequestContext, ino: Ino, fh: number, datasync: boolean): Promise<void>;

  statfs?(ctx: RequestContext, ino: Ino): Promise<StatFs>;

  /** `value` is valid only until the promise settles. `flags`: XATTR_CREATE (1) / XATTR_REPLACE (2). */
  setxattr?(ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void>;
  /** The whole value; the layer answers size probes and ERANGE itself. Throw ENODATA if absent. */
  getxattr?(ctx: RequestContext, ino: Ino, name: string): Promise<Buffer>;
  listxattr?(ctx: RequestContext, ino: Ino): Promise<string[]>;
  removexattr?(ctx: RequestContext, ino: Ino, name: string): Promise<void>;

  /**
   * `mask` is R_OK/W_OK/X_OK/F_OK. Without it: ENOSYS, after which the kernel stops asking
   * and grants access itself (it checks mode bits with default_permissions).
   */
  access?(ctx: RequestContext, ino: Ino, mask: number): Promise<void>;

  /** Returns the conflicting lock, or one with type F_UNLCK if none. */
  getlk?(ctx: RequestContext, ino: Ino, fh: number, lockOwner: bigint, lock: FileLock): Promise<FileLock>;
  /**
   * Takes or releases a lock. With `sleep` (SETLKW), wait until it can be taken; stop
   * waiting and throw EINTR when `ctx.signal` aborts. `isFlock`: a flock(2) lock on the whole file.
   */
  setlk?(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    lockOwner: bigint,
    lock: FileLock,
    sleep: boolean,
    isFlock: boolean,
  ): Promise<void>;

  /** `mode` is the fallocate(2) mode (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, ...). */
  fallocate?(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    length: number,
    mode: number,
  ): Promise<void>;
  /** Only SEEK_DATA / SEEK_HOLE reach the file system in practice. Returns the new offset. */
  lseek?(ctx: RequestContext, ino: Ino, fh: number, offset: number, whence: number): Promise<number>;
  /** Returns the number of bytes copied. */
  copyFileRange?(
    ctx: RequestContext,
    inoIn: Ino,
    fhIn: number,
    offsetIn: number,
    inoOut: Ino,
    fhOut: number,
    offsetOut: number,
    length: number,
    flags: number,
  ): Promise<number>;
}
