import { Errno, FsError, fsError, nameByteLength, type Ino } from '../common/index.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from './api.js';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR, inheritDefaultAcl } from './acl.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_ISGID, isDir, isReg, newInodeRow } from './attrs.js';
import { dropAllChunks } from './chunks.js';
import type { InodeRow } from './engine.js';
import type { OpContext } from './op-context.js';
import { W_OK, X_OK, requireStickyOk } from './permissions.js';

/** The namespace rules (POSIX), each run inside one write transaction through an OpContext. */

export const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4096;

export const COUNTER_INODES = 'inodes_used';
export { COUNTER_USED_BYTES } from './allocation.js';

export interface Limits {
  maxLinks: number;
}

export function checkName(name: string): void {
  if (name.length === 0) throw fsError.ENOENT('empty file name');
  if (name.includes('/') || name.includes('\0')) {
    throw fsError.EINVAL(`file name "${name}" contains "/" or NUL; names are single path components`);
  }
  if (nameByteLength(name) > NAME_MAX_BYTES) {
    throw fsError.ENAMETOOLONG(
      `file name of ${nameByteLength(name)} bytes is over the ${NAME_MAX_BYTES}-byte limit`,
    );
  }
}

function checkNewName(name: string): void {
  checkName(name);
  if (name === '.' || name === '..') throw fsError.EEXIST(`"${name}" always exists in a directory`);
}

/** Parent must be a directory the caller may write and search, without `name` in it. */
export async function prepareCreate(ctx: OpContext, parent: Ino, name: string): Promise<InodeRow> {
  checkNewName(name);
  const dir = await ctx.dir(parent);
  await ctx.requireAccess(dir, W_OK | X_OK, `create "${name}" in directory ${parent}`);
  const existing = await ctx.tx.lookup(parent, name);
  if (existing)
    throw fsError.EEXIST(`"${name}" already exists in directory ${parent} (inode ${existing.ino})`);
  return dir;
}

export interface NewInode {
  ino: Ino;
  /** Full mode with type bits, as asked (before the umask). */
  mode: number;
  /** Applied unless the parent has a default ACL, which then decides instead. */
  umask: number;
  rdev?: number;
  target?: string;
}

/** Creates an inode and its entry (mknod, mkdir, symlink share this). */
export async function createEntry(
  ctx: OpContext,
  limits: Limits,
  parent: Ino,
  name: string,
  spec: NewInode,
): Promise<InodeRow> {
  const dir = await prepareCreate(ctx, parent, name);
  const makingDir = (spec.mode & S_IFMT) === S_IFDIR;
  if (makingDir && limits.maxLinks > 0 && dir.nlink >= limits.maxLinks) {
    throw fsError.EMLINK(
      `directory ${parent} already has ${dir.nlink} links (volume limit ${limits.maxLinks})`,
    );
  }
  const inherited = await applyDefaultAcl(ctx, dir, spec, makingDir);
  let mode = inherited.mode;
  let gid = ctx.caller.gid;
  // BSD group semantics under a set-group-id directory: inherit its group (and, for
  // subdirectories, the bit itself).
  if (dir.mode & S_ISGID) {
    gid = dir.gid;
    if (makingDir) mode |= S_ISGID;
  }
  const row = newInodeRow(spec.ino, mode, ctx.caller.uid, gid, ctx.now, {
    nlink: makingDir ? 2 : 1,
    rdev: spec.rdev ?? 0,
    parent: makingDir ? parent : (0 as Ino),
    target: spec.target ?? null,
    sizeBytes: spec.target !== undefined ? nameByteLength(spec.target) : 0,
  });
  ctx.add(row);
  for (const [xattr, value] of inherited.xattrs) await ctx.tx.putXattr(row.ino, xattr, value);
  await ctx.tx.putDentry(parent, name, row.ino, mode & S_IFMT, true);
  if (makingDir) dir.nlink++;
  ctx.touchDir(dir);
  await ctx.tx.addCounter(COUNTER_INODES, 1);
  return row;
}

/**
 * The new inode's mode and ACLs: under a default ACL, the ACL masks the asked bits and is
 * inherited (as access ACL, and as default ACL by subdirectories); otherwise the umask applies.
 */
