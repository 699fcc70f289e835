import { fsError } from '../common/index.js';
import type { FuseAttr } from '../fuse/index.js';
import type { InodeAttr, Timespec } from '../meta/api.js';

/** The preferred I/O size reported as st_blksize: large, so `cp` and friends use big buffers. */
const PREFERRED_IO_BYTES = 1024 * 1024;

/** st_blocks counts 512-byte units whatever the file system's block size. */
const ST_BLOCK_BYTES = 512;

/**
 * st_blocks: the bytes the file's data covers (the metadata service keeps them exact: holes,
 * punched ranges and a truncate's growth do not count, data kept past the size does), in
 * 512-byte units rounded up once. Not per 4 KiB block as ext4 would round: no block is
 * allocated here, and rounding once keeps `du` exact while st_blocks * 512 < size still means
 * holes. A server older than allocated bytes answers none: the size counts, as it did then.
 */
export function allocatedBlocks(attr: InodeAttr): number {
  return Math.ceil((attr.allocatedBytes ?? attr.sizeBytes) / ST_BLOCK_BYTES);
}

/** Converts the metadata view of an inode into what the kernel caches; `sizeBytes` may include pending writes. */
export function toFuseAttr(attr: InodeAttr): FuseAttr {
  return {
    ino: attr.ino,
    sizeBytes: attr.sizeBytes,
    blocks: allocatedBlocks(attr),
    atimeSec: attr.atime.sec,
    atimeNsec: attr.atime.nsec,
    mtimeSec: attr.mtime.sec,
    mtimeNsec: attr.mtime.nsec,
    ctimeSec: attr.ctime.sec,
    ctimeNsec: attr.ctime.nsec,
    mode: attr.mode,
    nlink: attr.nlink,
    uid: attr.uid,
    gid: attr.gid,
    rdev: attr.rdev,
    blksize: PREFERRED_IO_BYTES,
  };
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export function isRegular(mode: number): boolean {
  return (mode & S_IFMT) === S_IFREG;
}

/** A cheap fingerprint of a file's content version for close-to-open (keep_cache when unchanged). */
export function contentVersion(attr: InodeAttr): string {
  return `${attr.sizeBytes}:${attr.mtime.sec}:${attr.mtime.nsec}`;
}

/**
 * An exact fingerprint of an inode's committed state: the content version plus ctime, which
 * moves with every change to the inode and which no caller can set (unlike mtime, which
 * `touch -d` can put back).
 */
export function exactVersion(attr: InodeAttr): string {
  return `${contentVersion(attr)}:${attr.ctime.sec}:${attr.ctime.nsec}`;
}

/**
 * Now, in microseconds: the clock and resolution of the metadata service's timestamps
 * (meta/engine.ts systemClock), so a write's time and the commit times around it order
 * correctly; whole milliseconds would stamp a write made just after a create before it.
 */
export function nowTimespec(): { sec: number; nsec: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { sec: Math.floor(us / 1_000_000), nsec: (us % 1_000_000) * 1000 };
}

/** Negative, zero or positive as `a` is before, at or after `b`. */
export function compareTimes(a: Timespec, b: Timespec): number {
  return a.sec - b.sec || a.nsec - b.nsec;
}

/**
 * The ctime a change stamped `candidate` gives an inode whose ctime is `current`: the
 * candidate when it is later, else one microsecond after `current`, so ctime never stays or
 * goes back (clocks of a mount and its metadata server may differ by a little). The
 * metadata service stamps a commit of writes the same way (meta/attrs.ts laterCtime), so
 * the ctime a mount shows for pending writes is the one they get when committed.
 */
export function changeTimeAfter(current: Timespec, candidate: Timespec): Timespec {
  if (compareTimes(candidate, current) > 0) return candidate;
  const nsec = current.nsec + 1000;
  return nsec >= 1_000_000_000
    ? { sec: current.sec + 1, nsec: nsec - 1_000_000_000 }
    : { sec: current.sec, nsec };
}

/**
 * Fails with EFBIG when a file would reach past `endBytes` > 2^53 - 1, the largest size the
 * metadata service keeps (sizes are JavaScript numbers). Checked here, before the call:
 * over RPC such an argument is refused as malformed (EINVAL), where Linux says EFBIG.
 */
export function requireFileEnd(endBytes: number, what: string): void {
  if (endBytes > Number.MAX_SAFE_INTEGER) {
    throw fsError.EFBIG(`${what} reaches byte ${endBytes}, past the largest file size (2^53 - 1 bytes)`);
  }
}
