import { Errno, encodeName, fsError, type Ino } from '../common/index.js';
import {
  fuse_access_in,
  fuse_attr_out,
  fuse_getattr_in,
  fuse_getxattr_in,
  fuse_kstatfs,
  fuse_link_in,
  fuse_mkdir_in,
  fuse_mknod_in,
  fuse_rename2_in,
  fuse_rename_in,
  fuse_setxattr_in,
  FUSE_COMPAT_SETXATTR_IN_SIZE,
  GETATTR_FH,
} from './abi.js';
import { readCString, readName, readU32, readU64, writeAttrOut, writeStatfs } from './codec.js';
import type { FuseRequest } from './request.js';
import type { FuseSession } from './session.js';
import { decodeSetattr } from './setattr.js';
import { B, defaultStatFs, replyEntry, replySized, unsupported, type Op } from './op-helpers.js';

/** Opcodes about names and inodes: lookup, attributes, links, directories entries, xattrs. */
export const nameOps: Op[] = [
  {
    name: 'LOOKUP',
    minBodyBytes: 1,
    handle: async (s, req) => {
      const name = readName(req.buf, B, req.end);
      replyEntry(s, req, await s.fs.lookup(req, req.nodeid, name));
    },
  },
  {
    name: 'GETATTR',
    minBodyBytes: 0,
    handle: async (s, req) => {
      const hasFh =
        req.end - B >= fuse_getattr_in.size &&
        (readU32(req.buf, B + fuse_getattr_in.getattr_flags) & GETATTR_FH) !== 0;
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
      s.replyData(req, encodeName(await s.fs.readlink(req, req.nodeid)));
    },
  },
  {
    name: 'SYMLINK',
    minBodyBytes: 2,
    handle: async (s, req) => {
      if (!s.fs.symlink) throw unsupported('symlink');
      const [name, next] = readCString(req.buf, B, req.end);
      const target = readName(req.buf, next, req.end);
      replyEntry(s, req, await s.fs.symlink(req, req.nodeid, name, target));
    },
  },
  {
    name: 'MKNOD',
    minBodyBytes: fuse_mknod_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.mknod) throw unsupported('mknod');
      const buf = req.buf;
      req.umask = readU32(buf, B + fuse_mknod_in.umask);
      const name = readName(buf, B + fuse_mknod_in.size, req.end);
      const mode = readU32(buf, B + fuse_mknod_in.mode);
      replyEntry(s, req, await s.fs.mknod(req, req.nodeid, name, mode, readU32(buf, B + fuse_mknod_in.rdev)));
    },
  },
  {
    name: 'MKDIR',
    minBodyBytes: fuse_mkdir_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.mkdir) throw unsupported('mkdir');
      req.umask = readU32(req.buf, B + fuse_mkdir_in.umask);
      const name = readName(req.buf, B + fuse_mkdir_in.size, req.end);
      replyEntry(s, req, await s.fs.mkdir(req, req.nodeid, name, readU32(req.buf, B + fuse_mkdir_in.mode)));
    },
  },
  {
    name: 'UNLINK',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.unlink) throw unsupported('unlink');
      await s.fs.unlink(req, req.nodeid, readName(req.buf, B, req.end));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'RMDIR',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.rmdir) throw unsupported('rmdir');
      await s.fs.rmdir(req, req.nodeid, readName(req.buf, B, req.end));
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
    handle: (s, req) => rename(s, req, fuse_rename2_in.size, readU32(req.buf, B + fuse_rename2_in.flags)),
  },
  {
    name: 'LINK',
    minBodyBytes: fuse_link_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.link) throw unsupported('link');
      const ino = readU64(req.buf, B + fuse_link_in.oldnodeid) as Ino;
      const name = readName(req.buf, B + fuse_link_in.size, req.end);
      replyEntry(s, req, await s.fs.link(req, ino, req.nodeid, name));
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
    name: 'SETXATTR',
    minBodyBytes: FUSE_COMPAT_SETXATTR_IN_SIZE + 1,
    handle: async (s, req) => {
      if (!s.fs.setxattr) throw unsupported('extended attributes');
      const buf = req.buf;
      const size = readU32(buf, B + fuse_setxattr_in.size_);
      const [name, valueStart] = readCString(buf, B + FUSE_COMPAT_SETXATTR_IN_SIZE, req.end);
      if (valueStart + size > req.end) throw fsError.EINVAL(`SETXATTR value of ${size} bytes is truncated`);
      req.retainsBuffer = true;
      const value = buf.subarray(valueStart, valueStart + size);
      await s.fs.setxattr(req, req.nodeid, name, value, readU32(buf, B + fuse_setxattr_in.flags));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'GETXATTR',
    minBodyBytes: fuse_getxattr_in.size + 1,
    handle: async (s, req) => {
      if (!s.fs.getxattr) throw unsupported('extended attributes');
      const size = readU32(req.buf, B + fuse_getxattr_in.size_);
      const name = readName(req.buf, B + fuse_getxattr_in.size, req.end);
      replySized(s, req, await s.fs.getxattr(req, req.nodeid, name), size);
    },
  },
  {
    name: 'LISTXATTR',
    minBodyBytes: fuse_getxattr_in.size,
    handle: async (s, req) => {
      if (!s.fs.listxattr) throw unsupported('extended attributes');
      const size = readU32(req.buf, B + fuse_getxattr_in.size_);
      const names = await s.fs.listxattr(req, req.nodeid);
      const list = encodeName(names.map((name) => name + '\0').join(''));
      replySized(s, req, list, size);
    },
  },
  {
    name: 'REMOVEXATTR',
    minBodyBytes: 1,
    handle: async (s, req) => {
      if (!s.fs.removexattr) throw unsupported('extended attributes');
      await s.fs.removexattr(req, req.nodeid, readName(req.buf, B, req.end));
      s.replyOut(req, 0);
    },
  },
  {
    name: 'ACCESS',
    minBodyBytes: fuse_access_in.size,
    handle: async (s, req) => {
      // ENOSYS: the kernel stops asking and grants access(2) itself (mode bits with default_permissions).
      if (!s.fs.access) return s.replyError(req, Errno.ENOSYS);
      await s.fs.access(req, req.nodeid, readU32(req.buf, B + fuse_access_in.mask));
      s.replyOut(req, 0);
    },
  },
];

async function rename(s: FuseSession, req: FuseRequest, inSize: number, flags: number): Promise<void> {
  if (!s.fs.rename) throw unsupported('rename');
  const newParent = readU64(req.buf, B) as Ino;
  const [name, next] = readCString(req.buf, B + inSize, req.end);
  const newName = readName(req.buf, next, req.end);
  await s.fs.rename(req, req.nodeid, name, newParent, newName, flags);
  s.replyOut(req, 0);
}
