/** The access ACL xattr, in the kernel's binary form (posix_acl_xattr_header + entries). */
export const ACL_ACCESS_XATTR = 'system.posix_acl_access';

const ACL_XATTR_VERSION = 2;
const HEADER_BYTES = 4;
const ENTRY_BYTES = 8;
const TAG_USER_OBJ = 0x01;
const TAG_GROUP_OBJ = 0x04;
const TAG_MASK = 0x10;
const TAG_OTHER = 0x20;

/**
 * The permission bits an access ACL implies: owner from USER_OBJ, group from MASK when
 * present (else GROUP_OBJ), other from OTHER. The kernel consults an ACL only when the
 * group bits are non-zero, and over FUSE it leaves keeping the mode in step with the ACL to
 * the file system (what posix_acl_update_mode does for local file systems). Returns null
 * for a value that is not a well-formed ACL.
 */
export function modeBitsOfAcl(value: Buffer): number | null {
  if (value.length < HEADER_BYTES || (value.length - HEADER_BYTES) % ENTRY_BYTES !== 0) return null;
  if (value.readUInt32LE(0) !== ACL_XATTR_VERSION) return null;
  let owner = -1;
  let group = -1;
  let mask = -1;
  let other = -1;
  for (let at = HEADER_BYTES; at < value.length; at += ENTRY_BYTES) {
    const tag = value.readUInt16LE(at);
    const perm = value.readUInt16LE(at + 2) & 0o7;
    if (tag === TAG_USER_OBJ) owner = perm;
    else if (tag === TAG_GROUP_OBJ) group = perm;
    else if (tag === TAG_MASK) mask = perm;
    else if (tag === TAG_OTHER) other = perm;
  }
  if (owner < 0 || group < 0 || other < 0) return null;
  return (owner << 6) | ((mask >= 0 ? mask : group) << 3) | other;
}

/**
 * Whether a well-formed access ACL says nothing the mode does not (owner, owning group and
 * other entries only). Linux stores no such ACL (posix_acl_equiv_mode): setting one only
 * sets the mode and drops any ACL the inode had.
 */
export function isMinimalAcl(value: Buffer): boolean {
  if (modeBitsOfAcl(value) === null) return false;
  for (let at = HEADER_BYTES; at < value.length; at += ENTRY_BYTES) {
    const tag = value.readUInt16LE(at);
    if (tag !== TAG_USER_OBJ && tag !== TAG_GROUP_OBJ && tag !== TAG_OTHER) return false;
  }
  return true;
}
