/**
 * The FUSE kernel ABI as in <linux/fuse.h> (protocol 7.38 structs; the kernel on this
 * machine speaks 7.45 and accepts older servers). Struct layouts are written as field
 * offsets named exactly like the C fields, so `test/fuse/abi.test.ts` can check every
 * one against `offsetof()` compiled from the real header.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor whose structs this file describes; we answer min(kernel, this). */
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** The kernel refuses reads into buffers smaller than this. */
export const FUSE_MIN_READ_BUFFER = 8192;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
} as const;

export const NotifyCode = {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
} as const;

/** INIT flags (fuse_init_in.flags / fuse_init_out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  INIT_EXT: 1 << 30,
} as const;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags bits. */
export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
} as const;

export const GETATTR_FH = 1 << 0;
export const RELEASE_FLOCK_UNLOCK = 1 << 1;
export const LK_FLOCK = 1 << 0;
export const FSYNC_FDATASYNC = 1 << 0;
export const OPEN_KILL_SUIDGID = 1 << 0;

/** A struct layout: its C name, its size, and each field's byte offset. */
export interface Layout {
  /** The C struct name, for the header cross-check. */
  readonly struct: string;
  readonly size: number;
  readonly [field: string]: string | number;
}

export const fuse_in_header = {
  struct: 'fuse_in_header',
  size: 40,
  len: 0,
  opcode: 4,
  unique: 8,
  nodeid: 16,
  uid: 24,
  gid: 28,
  pid: 32,
  total_extlen: 36,
} as const satisfies Layout;

export const fuse_out_header = {
  struct: 'fuse_out_header',
  size: 16,
  len: 0,
  error: 4,
  unique: 8,
} as const satisfies Layout;

export const fuse_attr = {
  struct: 'fuse_attr',
  size: 88,
  ino: 0,
  size_: 8,
  blocks: 16,
  atime: 24,
  mtime: 32,
  ctime: 40,
  atimensec: 48,
  mtimensec: 52,
  ctimensec: 56,
  mode: 60,
  nlink: 64,
  uid: 68,
  gid: 72,
  rdev: 76,
  blksize: 80,
  flags: 84,
} as const satisfies Layout;

export const fuse_entry_out = {
  struct: 'fuse_entry_out',
  size: 128,
  nodeid: 0,
  generation: 8,
  entry_valid: 16,
  attr_valid: 24,
  entry_valid_nsec: 32,
  attr_valid_nsec: 36,
  attr: 40,
} as const satisfies Layout;

export const fuse_attr_out = {
  struct: 'fuse_attr_out',
  size: 104,
  attr_valid: 0,
  attr_valid_nsec: 8,
  attr: 16,
} as const satisfies Layout;

export const fuse_init_in = {
  struct: 'fuse_init_in',
  size: 64,
  major: 0,
  minor: 4,
  max_readahead: 8,
  flags: 12,
  flags2: 16,
} as const satisfies Layout;

export const fuse_init_out = {
  struct: 'fuse_init_out',
  size: 64,
  major: 0,
  minor: 4,
  max_readahead: 8,
  flags: 12,
  max_background: 16,
  congestion_threshold: 18,
  max_write: 20,
  time_gran: 24,
  max_pages: 28,
  map_alignment: 30,
  flags2: 32,
} as const satisfies Layout;

export const fuse_forget_in = { struct: 'fuse_forget_in', size: 8, nlookup: 0 } as const satisfies Layout;
export const fuse_forget_one = {
  struct: 'fuse_forget_one',
  size: 16,
  nodeid: 0,
  nlookup: 8,
} as const satisfies Layout;
export const fuse_batch_forget_in = {
  struct: 'fuse_batch_forget_in',
  size: 8,
  count: 0,
} as const satisfies Layout;
export const fuse_getattr_in = {
  struct: 'fuse_getattr_in',
  size: 16,
  getattr_flags: 0,
  fh: 8,
} as const satisfies Layout;