export async function applyDefaultAcl(
  ctx: OpContext,
  dir: InodeRow,
  spec: NewInode,
  makingDir: boolean,
): Promise<{ mode: number; xattrs: [string, Buffer][] }> {
  const type = spec.mode & S_IFMT;
  const asked = spec.mode & 0o7777;
  const defaultAcl =
    (spec.mode & S_IFMT) === S_IFLNK ? undefined : await ctx.tx.getXattr(dir.ino, ACL_DEFAULT_XATTR);
  const inherited = defaultAcl && inheritDefaultAcl(defaultAcl, asked);
  if (!defaultAcl || !inherited) return { mode: type | (asked & ~spec.umask), xattrs: [] };
  const xattrs: [string, Buffer][] = [];
  if (inherited.access) xattrs.push([ACL_ACCESS_XATTR, inherited.access]);
  if (makingDir) xattrs.push([ACL_DEFAULT_XATTR, defaultAcl]);
  return { mode: type | inherited.perm, xattrs };
}

export async function link(
  ctx: OpContext,
  limits: Limits,
  ino: Ino,
  newParent: Ino,
  newName: string,
): Promise<InodeRow> {
  const inode = await ctx.inode(ino);
  if (isDir(inode.mode)) throw fsError.EPERM(`cannot hard-link directory ${ino}`);
  if (inode.nlink === 0) throw fsError.ENOENT(`inode ${ino} was unlinked; it cannot get a new name`);
  if (limits.maxLinks > 0 && inode.nlink >= limits.maxLinks) {
    throw fsError.EMLINK(`inode ${ino} already has ${inode.nlink} links (volume limit ${limits.maxLinks})`);
  }
  const dir = await prepareCreate(ctx, newParent, newName);
  await ctx.tx.putDentry(newParent, newName, ino, inode.mode & S_IFMT, true);
  inode.nlink++;
  ctx.touchCtime(inode);
  ctx.touchDir(dir);
  return inode;
}

/**
 * Drops one link of a non-directory. At zero links the inode goes, unless a session still
 * has it open: then it stays (nlink 0) until the last release.
 */
export async function dropLink(ctx: OpContext, inode: InodeRow): Promise<void> {
  inode.nlink--;
  ctx.touchCtime(inode);
  if (inode.nlink <= 0 && (await ctx.tx.openCount(inode.ino)) === 0) await freeInode(ctx, inode);
}

/** Final delete of an inode: chunks release their slices, counters shrink (used bytes with the chunks). */
export async function freeInode(ctx: OpContext, inode: InodeRow): Promise<void> {
  if (isReg(inode.mode)) await dropAllChunks(ctx, inode.ino);
  ctx.remove(inode.ino);
  await ctx.tx.addCounter(COUNTER_INODES, -1);
}

async function prepareRemove(
  ctx: OpContext,
  parent: Ino,
  name: string,
): Promise<{ dir: InodeRow; inode: InodeRow }> {
  checkName(name);
  const dir = await ctx.dir(parent);
  await ctx.requireAccess(dir, W_OK | X_OK, `remove "${name}" from directory ${parent}`);
  const entry = await ctx.tx.lookup(parent, name);
  if (!entry) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
  const inode = await ctx.inode(entry.ino);
  requireStickyOk(ctx.caller, dir, inode, name);
  return { dir, inode };
}

/** Returns the inode the name was taken from, as it is after the call (see NameRemoval). */
export async function unlink(ctx: OpContext, parent: Ino, name: string): Promise<InodeRow> {
  if (name === '.' || name === '..') throw fsError.EISDIR(`"${name}" is a directory`);
  const { dir, inode } = await prepareRemove(ctx, parent, name);
  if (isDir(inode.mode)) throw fsError.EISDIR(`"${name}" in directory ${parent} is a directory; use rmdir`);
  await ctx.tx.deleteDentry(parent, name);
  ctx.touchDir(dir);
  await dropLink(ctx, inode);
  return inode;
}

