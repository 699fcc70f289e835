import type { Caller } from './api.js';
import type { InodeRow } from './engine.js';

// Linux posix_acl xattr format (include/uapi/linux/posix_acl_xattr.h): a u32 version (2),
// then 8-byte entries {u16 tag, u16 perm, u32 id}, little-endian.
const ACL_VERSION = 2;
const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;

export const ACL_ACCESS_XATTR = 'system.posix_acl_access';
export const ACL_DEFAULT_XATTR = 'system.posix_acl_default';

interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

function parseAcl(value: Buffer): AclEntry[] | undefined {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== ACL_VERSION)
    return undefined;
  const entries: AclEntry[] = [];
  for (let at = 4; at < value.length; at += 8) {
    entries.push({
      tag: value.readUInt16LE(at),
      perm: value.readUInt16LE(at + 2),
      id: value.readUInt32LE(at + 4),
    });
  }
  return entries;
}

/**
 * POSIX.1e access check (acl_permission_check in Linux) for a caller who is not the owner:
 * named user entry, then the owning and named groups (any matching entry that grants wins),
 * then other; named entries and the owning group are limited by the mask. Returns undefined
 * when the value is not a well-formed ACL, so the caller falls back to the mode bits.
 */
export function aclPermits(
  value: Buffer,
  caller: Caller,
  inode: InodeRow,
  mask: number,
): boolean | undefined {
  const entries = parseAcl(value);
  if (!entries) return undefined;
  const maskEntry = entries.find((e) => e.tag === ACL_MASK);
  const limit = maskEntry ? maskEntry.perm : 7;
  const granted = (perm: number) => (perm & mask) === mask;
  for (const e of entries) {
    if (e.tag === ACL_USER && e.id === caller.uid) return granted(e.perm & limit);
  }
  let groupMatched = false;
  for (const e of entries) {
    const matches =
      (e.tag === ACL_GROUP_OBJ &&
        (caller.gid === inode.gid || (caller.groups?.includes(inode.gid) ?? false))) ||
      (e.tag === ACL_GROUP && (caller.gid === e.id || (caller.groups?.includes(e.id) ?? false)));
    if (!matches) continue;
    groupMatched = true;
    if (granted(e.perm & limit)) return true;
  }
  if (groupMatched) return false;
  const other = entries.find((e) => e.tag === ACL_OTHER);
  if (!other || entries.some((e) => e.tag === ACL_USER_OBJ) === false) return undefined;
  return granted(other.perm);
}

/**
 * A new inode under a directory with a default ACL (posix_acl_create in Linux): the umask is
 * ignored, the default ACL masks the requested permission bits, and the inode gets the masked
 * ACL as its access ACL when it says more than the mode bits can. Returns the new permission
 * bits and the access ACL to store (undefined when the mode bits say it all).
 */
export function inheritDefaultAcl(
  defaultAcl: Buffer,
  requestedPerm: number,
): { perm: number; access?: Buffer } | undefined {
  const entries = parseAcl(defaultAcl);
  if (!entries || entries.length === 0) return undefined;
  let mode = requestedPerm & 0o777;
  let groupObj: AclEntry | undefined;
  let maskObj: AclEntry | undefined;
  let notEquiv = false;
  for (const e of entries) {
    if (e.tag === ACL_USER_OBJ) {
      e.perm &= (mode >> 6) & 7;
      mode &= (e.perm << 6) | ~0o700;
    } else if (e.tag === ACL_USER || e.tag === ACL_GROUP) {
      notEquiv = true;
    } else if (e.tag === ACL_GROUP_OBJ) {
      groupObj = e;
    } else if (e.tag === ACL_OTHER) {
      e.perm &= mode & 7;
      mode &= e.perm | ~0o007;
    } else if (e.tag === ACL_MASK) {
      maskObj = e;
      notEquiv = true;
    }
  }
  const g = maskObj ?? groupObj;
  if (!g) return undefined;
  g.perm &= (mode >> 3) & 7;
  mode &= (g.perm << 3) | ~0o070;
  const perm = (requestedPerm & ~0o777) | (mode & 0o777);
  return { perm, access: notEquiv ? encodeAcl(entries.map((e) => [e.tag, e.perm, e.id])) : undefined };
}

/**
 * The access ACL after a chmod to `mode` (posix_acl_chmod in Linux): the owner, the mask
 * (the owning group when there is no mask) and other take the new permission bits; named
 * entries stay. Over FUSE the kernel leaves this to the file system. Undefined for a value
 * that is not a well-formed ACL.
 */
export function chmodAcl(value: Buffer, mode: number): Buffer | undefined {
  const entries = parseAcl(value);
  if (!entries) return undefined;
  const hasMask = entries.some((e) => e.tag === ACL_MASK);
  for (const e of entries) {
    if (e.tag === ACL_USER_OBJ) e.perm = (mode >> 6) & 7;
    else if (e.tag === ACL_MASK || (e.tag === ACL_GROUP_OBJ && !hasMask)) e.perm = (mode >> 3) & 7;
    else if (e.tag === ACL_OTHER) e.perm = mode & 7;
  }
  return encodeAcl(entries.map((e) => [e.tag, e.perm, e.id]));
}

/** Encodes an ACL (tests and tools): entries as [tag, perm, id]. */
export function encodeAcl(entries: [number, number, number][]): Buffer {
  const out = Buffer.alloc(4 + entries.length * 8);
  out.writeUInt32LE(ACL_VERSION, 0);
  entries.forEach(([tag, perm, id], i) => {
    out.writeUInt16LE(tag, 4 + i * 8);
    out.writeUInt16LE(perm, 6 + i * 8);
    out.writeUInt32LE(id, 8 + i * 8);
  });
  return out;
}

export const AclTag = {
  USER_OBJ: ACL_USER_OBJ,
  USER: ACL_USER,
  GROUP_OBJ: ACL_GROUP_OBJ,
  GROUP: ACL_GROUP,
  MASK: ACL_MASK,
  OTHER: ACL_OTHER,
} as const;
