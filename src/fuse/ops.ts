import { Errno, FsError, fsError, type Ino } from '../common/index.js';
import {
  FSYNC_FDATASYNC,
  fuse_access_in,
  fuse_attr_out,
  fuse_batch_forget_in,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_entry_out,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_forget_one,
  fuse_fsync_in,
  fuse_getattr_in,
  fuse_getxattr_in,
  fuse_getxattr_out,
  fuse_in_header,
  fuse_interrupt_in,
  fuse_kstatfs,
  fuse_link_in,
  fuse_lk_in,
  fuse_lk_out,
  fuse_lseek_in,
  fuse_lseek_out,
  fuse_mkdir_in,
  fuse_mknod_in,
  fuse_open_in,
  fuse_open_out,
  fuse_read_in,
  fuse_release_in,
  fuse_rename2_in,
  fuse_rename_in,
  fuse_setxattr_in,
  FUSE_COMPAT_SETXATTR_IN_SIZE,
  fuse_write_in,
  fuse_write_out,
  GETATTR_FH,
  LK_FLOCK,
  OPEN_KILL_SUIDGID,
  Opcode,
  RELEASE_FLOCK_UNLOCK,
} from './abi.js';
import {
  readCString,
  readLock,
  readU64,
  writeAttrOut,
  writeEntryOut,
  writeLock,
  writeNegativeEntryOut,
  writeOpenOut,
  writeStatfs,
  writeU64,
} from './codec.js';
import { packDirents } from './dirents.js';
import type { CreateReply, Entry, NegativeEntry, StatFs } from './filesystem.js';
import { handleInit } from './init.js';
import type { FuseRequest } from './request.js';
import type { FuseSession } from './session.js';
import { decodeSetattr } from './setattr.js';

/** One row of the opcode table. */
export interface Op {
  name: string;
  /** The smallest body (after the in-header) this opcode can arrive with. */
  minBodyBytes: number;
  /** Answers the request. Must read everything it needs from `req.buf` before its first await, unless it sets `req.retainsBuffer`. */
  handle?: (s: FuseSession, req: FuseRequest) => Promise<void>;
  /** For the opcodes the kernel expects no answer to. */
  noReply?: (s: FuseSession, buf: Buffer, length: number, nodeid: Ino) => void;
}

/** Where a request's body starts. */
const B = fuse_in_header.size;

const unsupported = (what: string) => fsError.ENOSYS(`${what} is not supported by this file system`);

function replyEntry(s: FuseSession, req: FuseRequest, entry: Entry | NegativeEntry): void {
  if ('negative' in entry) {
    writeNegativeEntryOut(s.out, 16, entry.entryTimeoutMs);
    s.replyOut(req, fuse_entry_out.size);
    return;
  }
  writeEntryOut(s.out, 16, entry);
  if (s.replyOut(req, fuse_entry_out.size)) s.countLookup(entry.attr.ino);
}

function replyCreate(s: FuseSession, req: FuseRequest, reply: CreateReply): void {
  writeEntryOut(s.out, 16, reply);
  writeOpenOut(s.out, 16 + fuse_entry_out.size, reply);
  if (s.replyOut(req, fuse_entry_out.size + fuse_open_out.size)) s.countLookup(reply.attr.ino);
}

/** GETXATTR/LISTXATTR: size 0 asks only for the length; a too-small buffer is ERANGE. */
function replySized(s: FuseSession, req: FuseRequest, value: Buffer, sizeAsked: number): void {
  if (sizeAsked === 0) {
    s.out.writeUInt32LE(value.length, 16 + fuse_getxattr_out.size_);
    s.out.writeUInt32LE(0, 20);
    s.replyOut(req, fuse_getxattr_out.size);
  } else if (value.length > sizeAsked) {
    s.replyError(req, Errno.ERANGE);
  } else {
    s.replyData(req, value);
  }
}

/** statfs when the file system has none: what libfuse answers, so df works. */
const defaultStatFs: StatFs = {
  blocks: 0,
  blocksFree: 0,
  blocksAvailable: 0,
  files: 0,
  filesFree: 0,
  blockSizeBytes: 4096,
  nameMaxBytes: 255,
  fragmentSizeBytes: 4096,
};

