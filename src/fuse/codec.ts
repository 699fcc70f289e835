import {
  fuse_attr,
  fuse_attr_out,
  fuse_entry_out,
  fuse_file_lock,
  fuse_kstatfs,
  fuse_open_out,
  Fopen,
} from './abi.js';
import type { AttrReply, Entry, FileLock, FuseAttr, OpenReply, StatFs } from './filesystem.js';

// Plain struct codecs over Buffers. 64-bit fields are read and written as two 32-bit
// halves: a JS number holds every inode number, handle and offset we use (< 2^53)
// exactly, and this avoids allocating a BigInt per field on the request path.

const TWO_32 = 0x1_0000_0000;

/** An unsigned 64-bit field as a number (exact below 2^53). */
export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_32;
}

/** A signed 64-bit field as a number (exact within ±2^53). */
export function readS64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readInt32LE(offset + 4) * TWO_32;
}

/** Writes an integer in ±2^53 as a 64-bit two's complement field. */
export function writeS64(buf: Buffer, offset: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  buf.writeUInt32LE(value - high * TWO_32, offset);
  buf.writeInt32LE(high, offset + 4);
}

/** Writes a non-negative integer below 2^53 as an unsigned 64-bit field. */
export function writeU64(buf: Buffer, offset: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  buf.writeUInt32LE(value - high * TWO_32, offset);
  buf.writeUInt32LE(high, offset + 4);
}

/** Splits a timeout in milliseconds into the (seconds, nanoseconds) pair the kernel wants. */
function writeTimeout(buf: Buffer, secOffset: number, nsecOffset: number, timeoutMs: number): void {
  const ms = timeoutMs > 0 ? timeoutMs : 0;
  const sec = Math.floor(ms / 1000);
  writeU64(buf, secOffset, sec);
  buf.writeUInt32LE(Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)), nsecOffset);
}

export function writeAttr(buf: Buffer, offset: number, attr: FuseAttr): void {
  writeU64(buf, offset + fuse_attr.ino, attr.ino);
  writeU64(buf, offset + fuse_attr.size_, attr.sizeBytes);
  writeU64(buf, offset + fuse_attr.blocks, attr.blocks);
  writeS64(buf, offset + fuse_attr.atime, attr.atimeSec);
  writeS64(buf, offset + fuse_attr.mtime, attr.mtimeSec);
  writeS64(buf, offset + fuse_attr.ctime, attr.ctimeSec);
  buf.writeUInt32LE(attr.atimeNsec, offset + fuse_attr.atimensec);
  buf.writeUInt32LE(attr.mtimeNsec, offset + fuse_attr.mtimensec);
  buf.writeUInt32LE(attr.ctimeNsec, offset + fuse_attr.ctimensec);
  buf.writeUInt32LE(attr.mode >>> 0, offset + fuse_attr.mode);
  buf.writeUInt32LE(attr.nlink >>> 0, offset + fuse_attr.nlink);
  buf.writeUInt32LE(attr.uid >>> 0, offset + fuse_attr.uid);
  buf.writeUInt32LE(attr.gid >>> 0, offset + fuse_attr.gid);
  buf.writeUInt32LE(attr.rdev >>> 0, offset + fuse_attr.rdev);
  buf.writeUInt32LE(attr.blksize >>> 0, offset + fuse_attr.blksize);
  buf.writeUInt32LE(0, offset + fuse_attr.flags);
}

export function readAttr(buf: Buffer, offset: number): FuseAttr {
  return {
    ino: readU64(buf, offset + fuse_attr.ino) as FuseAttr['ino'],
    sizeBytes: readU64(buf, offset + fuse_attr.size_),
    blocks: readU64(buf, offset + fuse_attr.blocks),
    atimeSec: readS64(buf, offset + fuse_attr.atime),
    mtimeSec: readS64(buf, offset + fuse_attr.mtime),
    ctimeSec: readS64(buf, offset + fuse_attr.ctime),
    atimeNsec: buf.readUInt32LE(offset + fuse_attr.atimensec),
    mtimeNsec: buf.readUInt32LE(offset + fuse_attr.mtimensec),
    ctimeNsec: buf.readUInt32LE(offset + fuse_attr.ctimensec),
    mode: buf.readUInt32LE(offset + fuse_attr.mode),
    nlink: buf.readUInt32LE(offset + fuse_attr.nlink),
    uid: buf.readUInt32LE(offset + fuse_attr.uid),
    gid: buf.readUInt32LE(offset + fuse_attr.gid),
    rdev: buf.readUInt32LE(offset + fuse_attr.rdev),
    blksize: buf.readUInt32LE(offset + fuse_attr.blksize),
  };
}

