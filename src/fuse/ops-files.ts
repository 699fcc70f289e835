import { constants } from 'node:fs';
import { Errno, fsError, type Ino } from '../common/index.js';
import {
  FSYNC_FDATASYNC,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_fsync_in,
  fuse_lk_in,
  fuse_lk_out,
  fuse_lseek_in,
  fuse_lseek_out,
  fuse_open_in,
  fuse_open_out,
  fuse_read_in,
  fuse_release_in,
  fuse_write_in,
  fuse_write_out,
  LK_FLOCK,
  OPEN_KILL_SUIDGID,
  RELEASE_FLOCK_UNLOCK,
} from './abi.js';
import {
  readName,
  readLock,
  readU32,
  readU64,
  writeLock,
  writeOpenOut,
  writeU32,
  writeU64,
} from './codec.js';
import { packDirents } from './dirents.js';
import type { FuseRequest } from './request.js';
import type { FuseSession } from './session.js';
import { B, replyCreate, unsupported, type Op } from './op-helpers.js';

/**
 * With the writeback cache the kernel owns the file size and turns appends into writes
 * at explicit offsets: a file system honouring O_APPEND itself would write at its own
 * (stale) end of file. So O_APPEND never reaches it then, as libfuse's examples do.
 */
function openFlags(s: FuseSession, flags: number): number {
  return s.initInfo?.writebackCache ? flags & ~constants.O_APPEND : flags;
}

/** Opcodes about open files and directories: I/O, handles, listings, locks. */
export const fileOps: Op[] = [
  {
    name: 'OPEN',
    minBodyBytes: fuse_open_in.size,
    handle: async (s, req) => {
      if (!s.fs.open) throw unsupported('open');
      const flags = openFlags(s, readU32(req.buf, B + fuse_open_in.flags));
      const kill = (readU32(req.buf, B + fuse_open_in.open_flags) & OPEN_KILL_SUIDGID) !== 0;
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
      req.umask = readU32(buf, B + fuse_create_in.umask);
      const name = readName(buf, B + fuse_create_in.size, req.end);
      const mode = readU32(buf, B + fuse_create_in.mode);
      const flags = openFlags(s, readU32(buf, B + fuse_create_in.flags));
      replyCreate(s, req, await s.fs.create(req, req.nodeid, name, mode, flags));
    },
  },
  {
    name: 'TMPFILE',
    minBodyBytes: fuse_create_in.size,
    handle: async (s, req) => {
      if (!s.fs.tmpfile) throw unsupported('O_TMPFILE');
      req.umask = readU32(req.buf, B + fuse_create_in.umask);
      const mode = readU32(req.buf, B + fuse_create_in.mode);
      const flags = readU32(req.buf, B + fuse_create_in.flags);
      replyCreate(s, req, await s.fs.tmpfile(req, req.nodeid, mode, flags));
    },
  },
  {
    name: 'READ',
    minBodyBytes: fuse_read_in.size,
    handle: async (s, req) => {
      if (!s.fs.read) throw unsupported('read');
      const buf = req.buf;
      const size = readU32(buf, B + fuse_read_in.size_);
      // A kernel never asks for more than max_pages; trusting a larger size would let one
      // frame make the file system allocate gigabytes. Refuse it rather than clamp: a
      // clamped answer would read as a short read (end of file) to the caller.
      if (size > s.maxReadBytes) {
        throw fsError.EINVAL(
          `READ of ${size} bytes exceeds the negotiated maximum of ${s.maxReadBytes} bytes (max_pages); refused`,
        );
      }
      const fh = readU64(buf, B + fuse_read_in.fh);
      const offset = readU64(buf, B + fuse_read_in.offset);
      if (s.fs.readLent) {
        const lent = await s.fs.readLent(req, req.nodeid, fh, offset, size);
        try {
          // Both transports copy the reply before returning (writev, or into the ring's entry).
          s.replyData(req, lent.data.length > size ? lent.data.subarray(0, size) : lent.data);
        } finally {
          lent.done();
        }
        return;
      }
      const data = await s.fs.read(req, req.nodeid, fh, offset, size);
      s.replyData(req, data.length > size ? data.subarray(0, size) : data);
    },
  },
  {
    name: 'WRITE',
    minBodyBytes: fuse_write_in.size,
    handle: async (s, req) => {
      if (!s.fs.write) throw unsupported('write');
      const buf = req.buf;
      const size = readU32(buf, B + fuse_write_in.size_);
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
        readU32(buf, B + fuse_write_in.write_flags),
        openFlags(s, readU32(buf, B + fuse_write_in.flags)),
      );
      writeU32(s.out, 16 + fuse_write_out.size_, written);
      writeU32(s.out, 20, 0);
      s.replyOut(req, fuse_write_out.size);
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
          readU32(buf, B + fuse_release_in.flags),
          buf.readBigUInt64LE(B + fuse_release_in.lock_owner),
          (readU32(buf, B + fuse_release_in.release_flags) & RELEASE_FLOCK_UNLOCK) !== 0,
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
      const datasync = (readU32(req.buf, B + fuse_fsync_in.fsync_flags) & FSYNC_FDATASYNC) !== 0;
      await s.fs.fsync(req, req.nodeid, readU64(req.buf, B + fuse_fsync_in.fh), datasync);
      s.replyOut(req, 0);
    },
  },
  {
    name: 'FLUSH',
    minBodyBytes: fuse_flush_in.size,
    handle: async (s, req) => {
      // ENOSYS, as libfuse answers without a flush handler: the kernel then stops sending
      // FLUSH (one round trip on every close(2)) and reports success to close itself.
      if (!s.fs.flush) return s.replyError(req, Errno.ENOSYS);
      const fh = readU64(req.buf, B + fuse_flush_in.fh);
      await s.fs.flush(req, req.nodeid, fh, req.buf.readBigUInt64LE(B + fuse_flush_in.lock_owner));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'OPENDIR',
    minBodyBytes: fuse_open_in.size,
    handle: async (s, req) => {
      const flags = readU32(req.buf, B + fuse_open_in.flags);
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
      // ENOSYS: the kernel stops asking and reports success for fsync on directories.
      if (!s.fs.fsyncdir) return s.replyError(req, Errno.ENOSYS);
      const datasync = (readU32(req.buf, B + fuse_fsync_in.fsync_flags) & FSYNC_FDATASYNC) !== 0;
      await s.fs.fsyncdir(req, req.nodeid, readU64(req.buf, B + fuse_fsync_in.fh), datasync);
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
        readU32(buf, B + fuse_fallocate_in.mode),
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
      const result = await s.fs.lseek(req, req.nodeid, fh, offset, readU32(buf, B + fuse_lseek_in.whence));
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
      writeU32(s.out, 16 + fuse_write_out.size_, copied);
      writeU32(s.out, 20, 0);
      s.replyOut(req, fuse_write_out.size);
    },
  },
  // ENOSYS makes the kernel stop asking and report success for syncfs.
];

async function readdir(s: FuseSession, req: FuseRequest, plus: boolean): Promise<void> {
  if (!s.fs.readdir) throw unsupported('readdir');
  const fh = readU64(req.buf, B + fuse_read_in.fh);
  const offset = readU64(req.buf, B + fuse_read_in.offset);
  const size = Math.min(readU32(req.buf, B + fuse_read_in.size_), s.out.length - 16);
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
  const isFlock = (readU32(buf, B + fuse_lk_in.lk_flags) & LK_FLOCK) !== 0;
  await s.fs.setlk(req, req.nodeid, fh, owner, readLock(buf, B + fuse_lk_in.lk), sleep, isFlock);
  s.replyOut(req, 0);
}
