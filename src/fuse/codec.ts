import {
  fuse_attr,
  fuse_attr_out,
  fuse_entry_out,
  fuse_file_lock,
  fuse_kstatfs,
  fuse_open_out,
  Fopen,
} from './abi.js';
import { decodeName } from '../common/index.js';
import type { AttrReply, Entry, FileLock, FuseAttr, OpenReply, StatFs } from './filesystem.js';

// Plain struct codecs over Buffers. 64-bit fields are read and written as two 32-bit
// halves: a JS number holds every inode number, handle and offset we use (< 2^53)
// exactly, and this avoids allocating a BigInt per field on the request path.

const TWO_32 = 0x1_0000_0000;

/**
 * 32-bit little-endian fields by byte, without Buffer's prototype methods: in optimized
 * code every `buf.writeUInt32LE` went through a generic property load (perf of
 * bench/fuse/dispatch.ts: ~13% of the request path in load ICs). Bounds are checked as
 * Buffer's methods do; values are taken modulo 2^32, so negative int32 values come out as
 * two's complement.
 */
export function writeU32(buf: Buffer, offset: number, value: number): void {
  if (offset < 0 || offset + 4 > buf.length) throw outOfRange(buf, offset);
  buf[offset] = value;
  buf[offset + 1] = value >>> 8;
  buf[offset + 2] = value >>> 16;
  buf[offset + 3] = value >>> 24;
}

export function readU32(buf: Buffer, offset: number): number {
  if (offset < 0 || offset + 4 > buf.length) throw outOfRange(buf, offset);
  return (buf[offset] | (buf[offset + 1] << 8) | (buf[offset + 2] << 16)) + buf[offset + 3] * 0x100_0000;
}

export function readI32(buf: Buffer, offset: number): number {
  return readU32(buf, offset) | 0;
}

function outOfRange(buf: Buffer, offset: number): RangeError {
  return new RangeError(`32-bit field at offset ${offset} is outside a buffer of ${buf.length} bytes`);
}

/** An unsigned 64-bit field as a number (exact below 2^53). */
export function readU64(buf: Buffer, offset: number): number {
  return readU32(buf, offset) + readU32(buf, offset + 4) * TWO_32;
}

/** A signed 64-bit field as a number (exact within ±2^53). */
export function readS64(buf: Buffer, offset: number): number {
  return readU32(buf, offset) + readI32(buf, offset + 4) * TWO_32;
}

/** Writes an integer in ±2^53 as a 64-bit two's complement field. */
export function writeS64(buf: Buffer, offset: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  writeU32(buf, offset, value - high * TWO_32);
  writeU32(buf, offset + 4, high);
}

/** Writes a non-negative integer below 2^53 as an unsigned 64-bit field. */
export function writeU64(buf: Buffer, offset: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  writeU32(buf, offset, value - high * TWO_32);
  writeU32(buf, offset + 4, high);
}

/** Splits a timeout in milliseconds into the (seconds, nanoseconds) pair the kernel wants. */
function writeTimeout(buf: Buffer, secOffset: number, nsecOffset: number, timeoutMs: number): void {
  const ms = timeoutMs > 0 ? timeoutMs : 0;
  const sec = Math.floor(ms / 1000);
  writeU64(buf, secOffset, sec);
  writeU32(buf, nsecOffset, Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)));
}

export function writeAttr(buf: Buffer, offset: number, attr: FuseAttr): void {
  writeU64(buf, offset + fuse_attr.ino, attr.ino);
  writeU64(buf, offset + fuse_attr.size_, attr.sizeBytes);
  writeU64(buf, offset + fuse_attr.blocks, attr.blocks);
  writeS64(buf, offset + fuse_attr.atime, attr.atimeSec);
  writeS64(buf, offset + fuse_attr.mtime, attr.mtimeSec);
  writeS64(buf, offset + fuse_attr.ctime, attr.ctimeSec);
  writeU32(buf, offset + fuse_attr.atimensec, attr.atimeNsec);
  writeU32(buf, offset + fuse_attr.mtimensec, attr.mtimeNsec);
  writeU32(buf, offset + fuse_attr.ctimensec, attr.ctimeNsec);
  writeU32(buf, offset + fuse_attr.mode, attr.mode >>> 0);
  writeU32(buf, offset + fuse_attr.nlink, attr.nlink >>> 0);
  writeU32(buf, offset + fuse_attr.uid, attr.uid >>> 0);
  writeU32(buf, offset + fuse_attr.gid, attr.gid >>> 0);
  writeU32(buf, offset + fuse_attr.rdev, attr.rdev >>> 0);
  writeU32(buf, offset + fuse_attr.blksize, attr.blksize >>> 0);
  writeU32(buf, offset + fuse_attr.flags, 0);
}

