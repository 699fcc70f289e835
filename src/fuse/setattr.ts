import { Fattr, fuse_setattr_in } from './abi.js';
import { readS64, readU64 } from './codec.js';
import type { SetAttrIn } from './filesystem.js';

/** Decodes fuse_setattr_in at `offset` into the fields its `valid` bits name. */
export function decodeSetattr(buf: Buffer, offset: number): SetAttrIn {
  const valid = buf.readUInt32LE(offset + fuse_setattr_in.valid);
  const changes: SetAttrIn = {};
  if (valid & Fattr.MODE) changes.mode = buf.readUInt32LE(offset + fuse_setattr_in.mode);
  if (valid & Fattr.UID) changes.uid = buf.readUInt32LE(offset + fuse_setattr_in.uid);
  if (valid & Fattr.GID) changes.gid = buf.readUInt32LE(offset + fuse_setattr_in.gid);
  if (valid & Fattr.SIZE) changes.sizeBytes = readU64(buf, offset + fuse_setattr_in.size_);
  // The kernel sets FATTR_ATIME together with FATTR_ATIME_NOW: "now" wins.
  if (valid & Fattr.ATIME_NOW) changes.atime = 'now';
  else if (valid & Fattr.ATIME) {
    changes.atime = {
      sec: readS64(buf, offset + fuse_setattr_in.atime),
      nsec: buf.readUInt32LE(offset + fuse_setattr_in.atimensec),
    };
  }
  if (valid & Fattr.MTIME_NOW) changes.mtime = 'now';
  else if (valid & Fattr.MTIME) {
    changes.mtime = {
      sec: readS64(buf, offset + fuse_setattr_in.mtime),
      nsec: buf.readUInt32LE(offset + fuse_setattr_in.mtimensec),
    };
  }
  if (valid & Fattr.CTIME) {
    changes.ctime = {
      sec: readS64(buf, offset + fuse_setattr_in.ctime),
      nsec: buf.readUInt32LE(offset + fuse_setattr_in.ctimensec),
    };
  }
  if (valid & Fattr.FH) changes.fh = readU64(buf, offset + fuse_setattr_in.fh);
  if (valid & Fattr.LOCKOWNER) changes.lockOwner = buf.readBigUInt64LE(offset + fuse_setattr_in.lock_owner);
  if (valid & Fattr.KILL_SUIDGID) changes.killSuidgid = true;
  return changes;
}
