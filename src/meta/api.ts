import type { Ino, SliceId, SliceRef, SliceWrite } from '../common/index.js';

export type { SliceRef, SliceWrite };

/**
 * The contract between metadata clients (the VFS) and the metadata service.
 * Every method is one engine transaction on the server. Errors are FsError with an errno.
 * This file is types only: the server dispatches RPC calls onto an implementation of
 * `MetaApi`, the client implements it over RPC, the embedded mode may call it in-process.
 */

/** Who is asking: the caller of the system call, as FUSE reports it. */
export interface Caller {
  uid: number;
  gid: number;
  /** Supplementary groups, when known (permission checks use them). */
  groups?: number[];
  pid: number;
}

/** A point in time, in microseconds since the epoch (fits a JS number exactly). */
export type InstantUs = number;

/** Read the namespace as of this instant instead of now (time travel). Omit for the current state. */
export interface AsOf {
  asOfUs?: InstantUs;
}

export type FileKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface Timespec {
  sec: number;
  nsec: number;
}

export interface InodeAttr {
  ino: Ino;
  /** Full st_mode: type bits (S_IFMT) and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  sizeBytes: number;
  rdev: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Bumped when an inode number is reused (NFS export / FUSE generation). */
  generation: number;
  /**
   * Bytes the file's data covers (st_blocks counts them): its size less its holes, plus data kept
   * past the size. Absent from servers older than the field: count the size then.
   */
  allocatedBytes?: number;
}

/**
 * What commitWrites answers: the inode after the commit, and its ctime just before it, as NFS
 * answers before/after attributes. Every change moves ctime and no caller can set it, so a
 * mount whose last known ctime differs from `ctimeBefore` learns that another change came
 * between (another mount's commit, a chmod) whether or not that change's push reached it yet.
 */
export interface CommittedWrites extends InodeAttr {
  /** Absent from servers older than the field: the mount then relies on pushes as before. */
  ctimeBefore?: Timespec;
}

export interface DirEntry {
  name: string;
  ino: Ino;
  /** Type bits of st_mode (mode & S_IFMT). */
  type: number;
  /** Opaque cursor: pass it back as `afterCursor` to continue after this entry. */
  cursor: number;
  /** Filled when `withAttrs` was asked (READDIRPLUS). */
  attr?: InodeAttr;
}

/** "now" sets the server's current time; a Timespec sets that time. */
export type TimeChange = Timespec | 'now';

export interface SetAttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  sizeBytes?: number;
  atime?: TimeChange;
  mtime?: TimeChange;
  ctime?: Timespec;
  /** Set by the VFS when a write by this caller should clear suid/sgid (HANDLE_KILLPRIV_V2). */
  killSuid?: boolean;
}

export interface VolumeSettings {
  name: string;
  uuid: string;
  blockSizeBytes: number;
  chunkSizeBytes: number;
  historyRetentionMs: number;
  encryption: boolean;
  storageUrl: string;
  /** 0 = no limit. */
  maxLinks: number;
  createdUs: InstantUs;
}

export interface StatFsInfo {
  capacityBytes: number;
  usedBytes: number;
  inodesUsed: number;
  inodesTotal: number;
}

export type LockType = 'read' | 'write' | 'unlock';

export interface LockRange {
  type: LockType;
  /** Inclusive start. */
  start: number;
  /** Inclusive end; Number.MAX_SAFE_INTEGER means "to end of file". */
  end: number;
  pid: number;
}

export interface LockOwner {
  sessionId: string;
  /** The kernel's lock_owner, as a decimal string (it is a u64). */
  owner: string;
}

export interface SessionInfo {
  hostname: string;
  mountpoint: string;
  pid: number;
  version: string;
  /** Where `pid` means something (common/process-scope.ts); absent from older clients. */
  processScope?: string;
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
/** Leaves a whiteout (a 0:0 character device, mode 0) at the old name, as overlayfs asks of its upper layer. */
export const RENAME_WHITEOUT = 4;

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/**
 * What unlink, rmdir and rename did to inodes besides the directories. The server pushes `inos`
 * to other mounts (another name of a hard-linked file shows the new link count and ctime), and
 * a mount answers fstat of a removed inode its kernel still holds from `unnamed`. Kept small: it
 * is in every unlink and rename reply. Servers before it answer nothing.
 */
export interface NameRemoval {
  /** Inodes whose link count or ctime changed: the one a name was taken from, the one moved. */
  inos: Ino[];
  /**
   * The attributes after the call of those left without a name (nlink 0). The service may have
   * deleted them already: these are their last attributes.
   */
  unnamed: InodeAttr[];
}

export interface MetaApi {
  // --- sessions: every mount registers one; locks and open files belong to it ---
  openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }>;
  /**
   * `sliceFloor`: the lowest slice id this mount may still commit (allocated, not committed
   * yet); leaked blocks below every session's floor may be reclaimed. Older mounts send none.
   */
  heartbeat(sessionId: string, sliceFloor?: SliceId): Promise<void>;
  closeSession(sessionId: string): Promise<void>;