export function writeEntryOut(buf: Buffer, offset: number, entry: Entry): void {
  writeU64(buf, offset + fuse_entry_out.nodeid, entry.attr.ino);
  writeU64(buf, offset + fuse_entry_out.generation, entry.generation);
  writeTimeout(
    buf,
    offset + fuse_entry_out.entry_valid,
    offset + fuse_entry_out.entry_valid_nsec,
    entry.entryTimeoutMs,
  );
  writeTimeout(
    buf,
    offset + fuse_entry_out.attr_valid,
    offset + fuse_entry_out.attr_valid_nsec,
    entry.attrTimeoutMs,
  );
  writeAttr(buf, offset + fuse_entry_out.attr, entry.attr);
}

/** A negative entry (nodeid 0): the kernel caches "no such name" for `entryTimeoutMs`. */
export function writeNegativeEntryOut(buf: Buffer, offset: number, entryTimeoutMs: number): void {
  buf.fill(0, offset, offset + fuse_entry_out.size);
  writeTimeout(
    buf,
    offset + fuse_entry_out.entry_valid,
    offset + fuse_entry_out.entry_valid_nsec,
    entryTimeoutMs,
  );
}

export function writeAttrOut(buf: Buffer, offset: number, reply: AttrReply): void {
  writeTimeout(
    buf,
    offset + fuse_attr_out.attr_valid,
    offset + fuse_attr_out.attr_valid_nsec,
    reply.attrTimeoutMs,
  );
  buf.writeUInt32LE(0, offset + fuse_attr_out.attr_valid_nsec + 4);
  writeAttr(buf, offset + fuse_attr_out.attr, reply.attr);
}

export function openFlagsOf(reply: OpenReply): number {
  let flags = 0;
  if (reply.directIo) flags |= Fopen.DIRECT_IO;
  if (reply.keepCache) flags |= Fopen.KEEP_CACHE;
  if (reply.nonSeekable) flags |= Fopen.NONSEEKABLE;
  if (reply.cacheDir) flags |= Fopen.CACHE_DIR;
  return flags;
}

export function writeOpenOut(buf: Buffer, offset: number, reply: OpenReply): void {
  writeU64(buf, offset + fuse_open_out.fh, reply.fh);
  buf.writeUInt32LE(openFlagsOf(reply), offset + fuse_open_out.open_flags);
  buf.writeUInt32LE(0, offset + fuse_open_out.open_flags + 4);
}

export function writeStatfs(buf: Buffer, offset: number, st: StatFs): void {
  buf.fill(0, offset, offset + fuse_kstatfs.size);
  writeU64(buf, offset + fuse_kstatfs.blocks, st.blocks);
  writeU64(buf, offset + fuse_kstatfs.bfree, st.blocksFree);
  writeU64(buf, offset + fuse_kstatfs.bavail, st.blocksAvailable);
  writeU64(buf, offset + fuse_kstatfs.files, st.files);
  writeU64(buf, offset + fuse_kstatfs.ffree, st.filesFree);
  buf.writeUInt32LE(st.blockSizeBytes, offset + fuse_kstatfs.bsize);
  buf.writeUInt32LE(st.nameMaxBytes, offset + fuse_kstatfs.namelen);
  buf.writeUInt32LE(st.fragmentSizeBytes, offset + fuse_kstatfs.frsize);
}

/** The kernel's OFFSET_MAX, "to end of file" in a lock. */
const OFFSET_MAX = 0x7fff_ffff_ffff_ffffn;

/** A lock range end of OFFSET_MAX (to end of file) reads as Number.MAX_SAFE_INTEGER. */
export function readLock(buf: Buffer, offset: number): FileLock {
  const end = buf.readBigUInt64LE(offset + fuse_file_lock.end);
  return {
    start: readU64(buf, offset + fuse_file_lock.start),
    end: end >= BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(end),
    type: buf.readUInt32LE(offset + fuse_file_lock.type),
    pid: buf.readUInt32LE(offset + fuse_file_lock.pid),
  };
}

export function writeLock(buf: Buffer, offset: number, lock: FileLock): void {
  writeU64(buf, offset + fuse_file_lock.start, lock.start);
  if (lock.end >= Number.MAX_SAFE_INTEGER) buf.writeBigUInt64LE(OFFSET_MAX, offset + fuse_file_lock.end);
  else writeU64(buf, offset + fuse_file_lock.end, lock.end);
  buf.writeUInt32LE(lock.type, offset + fuse_file_lock.type);
  buf.writeUInt32LE(lock.pid, offset + fuse_file_lock.pid);
}

/** Rounds a record length up to the 8-byte alignment of directory entries (FUSE_DIRENT_ALIGN). */
export function direntAlign(length: number): number {
  return (length + 7) & ~7;
}

/**
 * Reads a NUL-terminated name starting at `offset` (names in requests are C strings).
 * Returns the name and the offset just past its NUL.
 */
export function readCString(buf: Buffer, offset: number, end: number): [string, number] {
  let nul = buf.indexOf(0, offset);
  if (nul < 0 || nul > end) nul = end;
  return [buf.toString('utf8', offset, nul), nul + 1];
}