/**
 * Deletes an empty directory's inode. Its row as returned has nlink 0 and a new ctime: what
 * Linux shows of a removed directory still held open.
 */
function removeDir(ctx: OpContext, inode: InodeRow): void {
  inode.nlink = 0;
  ctx.touchCtime(inode);
  ctx.remove(inode.ino);
}

/** Returns the removed directory (nlink 0), see NameRemoval. */
export async function rmdir(ctx: OpContext, parent: Ino, name: string): Promise<InodeRow> {
  if (name === '.') throw fsError.EINVAL('cannot remove "." (the directory itself); name it from its parent');
  if (name === '..') throw fsError.ENOTEMPTY('cannot remove ".." (a non-empty ancestor)');
  const { dir, inode } = await prepareRemove(ctx, parent, name);
  if (!isDir(inode.mode)) throw fsError.ENOTDIR(`"${name}" in directory ${parent} is not a directory`);
  if (await ctx.tx.hasEntries(inode.ino)) {
    throw fsError.ENOTEMPTY(`directory "${name}" (inode ${inode.ino}) is not empty`);
  }
  await ctx.tx.deleteDentry(parent, name);
  dir.nlink--;
  ctx.touchDir(dir);
  removeDir(ctx, inode);
  await ctx.tx.addCounter(COUNTER_INODES, -1);
  return inode;
}

/** Fails with EINVAL when `dir` is `ancestor` or lies below it (a directory moved into itself). */
async function requireNotInside(ctx: OpContext, dir: Ino, ancestor: Ino): Promise<void> {
  let at = dir;
  for (let depth = 0; depth < 1_000_000; depth++) {
    if (at === ancestor) {
      throw fsError.EINVAL(`cannot move directory ${ancestor} into its own subtree (directory ${dir})`);
    }
    const row = await ctx.inode(at);
    if (row.parent === at) return; // the root is its own parent
    at = row.parent;
  }
  throw fsError.EIO(`directory ${dir} has a parent cycle; run strata fsck`);
}

/** Moves the ".." of a directory from one parent to another (link counts follow). */
function reparent(ctx: OpContext, inode: InodeRow, from: InodeRow, to: InodeRow): void {
  if (from.ino === to.ino) return;
  inode.parent = to.ino;
  from.nlink--;
  to.nlink++;
  ctx.touch(inode);
}

/**
 * Returns the inodes whose link count or ctime changed, as they are after the call (see
 * NameRemoval): the one moved, and the one renamed over or exchanged with. None when the two
 * names already named the same inode (nothing changes).
 */
