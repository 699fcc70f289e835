import { fsError, type Ino } from '../common/index.js';
import { S_IFREG, S_ISGID, isReg, newInodeRow } from './attrs.js';
import type { InodeRow } from './engine.js';
import { COUNTER_INODES, applyDefaultAcl, link, prepareCreate, type Limits } from './namespace.js';
import type { OpContext } from './op-context.js';
import { W_OK, X_OK } from './permissions.js';

/**
 * O_TMPFILE: a regular file without a name, nlink 0, counted open by the creating session in
 * the same transaction. It lives exactly like an open-but-unlinked file: the last release (or
 * the session's expiry) frees it, so an abandoned tmpfile leaves nothing behind.
 */
export async function createTmpfile(
  ctx: OpContext,
  sessionId: string,
  parent: Ino,
  ino: Ino,
  mode: number,
  umask: number,
): Promise<InodeRow> {
  const dir = await ctx.dir(parent);
  await ctx.requireAccess(dir, W_OK | X_OK, `create an unnamed file (O_TMPFILE) in directory ${parent}`);
  const spec = { ino, mode: S_IFREG | (mode & 0o7777), umask };
  const inherited = await applyDefaultAcl(ctx, dir, spec, false);
  // As for a named file: a set-group-id directory gives its group.
  const gid = dir.mode & S_ISGID ? dir.gid : ctx.caller.gid;
  const row = newInodeRow(ino, inherited.mode, ctx.caller.uid, gid, ctx.now, { nlink: 0 });
  ctx.add(row);
  for (const [xattr, value] of inherited.xattrs) await ctx.tx.putXattr(ino, xattr, value);
  await ctx.tx.addCounter(COUNTER_INODES, 1);
  await ctx.tx.addOpen(sessionId, ino, 1);
  return row;
}

/**
 * linkat(2) of an O_TMPFILE file (opened without O_EXCL: the kernel checks that) gives it a
 * first name. Only a file still open somewhere may get one: a released tmpfile is gone.
 * Once named it is an ordinary file, linked the ordinary way.
 */
export async function linkTmpfile(
  ctx: OpContext,
  limits: Limits,
  ino: Ino,
  newParent: Ino,
  newName: string,
): Promise<InodeRow> {
  const inode = await ctx.inode(ino);
  if (inode.nlink > 0) return link(ctx, limits, ino, newParent, newName);
  if (!isReg(inode.mode)) {
    throw fsError.EPERM(`inode ${ino} is not an unnamed regular file; only O_TMPFILE files are linked back`);
  }
  if ((await ctx.tx.openCount(ino)) === 0) {
    throw fsError.ENOENT(`unnamed file ${ino} was closed and freed; it cannot get a name`);
  }
  const dir = await prepareCreate(ctx, newParent, newName);
  await ctx.tx.putDentry(newParent, newName, ino, S_IFREG, true);
  inode.nlink = 1;
  ctx.touchCtime(inode);
  ctx.touchDir(dir);
  return inode;
}