export const fuse_setattr_in = {
  struct: 'fuse_setattr_in',
  size: 88,
  valid: 0,
  fh: 8,
  size_: 16,
  lock_owner: 24,
  atime: 32,
  mtime: 40,
  ctime: 48,
  atimensec: 56,
  mtimensec: 60,
  ctimensec: 64,
  mode: 68,
  uid: 76,
  gid: 80,
} as const satisfies Layout;

export const fuse_mknod_in = {
  struct: 'fuse_mknod_in',
  size: 16,
  mode: 0,
  rdev: 4,
  umask: 8,
} as const satisfies Layout;
export const fuse_mkdir_in = {
  struct: 'fuse_mkdir_in',
  size: 8,
  mode: 0,
  umask: 4,
} as const satisfies Layout;
export const fuse_rename_in = { struct: 'fuse_rename_in', size: 8, newdir: 0 } as const satisfies Layout;
export const fuse_rename2_in = {
  struct: 'fuse_rename2_in',
  size: 16,
  newdir: 0,
  flags: 8,
} as const satisfies Layout;
export const fuse_link_in = { struct: 'fuse_link_in', size: 8, oldnodeid: 0 } as const satisfies Layout;
export const fuse_open_in = {
  struct: 'fuse_open_in',
  size: 8,
  flags: 0,
  open_flags: 4,
} as const satisfies Layout;
export const fuse_create_in = {
  struct: 'fuse_create_in',
  size: 16,
  flags: 0,
  mode: 4,
  umask: 8,
  open_flags: 12,
} as const satisfies Layout;
export const fuse_open_out = {
  struct: 'fuse_open_out',
  size: 16,
  fh: 0,
  open_flags: 8,
} as const satisfies Layout;
export const fuse_release_in = {
  struct: 'fuse_release_in',
  size: 24,
  fh: 0,
  flags: 8,
  release_flags: 12,
  lock_owner: 16,
} as const satisfies Layout;
export const fuse_flush_in = {
  struct: 'fuse_flush_in',
  size: 24,
  fh: 0,
  lock_owner: 16,
} as const satisfies Layout;
export const fuse_read_in = {
  struct: 'fuse_read_in',
  size: 40,
  fh: 0,
  offset: 8,
  size_: 16,
  read_flags: 20,
  lock_owner: 24,
  flags: 32,
} as const satisfies Layout;
export const fuse_write_in = {
  struct: 'fuse_write_in',
  size: 40,
  fh: 0,
  offset: 8,
  size_: 16,
  write_flags: 20,
  lock_owner: 24,
  flags: 32,
} as const satisfies Layout;
export const fuse_write_out = { struct: 'fuse_write_out', size: 8, size_: 0 } as const satisfies Layout;
export const fuse_kstatfs = {
  struct: 'fuse_kstatfs',
  size: 80,
  blocks: 0,
  bfree: 8,
  bavail: 16,
  files: 24,
  ffree: 32,
  bsize: 40,
  namelen: 44,
  frsize: 48,
} as const satisfies Layout;
export const fuse_fsync_in = {
  struct: 'fuse_fsync_in',
  size: 16,
  fh: 0,
  fsync_flags: 8,
} as const satisfies Layout;
/** Without FUSE_SETXATTR_EXT (which we do not negotiate) the kernel sends only the first 8 bytes. */
export const FUSE_COMPAT_SETXATTR_IN_SIZE = 8;
export const fuse_setxattr_in = {
  struct: 'fuse_setxattr_in',
  size: 16,
  size_: 0,
  flags: 4,
} as const satisfies Layout;
export const fuse_getxattr_in = { struct: 'fuse_getxattr_in', size: 8, size_: 0 } as const satisfies Layout;
export const fuse_getxattr_out = { struct: 'fuse_getxattr_out', size: 8, size_: 0 } as const satisfies Layout;
export const fuse_file_lock = {
  struct: 'fuse_file_lock',
  size: 24,
  start: 0,
  end: 8,
  type: 16,
  pid: 20,
} as const satisfies Layout;
export const fuse_lk_in = {
  struct: 'fuse_lk_in',
  size: 48,
  fh: 0,
  owner: 8,
  lk: 16,
  lk_flags: 40,
} as const satisfies Layout;
export const fuse_lk_out = { struct: 'fuse_lk_out', size: 24, lk: 0 } as const satisfies Layout;
export const fuse_access_in = { struct: 'fuse_access_in', size: 8, mask: 0 } as const satisfies Layout;
export const fuse_interrupt_in = {
  struct: 'fuse_interrupt_in',
  size: 8,
  unique: 0,
} as const satisfies Layout;
export const fuse_fallocate_in = {
  struct: 'fuse_fallocate_in',
  size: 32,
  fh: 0,
  offset: 8,
  length: 16,
  mode: 24,
} as const satisfies Layout;
export const fuse_dirent = {
  struct: 'fuse_dirent',
  size: 24,
  ino: 0,
  off: 8,
  namelen: 16,
  type: 20,
} as const satisfies Layout;
export const fuse_direntplus = {
  struct: 'fuse_direntplus',
  size: 152,
  entry_out: 0,
  dirent: 128,
} as const satisfies Layout;
export const fuse_lseek_in = {
  struct: 'fuse_lseek_in',
  size: 24,
  fh: 0,
  offset: 8,
  whence: 16,
} as const satisfies Layout;
export const fuse_lseek_out = { struct: 'fuse_lseek_out', size: 8, offset: 0 } as const satisfies Layout;
export const fuse_copy_file_range_in = {
  struct: 'fuse_copy_file_range_in',
  size: 56,
  fh_in: 0,
  off_in: 8,
  nodeid_out: 16,
  fh_out: 24,
  off_out: 32,
  len: 40,
  flags: 48,
} as const satisfies Layout;
export const fuse_notify_inval_inode_out = {
  struct: 'fuse_notify_inval_inode_out',
  size: 24,
  ino: 0,
  off: 8,
  len: 16,
} as const satisfies Layout;
export const fuse_notify_inval_entry_out = {
  struct: 'fuse_notify_inval_entry_out',
  size: 16,
  parent: 0,
  namelen: 8,
  flags: 12,
} as const satisfies Layout;
export const fuse_notify_delete_out = {
  struct: 'fuse_notify_delete_out',
  size: 24,
  parent: 0,
  child: 8,
  namelen: 16,
} as const satisfies Layout;