  // --- namespace reads (time travel through AsOf) ---
  lookup(caller: Caller, parent: Ino, name: string, asOf?: AsOf): Promise<InodeAttr>;
  getattr(ino: Ino, asOf?: AsOf): Promise<InodeAttr>;
  readlink(ino: Ino, asOf?: AsOf): Promise<string>;
  /** Entries after `afterCursor` (0 = from the start, "." and ".." included), at most `limit`. */
  readdir(
    caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
    asOf?: AsOf,
  ): Promise<DirEntry[]>;
  /** POSIX access(2) check for `mask` (R_OK=4, W_OK=2, X_OK=1, F_OK=0). */
  access(caller: Caller, ino: Ino, mask: number): Promise<void>;

  // --- namespace changes ---
  /** Creates a regular file, fifo, socket or device. `mode` includes the type bits; `umask` is applied by the server. */
  mknod(
    caller: Caller,
    parent: Ino,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<InodeAttr>;
  mkdir(caller: Caller, parent: Ino, name: string, mode: number, umask: number): Promise<InodeAttr>;
  symlink(caller: Caller, parent: Ino, name: string, target: string): Promise<InodeAttr>;
  link(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr>;
  /**
   * Undefined from servers older than NameRemoval, and for a resent call answered from its stored
   * outcome (which keeps no reply for these three: call-outcomes.ts).
   */
  unlink(caller: Caller, parent: Ino, name: string): Promise<NameRemoval | undefined>;
  rmdir(caller: Caller, parent: Ino, name: string): Promise<NameRemoval | undefined>;
  /** flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT (with or without NOREPLACE). */
  rename(
    caller: Caller,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<NameRemoval | undefined>;
  setattr(caller: Caller, ino: Ino, changes: SetAttrChanges): Promise<InodeAttr>;

  // --- open files: an unlinked file keeps its data until the last session closes it ---
  /**
   * O_TMPFILE: a regular file in no directory (nlink 0), counted open by `sessionId`; freed at
   * its last `release` unless `linkTmpfile` named it first.
   */
  tmpfile(caller: Caller, sessionId: string, parent: Ino, mode: number, umask: number): Promise<InodeAttr>;
  /** linkat(2) of an open O_TMPFILE file: its first name (an ordinary `link` once it has one). */
  linkTmpfile(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr>;
  open(caller: Caller, sessionId: string, ino: Ino, flags: number): Promise<InodeAttr>;
  release(sessionId: string, ino: Ino): Promise<void>;

  // --- extended attributes (system.posix_acl_* stored as the kernel sends them) ---
  setxattr(caller: Caller, ino: Ino, name: string, value: Buffer, flags: number): Promise<void>;
  getxattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer>;
  listxattr(ino: Ino, asOf?: AsOf): Promise<string[]>;
  removexattr(caller: Caller, ino: Ino, name: string): Promise<void>;

  // --- file data maps ---
  /** Unique slice ids, never handed out twice (also across crashes). Returns the first of `count` consecutive ids. */
  allocateSliceIds(count: number): Promise<SliceId>;
  /** The slices of chunks [firstChunk, lastChunk], each chunk's list in overlay order. */
  readSlices(ino: Ino, firstChunk: number, lastChunk: number, asOf?: AsOf): Promise<Map<number, SliceRef[]>>;
  /** Commits uploaded writes and the new size (if it grew) and mtime, atomically. */
  commitWrites(
    caller: Caller,
    ino: Ino,
    writes: SliceWrite[],
    minSizeBytes: number,
    mtime: Timespec,
  ): Promise<CommittedWrites>;
  fallocate(caller: Caller, ino: Ino, mode: number, offset: number, length: number): Promise<InodeAttr>;
  /** Copies by reference: the destination points at the source's slices. Returns bytes copied. */
  copyFileRange(
    caller: Caller,
    srcIno: Ino,
    srcOffset: number,
    dstIno: Ino,
    dstOffset: number,
    length: number,
  ): Promise<{ copiedBytes: number; attr: InodeAttr }>;
  /** Compaction: replaces the chunk's whole slice list with `merged` if it is still exactly `expectedIds`. */
  replaceChunkSlices(
    ino: Ino,
    chunkIndex: number,
    expectedIds: SliceId[],
    merged: SliceRef[],
  ): Promise<boolean>;

  // --- locks (POSIX byte-range and flock) ---
  getlk(ino: Ino, owner: LockOwner, lock: LockRange): Promise<LockRange | null>;
  /** Acquires or releases; fails with EAGAIN if it conflicts (the client retries for SETLKW). */
  setlk(ino: Ino, owner: LockOwner, lock: LockRange, isFlock: boolean): Promise<void>;

  // --- volume ---
  statfs(): Promise<StatFsInfo>;
  volume(): Promise<VolumeSettings>;

  // --- durability ---
  /**
   * Durable barrier: resolves once every change committed before the call survives a power
   * loss. Every other change is visible at once and survives a crash of the metadata
   * process, but may be lost with the machine until a sync (as a local file system's
   * changes are before fsync). Concurrent callers share one flush (group commit).
   */
  sync(): Promise<void>;
}