export async function rename(
  ctx: OpContext,
  limits: Limits,
  parent: Ino,
  name: string,
  newParent: Ino,
  newName: string,
  flags: number,
  whiteoutIno?: Ino,
): Promise<InodeRow[]> {
  if (
    (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) !== 0 ||
    (flags & RENAME_EXCHANGE && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)) !== 0
  ) {
    throw fsError.EINVAL(
      `rename flags ${flags} are not supported (0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT, or RENAME_WHITEOUT|RENAME_NOREPLACE)`,
    );
  }
  if (flags & RENAME_WHITEOUT && whiteoutIno === undefined) {
    throw fsError.EINVAL('RENAME_WHITEOUT needs an inode number for the whiteout');
  }
  for (const n of [name, newName]) {
    if (n === '.' || n === '..') throw new FsError(Errno.EBUSY, `cannot rename "${n}"`);
  }
  const { dir: srcDir, inode: src } = await prepareRemove(ctx, parent, name);
  checkName(newName);
  const dstDir = await ctx.dir(newParent);
  if (dstDir.ino !== srcDir.ino) {
    await ctx.requireAccess(dstDir, W_OK | X_OK, `move "${name}" into directory ${newParent}`);
  }
  const dstEntry = await ctx.tx.lookup(newParent, newName);
  const dst = dstEntry ? await ctx.inode(dstEntry.ino) : undefined;
  const srcIsDir = isDir(src.mode);
  const moving = srcDir.ino !== dstDir.ino;

  if (flags & RENAME_EXCHANGE) {
    if (!dst) throw fsError.ENOENT(`RENAME_EXCHANGE: no entry "${newName}" in directory ${newParent}`);
    requireStickyOk(ctx.caller, dstDir, dst, newName);
    if (dst.ino === src.ino) return [];
    const dstIsDir = isDir(dst.mode);
    if (moving && srcIsDir) await requireNotInside(ctx, dstDir.ino, src.ino);
    if (moving && dstIsDir) await requireNotInside(ctx, srcDir.ino, dst.ino);
    await ctx.tx.putDentry(parent, name, dst.ino, dst.mode & S_IFMT);
    await ctx.tx.putDentry(newParent, newName, src.ino, src.mode & S_IFMT);
    if (srcIsDir) reparent(ctx, src, srcDir, dstDir);
    if (dstIsDir) reparent(ctx, dst, dstDir, srcDir);
    ctx.touchCtime(src);
    ctx.touchCtime(dst);
    ctx.touchDir(srcDir);
    ctx.touchDir(dstDir);
    return [src, dst];
  }

  if (dst) {
    if (flags & RENAME_NOREPLACE) {
      throw fsError.EEXIST(`RENAME_NOREPLACE: "${newName}" already exists in directory ${newParent}`);
    }
    // POSIX: renaming a name onto another link of the same inode does nothing.
    if (dst.ino === src.ino) return [];
    requireStickyOk(ctx.caller, dstDir, dst, newName);
    if (srcIsDir && !isDir(dst.mode)) {
      throw fsError.ENOTDIR(`cannot replace non-directory "${newName}" with directory "${name}"`);
    }
    if (!srcIsDir && isDir(dst.mode)) {
      throw fsError.EISDIR(`cannot replace directory "${newName}" with non-directory "${name}"`);
    }
  }
  if (srcIsDir && moving) {
    await requireNotInside(ctx, dstDir.ino, src.ino);
    // Moving a directory rewrites its "..": the kernel asks for write permission on it too.
    await ctx.requireAccess(src, W_OK, `move directory "${name}" to another parent`);
    if (!dst && limits.maxLinks > 0 && dstDir.nlink >= limits.maxLinks) {
      throw fsError.EMLINK(
        `directory ${newParent} already has ${dstDir.nlink} links (volume limit ${limits.maxLinks})`,
      );
    }
  }
  if (dst) {
    if (isDir(dst.mode)) {
      if (await ctx.tx.hasEntries(dst.ino)) {
        throw fsError.ENOTEMPTY(`cannot replace directory "${newName}" (inode ${dst.ino}): it is not empty`);
      }
      dstDir.nlink--;
      removeDir(ctx, dst);
      await ctx.tx.addCounter(COUNTER_INODES, -1);
    } else {
      await dropLink(ctx, dst);
    }
  }
  await ctx.tx.deleteDentry(parent, name);
  await ctx.tx.putDentry(newParent, newName, src.ino, src.mode & S_IFMT);
  if (srcIsDir) reparent(ctx, src, srcDir, dstDir);
  if (whiteoutIno !== undefined) await addWhiteout(ctx, srcDir, name, whiteoutIno);
  ctx.touchCtime(src);
  ctx.touchDir(srcDir);
  ctx.touchDir(dstDir);
  return dst ? [src, dst] : [src];
}

/**
 * The whiteout RENAME_WHITEOUT leaves at the old name, in the same transaction: a character
 * device 0:0 with mode 0 owned by the caller (group by the set-group-id rule), which
 * overlayfs reads as "deleted in the upper layer". Linux creates it without umask or ACLs.
 */
async function addWhiteout(ctx: OpContext, dir: InodeRow, name: string, ino: Ino): Promise<void> {
  const gid = dir.mode & S_ISGID ? dir.gid : ctx.caller.gid;
  const row = newInodeRow(ino, S_IFCHR, ctx.caller.uid, gid, ctx.now, {
    nlink: 1,
    rdev: 0,
    parent: 0 as Ino,
    target: null,
    sizeBytes: 0,
  });
  ctx.add(row);
  await ctx.tx.putDentry(dir.ino, name, ino, S_IFCHR);
  await ctx.tx.addCounter(COUNTER_INODES, 1);
}