/** Every layout above, for the header cross-check. Field names ending in `_` stand for C names without it (`size_` is `size`). */
export const allLayouts: readonly Layout[] = [
  fuse_in_header,
  fuse_out_header,
  fuse_attr,
  fuse_entry_out,
  fuse_attr_out,
  fuse_init_in,
  fuse_init_out,
  fuse_forget_in,
  fuse_forget_one,
  fuse_batch_forget_in,
  fuse_getattr_in,
  fuse_setattr_in,
  fuse_mknod_in,
  fuse_mkdir_in,
  fuse_rename_in,
  fuse_rename2_in,
  fuse_link_in,
  fuse_open_in,
  fuse_create_in,
  fuse_open_out,
  fuse_release_in,
  fuse_flush_in,
  fuse_read_in,
  fuse_write_in,
  fuse_write_out,
  fuse_kstatfs,
  fuse_fsync_in,
  fuse_setxattr_in,
  fuse_getxattr_in,
  fuse_getxattr_out,
  fuse_file_lock,
  fuse_lk_in,
  fuse_lk_out,
  fuse_access_in,
  fuse_interrupt_in,
  fuse_fallocate_in,
  fuse_dirent,
  fuse_direntplus,
  fuse_lseek_in,
  fuse_lseek_out,
  fuse_copy_file_range_in,
  fuse_notify_inval_inode_out,
  fuse_notify_inval_entry_out,
  fuse_notify_delete_out,
];