export function readAttr(buf: Buffer, offset: number): FuseAttr {
  return {
    ino: readU64(buf, offset + fuse_attr.ino) as FuseAttr['ino'],
    sizeBytes: readU64(buf, offset + fuse_attr.size_),
    blocks: readU64(buf, offset + fuse_attr.blocks),
    atimeSec: readS64(buf, offset + fuse_attr.atime),
    mtimeSec: readS64(buf, offset + fuse_attr.mtime),
    ctimeSec: readS64(buf, offset + fuse_attr.ctime),
    atimeNsec: readU32(buf, offset + fuse_attr.atimensec),
    mtimeNsec: readU32(buf, offset + fuse_attr.mtimensec),
    ctimeNsec: readU32(buf, offset + fuse_attr.ctimensec),
    mode: readU32(buf, offset + fuse_attr.mode),
    nlink: readU32(buf, offset + fuse_attr.nlink),
    uid: readU32(buf, offset + fuse_attr.uid),
    gid: readU32(buf, offset + fuse_attr.gid),
    rdev: readU32(buf, offset + fuse_attr.rdev),
    blksize: readU32(buf, offset + fuse_attr.blksize),
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
  writeU32(buf, offset + fuse_attr_out.attr_valid_nsec + 4, 0);
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
  writeU32(buf, offset + fuse_open_out.open_flags, openFlagsOf(reply));
  writeU32(buf, offset + fuse_open_out.open_flags + 4, 0);
}

export function writeStatfs(buf: Buffer, offset: number, st: StatFs): void {
  buf.fill(0, offset, offset + fuse_kstatfs.size);
  writeU64(buf, offset + fuse_kstatfs.blocks, st.blocks);
  writeU64(buf, offset + fuse_kstatfs.bfree, st.blocksFree);
  writeU64(buf, offset + fuse_kstatfs.bavail, st.blocksAvailable);
  writeU64(buf, offset + fuse_kstatfs.files, st.files);
  writeU64(buf, offset + fuse_kstatfs.ffree, st.filesFree);
  writeU32(buf, offset + fuse_kstatfs.bsize, st.blockSizeBytes);
  writeU32(buf, offset + fuse_kstatfs.namelen, st.nameMaxBytes);
  writeU32(buf, offset + fuse_kstatfs.frsize, st.fragmentSizeBytes);
}

/** The kernel's OFFSET_MAX, "to end of file" in a lock. */
const OFFSET_MAX = 0x7fff_ffff_ffff_ffffn;

/** A lock range end of OFFSET_MAX (to end of file) reads as Number.MAX_SAFE_INTEGER. */
export function readLock(buf: Buffer, offset: number): FileLock {
  const end = buf.readBigUInt64LE(offset + fuse_file_lock.end);
  return {
    start: readU64(buf, offset + fuse_file_lock.start),
    end: end >= BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(end),
    type: readU32(buf, offset + fuse_file_lock.type),
    pid: readU32(buf, offset + fuse_file_lock.pid),
  };
}

export function writeLock(buf: Buffer, offset: number, lock: FileLock): void {
  writeU64(buf, offset + fuse_file_lock.start, lock.start);
  if (lock.end >= Number.MAX_SAFE_INTEGER) buf.writeBigUInt64LE(OFFSET_MAX, offset + fuse_file_lock.end);
  else writeU64(buf, offset + fuse_file_lock.end, lock.end);
  writeU32(buf, offset + fuse_file_lock.type, lock.type);
  writeU32(buf, offset + fuse_file_lock.pid, lock.pid);
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
  const nul = nulOrEnd(buf, offset, end);
  return [decodeName(buf, offset, nul), nul + 1];
}

/** `readCString` for a request's last (usually only) name: no tuple allocated on the hot path. */
export function readName(buf: Buffer, offset: number, end: number): string {
  return decodeName(buf, offset, nulOrEnd(buf, offset, end));
}

function nulOrEnd(buf: Buffer, offset: number, end: number): number {
  const nul = buf.indexOf(0, offset);
  return nul < 0 || nul > end ? end : nul;
}
