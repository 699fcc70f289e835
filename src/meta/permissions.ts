import { fsError } from '../common/index.js';
import type { Caller } from './api.js';
import { S_ISVTX, isDir } from './attrs.js';
import type { InodeRow } from './engine.js';
import { aclPermits } from './acl.js';

export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

export function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || (caller.groups?.includes(gid) ?? false);
}

/**
 * May `caller` access `inode` for `mask` (R_OK|W_OK|X_OK)? Root may do anything except
 * execute a non-directory with no execute bit at all. `acl` is the inode's
 * system.posix_acl_access value when it has one: then it decides instead of the group bits,
 * unless those are all zero.
 */
export function mayAccess(caller: Caller, inode: InodeRow, mask: number, acl?: Buffer): boolean {
  if (caller.uid === 0) {
    return (mask & X_OK) === 0 || isDir(inode.mode) || (inode.mode & 0o111) !== 0;
  }
  // Linux consults the ACL only while the group bits (the ACL mask) are not all zero
  // (acl_permission_check); the kernel checks FUSE callers that way first, so must we.
  if (acl && caller.uid !== inode.uid && (inode.mode & 0o070) !== 0) {
    const verdict = aclPermits(acl, caller, inode, mask);
    if (verdict !== undefined) return verdict;
  }
  let bits: number;
  if (caller.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(caller, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & mask) === mask;
}

export function requireAccess(
  caller: Caller,
  inode: InodeRow,
  mask: number,
  what: string,
  acl?: Buffer,
): void {
  if (!mayAccess(caller, inode, mask, acl)) {
    throw fsError.EACCES(`permission denied: uid ${caller.uid} may not ${what} (inode ${inode.ino})`);
  }
}

/** In a sticky directory only the owner of the entry, of the directory, or root may remove or rename it. */
export function requireStickyOk(caller: Caller, dir: InodeRow, victim: InodeRow, name: string): void {
  if ((dir.mode & S_ISVTX) === 0 || caller.uid === 0) return;
  if (caller.uid === dir.uid || caller.uid === victim.uid) return;
  throw fsError.EPERM(
    `"${name}" is in a sticky directory (inode ${dir.ino}) and belongs to uid ${victim.uid}; ` +
      `only its owner, the directory owner or root may remove or rename it`,
  );
}

export function isOwnerOrRoot(caller: Caller, inode: InodeRow): boolean {
  return caller.uid === 0 || caller.uid === inode.uid;
}