const ops: Op[] = [
  { name: 'INIT', minBodyBytes: 8, handle: handleInit },
  {
    name: 'LOOKUP',
    minBodyBytes: 1,
    handle: async (s, req) => {
      const [name] = readCString(req.buf, B, req.end);
      replyEntry(s, req, await s.fs.lookup(req, req.nodeid, name));
    },
  },
  {
    name: 'FORGET',
    minBodyBytes: 8,
    noReply: (s, buf, _length, nodeid) => s.forgetLookups(nodeid, readU64(buf, B)),
  },
  {
    name: 'BATCH_FORGET',
    minBodyBytes: fuse_batch_forget_in.size,
    noReply: (s, buf, length) => {
      const count = buf.readUInt32LE(B + fuse_batch_forget_in.count);
      let at = B + fuse_batch_forget_in.size;
      for (let i = 0; i < count && at + fuse_forget_one.size <= length; i++, at += fuse_forget_one.size) {
        s.forgetLookups(
          readU64(buf, at + fuse_forget_one.nodeid),
          readU64(buf, at + fuse_forget_one.nlookup),
        );
      }
    },
  },
  {
    name: 'INTERRUPT',
    minBodyBytes: fuse_interrupt_in.size,
    noReply: (s, buf) => s.interruptRequest(readU64(buf, B + fuse_interrupt_in.unique)),
  },
  // The answer to a NOTIFY_RETRIEVE we never send: nothing to do, and no reply is expected.
  { name: 'NOTIFY_REPLY', minBodyBytes: 0, noReply: () => undefined },
  {
    name: 'GETATTR',
    minBodyBytes: 0,
    handle: async (s, req) => {
      const hasFh =
        req.end - B >= fuse_getattr_in.size &&
        (req.buf.readUInt32LE(B + fuse_getattr_in.getattr_flags) & GETATTR_FH) !== 0;
      const fh = hasFh ? readU64(req.buf, B + fuse_getattr_in.fh) : undefined;
      const reply = await s.fs.getattr(req, req.nodeid, fh);
      writeAttrOut(s.out, 16, reply);
      s.replyOut(req, fuse_attr_out.size);
    },
  },
  {
    name: 'SETATTR',
    minBodyBytes: 88,
    handle: async (s, req) => {
      if (!s.fs.setattr) throw unsupported('setattr');
      const reply = await s.fs.setattr(req, req.nodeid, decodeSetattr(req.buf, B));
      writeAttrOut(s.out, 16, reply);
      s.replyOut(req, fuse_attr_out.size);
    },
  },
  {
    name: 'READLINK',
    minBodyBytes: 0,
    handle: async (s, req) => {
      if (!s.fs.readlink) throw unsupported('readlink');
      s.replyData(req, Buffer.from(await s.fs.readlink(req, req.nodeid), 'utf8'));
    },
  },
  {
    name: 'SYMLINK',
    minBodyBytes: 2,
    handle: async (s, req) => {
      if (!s.fs.symlink) throw unsupported('symlink');
      const [name, next] = readCString(req.buf, B, req.end);
      const [target] = readCString(req.buf, next, req.end);
      replyEntry(s, req, await s.fs.symlink(req, req.nodeid, name, target));
    },
  },
  {
    name: 'MKNOD',
    minBodyBytes: fuse_mknod_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.mknod) throw unsupported('mknod');
      const buf = req.buf;
      req.umask = buf.readUInt32LE(B + fuse_mknod_in.umask);
      const [name] = readCString(buf, B + fuse_mknod_in.size, req.end);
      const mode = buf.readUInt32LE(B + fuse_mknod_in.mode);
      replyEntry(
        s,
        req,
        await s.fs.mknod(req, req.nodeid, name, mode, buf.readUInt32LE(B + fuse_mknod_in.rdev)),
      );
    },
  },
  {
    name: 'MKDIR',
    minBodyBytes: fuse_mkdir_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.mkdir) throw unsupported('mkdir');
      req.umask = req.buf.readUInt32LE(B + fuse_mkdir_in.umask);
      const [name] = readCString(req.buf, B + fuse_mkdir_in.size, req.end);
      replyEntry(
        s,
        req,
        await s.fs.mkdir(req, req.nodeid, name, req.buf.readUInt32LE(B + fuse_mkdir_in.mode)),
      );
    },
  },
  {
    name: 'UNLINK',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.unlink) throw unsupported('unlink');
      await s.fs.unlink(req, req.nodeid, readCString(req.buf, B, req.end)[0]);
      s.replyOut(req, 0);
    },
  },
  {
    name: 'RMDIR',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.rmdir) throw unsupported('rmdir');
      await s.fs.rmdir(req, req.nodeid, readCString(req.buf, B, req.end)[0]);
      s.replyOut(req, 0);
    },
  },
  {
    name: 'RENAME',
    minBodyBytes: fuse_rename_in.size + 2,
    handle: (s, req) => rename(s, req, fuse_rename_in.size, 0),
  },
  {
    name: 'RENAME2',
    minBodyBytes: fuse_rename2_in.size + 2,
    handle: (s, req) => rename(s, req, fuse_rename2_in.size, req.buf.readUInt32LE(B + fuse_rename2_in.flags)),
  },
  {
    name: 'LINK',
    minBodyBytes: fuse_link_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.link) throw unsupported('link');
      const ino = readU64(req.buf, B + fuse_link_in.oldnodeid) as Ino;
      const [name] = readCString(req.buf, B + fuse_link_in.size, req.end);
      replyEntry(s, req, await s.fs.link(req, ino, req.nodeid, name));
    },
  },
  {
    name: 'OPEN',
    minBodyBytes: fuse_open_in.size,
    handle: async (s, req) => {
      if (!s.fs.open) throw unsupported('open');
      const flags = req.buf.readUInt32LE(B + fuse_open_in.flags);
      const kill = (req.buf.readUInt32LE(B + fuse_open_in.open_flags) & OPEN_KILL_SUIDGID) !== 0;
      writeOpenOut(s.out, 16, await s.fs.open(req, req.nodeid, flags, kill));
      s.replyOut(req, fuse_open_out.size);
    },
  },
  {
    name: 'CREATE',
    minBodyBytes: fuse_create_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.create) throw unsupported('create');
      const buf = req.buf;
      req.umask = buf.readUInt32LE(B + fuse_create_in.umask);
      const [name] = readCString(buf, B + fuse_create_in.size, req.end);
      const mode = buf.readUInt32LE(B + fuse_create_in.mode);
      const flags = buf.readUInt32LE(B + fuse_create_in.flags);
      replyCreate(s, req, await s.fs.create(req, req.nodeid, name, mode, flags));
    },
  },
  {
    name: 'TMPFILE',
    minBodyBytes: fuse_create_in.size,
    handle: async (s, req) => {
      if (!s.fs.tmpfile) throw unsupported('O_TMPFILE');
      req.umask = req.buf.readUInt32LE(B + fuse_create_in.umask);
      const mode = req.buf.readUInt32LE(B + fuse_create_in.mode);
      const flags = req.buf.readUInt32LE(B + fuse_create_in.flags);
      replyCreate(s, req, await s.fs.tmpfile(req, req.nodeid, mode, flags));
    },
  },
  {
    name: 'READ',
    minBodyBytes: fuse_read_in.size,
    handle: async (s, req) => {
      if (!s.fs.read) throw unsupported('read');
      const buf = req.buf;
      const size = buf.readUInt32LE(B + fuse_read_in.size_);
      const fh = readU64(buf, B + fuse_read_in.fh);
      const data = await s.fs.read(req, req.nodeid, fh, readU64(buf, B + fuse_read_in.offset), size);
      s.replyData(req, data.length > size ? data.subarray(0, size) : data);
    },
  },
  {
    name: 'WRITE',
    minBodyBytes: fuse_write_in.size,
    handle: async (s, req) => {
      if (!s.fs.write) throw unsupported('write');
      const buf = req.buf;
      const size = buf.readUInt32LE(B + fuse_write_in.size_);
      const start = B + fuse_write_in.size;
      if (start + size > req.end)
        throw fsError.EINVAL(`WRITE of ${size} bytes carries only ${req.end - start}`);
      req.retainsBuffer = true; // the data is a view into this request buffer until we answer
      const written = await s.fs.write(
        req,
        req.nodeid,
        readU64(buf, B + fuse_write_in.fh),
        readU64(buf, B + fuse_write_in.offset),
        buf.subarray(start, start + size),
        buf.readUInt32LE(B + fuse_write_in.write_flags),
      );
      s.out.writeUInt32LE(written, 16 + fuse_write_out.size_);
      s.out.writeUInt32LE(0, 20);
      s.replyOut(req, fuse_write_out.size);
    },
  },
  {
    name: 'STATFS',
    minBodyBytes: 0,
    handle: async (s, req) => {
      writeStatfs(s.out, 16, s.fs.statfs ? await s.fs.statfs(req, req.nodeid) : defaultStatFs);
      s.replyOut(req, fuse_kstatfs.size);
    },
  },
  {
    name: 'RELEASE',
    minBodyBytes: fuse_release_in.size,
    handle: async (s, req) => {
      const buf = req.buf;
      if (s.fs.release) {
        await s.fs.release(
          req,
          req.nodeid,
          readU64(buf, B + fuse_release_in.fh),
          buf.readUInt32LE(B + fuse_release_in.flags),
          buf.readBigUInt64LE(B + fuse_release_in.lock_owner),
          (buf.readUInt32LE(B + fuse_release_in.release_flags) & RELEASE_FLOCK_UNLOCK) !== 0,
        );
      }
      s.replyOut(req, 0);
    },
  },
  {
    name: 'FSYNC',
    minBodyBytes: fuse_fsync_in.size,
    handle: async (s, req) => {
      if (!s.fs.fsync) throw unsupported('fsync');
      const datasync = (req.buf.readUInt32LE(B + fuse_fsync_in.fsync_flags) & FSYNC_FDATASYNC) !== 0;
      await s.fs.fsync(req, req.nodeid, readU64(req.buf, B + fuse_fsync_in.fh), datasync);
      s.replyOut(req, 0);
    },
  },
  {
    name: 'SETXATTR',
    minBodyBytes: FUSE_COMPAT_SETXATTR_IN_SIZE + 1,
    handle: async (s, req) => {
      if (!s.fs.setxattr) throw unsupported('extended attributes');
      const buf = req.buf;
      const size = buf.readUInt32LE(B + fuse_setxattr_in.size_);
      const [name, valueStart] = readCString(buf, B + FUSE_COMPAT_SETXATTR_IN_SIZE, req.end);
      if (valueStart + size > req.end) throw fsError.EINVAL(`SETXATTR value of ${size} bytes is truncated`);
      req.retainsBuffer = true;
      const value = buf.subarray(valueStart, valueStart + size);
      await s.fs.setxattr(req, req.nodeid, name, value, buf.readUInt32LE(B + fuse_setxattr_in.flags));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'GETXATTR',
    minBodyBytes: fuse_getxattr_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.getxattr) throw unsupported('extended attributes');
      const size = req.buf.readUInt32LE(B + fuse_getxattr_in.size_);
      const [name] = readCString(req.buf, B + fuse_getxattr_in.size, req.end);
      replySized(s, req, await s.fs.getxattr(req, req.nodeid, name), size);
    },
  },
  {
    name: 'LISTXATTR',
    minBodyBytes: fuse_getxattr_in.size,
    handle: async (s, req) => {
      if (!s.fs.listxattr) throw unsupported('extended attributes');
      const size = req.buf.readUInt32LE(B + fuse_getxattr_in.size_);
      const names = await s.fs.listxattr(req, req.nodeid);
      const list = Buffer.from(names.map((name) => name + '\0').join(''), 'utf8');
      replySized(s, req, list, size);
    },
  },
  {
    name: 'REMOVEXATTR',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.removexattr) throw unsupported('extended attributes');
      await s.fs.removexattr(req, req.nodeid, readCString(req.buf, B, req.end)[0]);
      s.replyOut(req, 0);
    },
  },
  {
    name: 'FLUSH',
    minBodyBytes: fuse_flush_in.size,
    handle: async (s, req) => {
      if (s.fs.flush) {
        const fh = readU64(req.buf, B + fuse_flush_in.fh);
        await s.fs.flush(req, req.nodeid, fh, req.buf.readBigUInt64LE(B + fuse_flush_in.lock_owner));
      }
      s.replyOut(req, 0);
    },
  },
  {
    name: 'OPENDIR',
    minBodyBytes: fuse_open_in.size,
    handle: async (s, req) => {
      const flags = req.buf.readUInt32LE(B + fuse_open_in.flags);
      writeOpenOut(s.out, 16, s.fs.opendir ? await s.fs.opendir(req, req.nodeid, flags) : { fh: 0 });
      s.replyOut(req, fuse_open_out.size);
    },
  },
  { name: 'READDIR', minBodyBytes: fuse_read_in.size, handle: (s, req) => readdir(s, req, false) },
  { name: 'READDIRPLUS', minBodyBytes: fuse_read_in.size, handle: (s, req) => readdir(s, req, true) },
  {
    name: 'RELEASEDIR',
    minBodyBytes: fuse_release_in.size,
    handle: async (s, req) => {
      if (s.fs.releasedir) await s.fs.releasedir(req, req.nodeid, readU64(req.buf, B + fuse_release_in.fh));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'FSYNCDIR',
    minBodyBytes: fuse_fsync_in.size,
    handle: async (s, req) => {
      if (s.fs.fsyncdir) {
        const datasync = (req.buf.readUInt32LE(B + fuse_fsync_in.fsync_flags) & FSYNC_FDATASYNC) !== 0;
        await s.fs.fsyncdir(req, req.nodeid, readU64(req.buf, B + fuse_fsync_in.fh), datasync);
      }
      s.replyOut(req, 0);
    },
  },
  {
    name: 'GETLK',
    minBodyBytes: fuse_lk_in.size,
    handle: async (s, req) => {
      if (!s.fs.getlk) throw unsupported('getlk');
      const buf = req.buf;
      const fh = readU64(buf, B + fuse_lk_in.fh);
      const owner = buf.readBigUInt64LE(B + fuse_lk_in.owner);
      const conflict = await s.fs.getlk(req, req.nodeid, fh, owner, readLock(buf, B + fuse_lk_in.lk));
      writeLock(s.out, 16 + fuse_lk_out.lk, conflict);
      s.replyOut(req, fuse_lk_out.size);
    },
  },
  { name: 'SETLK', minBodyBytes: fuse_lk_in.size, handle: (s, req) => setlk(s, req, false) },
  { name: 'SETLKW', minBodyBytes: fuse_lk_in.size, handle: (s, req) => setlk(s, req, true) },
  {
    name: 'ACCESS',
    minBodyBytes: fuse_access_in.size,
    handle: async (s, req) => {
      if (s.fs.access) await s.fs.access(req, req.nodeid, req.buf.readUInt32LE(B + fuse_access_in.mask));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'DESTROY',
    minBodyBytes: 0,
    handle: async (s, req) => {
      await s.destroyFs();
      s.replyOut(req, 0);
    },
  },
  { name: 'BMAP', minBodyBytes: 0, handle: () => Promise.reject(unsupported('bmap')) },
  {
    name: 'IOCTL',
    minBodyBytes: 0,
    handle: () => Promise.reject(new FsError(Errno.ENOTTY, 'ioctl is not supported on this file system')),
  },
  { name: 'POLL', minBodyBytes: 0, handle: () => Promise.reject(unsupported('poll')) },
  {
    name: 'FALLOCATE',
    minBodyBytes: fuse_fallocate_in.size,
    handle: async (s, req) => {
      if (!s.fs.fallocate) throw unsupported('fallocate');
      const buf = req.buf;
      await s.fs.fallocate(
        req,
        req.nodeid,
        readU64(buf, B + fuse_fallocate_in.fh),
        readU64(buf, B + fuse_fallocate_in.offset),
        readU64(buf, B + fuse_fallocate_in.length),
        buf.readUInt32LE(B + fuse_fallocate_in.mode),
      );
      s.replyOut(req, 0);
    },
  },
  {
    name: 'LSEEK',
    minBodyBytes: fuse_lseek_in.size,
    handle: async (s, req) => {
      if (!s.fs.lseek) throw unsupported('lseek');
      const buf = req.buf;
      const fh = readU64(buf, B + fuse_lseek_in.fh);
      const offset = readU64(buf, B + fuse_lseek_in.offset);
      const result = await s.fs.lseek(
        req,
        req.nodeid,
        fh,
        offset,
        buf.readUInt32LE(B + fuse_lseek_in.whence),
      );
      writeU64(s.out, 16 + fuse_lseek_out.offset, result);
      s.replyOut(req, fuse_lseek_out.size);
    },
  },
  {
    name: 'COPY_FILE_RANGE',
    minBodyBytes: fuse_copy_file_range_in.size,
    handle: async (s, req) => {
      if (!s.fs.copyFileRange) throw unsupported('copy_file_range');
      const buf = req.buf;
      const at = (field: number) => readU64(buf, B + field);
      const copied = await s.fs.copyFileRange(
        req,
        req.nodeid,
        at(fuse_copy_file_range_in.fh_in),
        at(fuse_copy_file_range_in.off_in),
        at(fuse_copy_file_range_in.nodeid_out) as Ino,
        at(fuse_copy_file_range_in.fh_out),
        at(fuse_copy_file_range_in.off_out),
        at(fuse_copy_file_range_in.len),
        at(fuse_copy_file_range_in.flags),
      );
      s.out.writeUInt32LE(copied, 16 + fuse_write_out.size_);
      s.out.writeUInt32LE(0, 20);
      s.replyOut(req, fuse_write_out.size);
    },
  },
  // ENOSYS makes the kernel stop asking and report success for syncfs.
  { name: 'SYNCFS', minBodyBytes: 0, handle: () => Promise.reject(unsupported('syncfs')) },
];

async function rename(s: FuseSession, req: FuseRequest, inSize: number, flags: number): Promise<void> {
  if (!s.fs.rename) throw unsupported('rename');
  const newParent = readU64(req.buf, B) as Ino;
  const [name, next] = readCString(req.buf, B + inSize, req.end);
  const [newName] = readCString(req.buf, next, req.end);
  await s.fs.rename(req, req.nodeid, name, newParent, newName, flags);
  s.replyOut(req, 0);
}

async function readdir(s: FuseSession, req: FuseRequest, plus: boolean): Promise<void> {
  if (!s.fs.readdir) throw unsupported('readdir');
  const fh = readU64(req.buf, B + fuse_read_in.fh);
  const offset = readU64(req.buf, B + fuse_read_in.offset);
  const size = Math.min(req.buf.readUInt32LE(B + fuse_read_in.size_), s.out.length - 16);
  const entries = await s.fs.readdir(req, req.nodeid, fh, offset, plus);
  const [bytes, packed] = packDirents(s.out, 16, size, entries, plus);
  if (s.replyOut(req, bytes) && plus) {
    // The kernel takes a reference for every READDIRPLUS entry it receives, except "." and "..".
    for (let i = 0; i < packed; i++) {
      const entry = entries[i].entry;
      const name = entries[i].name;
      if (entry && name !== '.' && name !== '..') s.countLookup(entry.attr.ino);
    }
  }
}

async function setlk(s: FuseSession, req: FuseRequest, sleep: boolean): Promise<void> {
  if (!s.fs.setlk) throw unsupported('setlk');
  const buf = req.buf;
  const fh = readU64(buf, B + fuse_lk_in.fh);
  const owner = buf.readBigUInt64LE(B + fuse_lk_in.owner);
  const isFlock = (buf.readUInt32LE(B + fuse_lk_in.lk_flags) & LK_FLOCK) !== 0;
  await s.fs.setlk(req, req.nodeid, fh, owner, readLock(buf, B + fuse_lk_in.lk), sleep, isFlock);
  s.replyOut(req, 0);
}

const opcodeByName = Opcode as Record<string, number>;

/** The dispatch table, indexed by opcode. */
export const opTable: Array<Op | undefined> = [];
for (const op of ops) {
  const opcode = opcodeByName[op.name];
  if (opcode === undefined) throw new Error(`opcode table: unknown opcode name ${op.name}`);
  opTable[opcode] = op;
}

/** The opcode's name for log lines. */
export function opcodeName(opcode: number): string {
  return opTable[opcode]?.name ?? `opcode ${opcode}`;
}
