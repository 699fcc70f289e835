import {
  Errno,
  FsError,
  fsError,
  type Ino,
  type SliceId,
  type SliceRef,
  type SliceWrite,
} from '../common/index.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  type Caller,
  type SetAttrChanges,
  type Timespec,
} from './api.js';
import {
  S_IFMT,
  S_ISGID,
  S_ISUID,
  S_IXGRP,
  isDir,
  isReg,
  laterCtime,
  setAtime,
  setCtime,
  setMtime,
} from './attrs.js';
import { ACL_ACCESS_XATTR, chmodAcl } from './acl.js';
import { appendToChunk, copyByReference, replaceChunk, truncateChunks, zeroRange } from './chunks.js';
import { refuseReclaimedSlices } from './reclaim-floor.js';
import type { InodeRow } from './engine.js';
import type { OpContext } from './op-context.js';
import { W_OK, inGroup, isOwnerOrRoot } from './permissions.js';

/** Rules for changing attributes and file data maps, each inside one write transaction. */

export const MAX_FILE_SIZE_BYTES = Number.MAX_SAFE_INTEGER;

/**
 * The set-id bits Linux clears when `caller` modifies `row` (setattr_should_drop_suidgid):
 * S_ISUID always; S_ISGID with group exec, or without it when the caller is neither in the
 * file's group nor root (checked on tmpfs, kernel 6.18).
 */
function setidBitsToKill(caller: Caller, row: InodeRow): number {
  let bits = row.mode & S_ISUID;
  if (row.mode & S_ISGID && (row.mode & S_IXGRP || (caller.uid !== 0 && !inGroup(caller, row.gid)))) {
    bits |= S_ISGID;
  }
  return bits;
}

/**
 * What a write, truncate or chown by `caller` clears: the kernel asks (FUSE_WRITE_KILL_SUIDGID,
 * FATTR_KILL_SUIDGID) whenever the caller lacks CAP_FSETID, whatever the mode, and leaves the
 * choice of bits to the file system. S_ISGID without group exec stays only for members of the
 * file's group (setattr_should_drop_sgid since Linux 6.2), so it is judged against the group
 * the file has before a chown.
 */
function killSetid(caller: Caller, row: InodeRow): void {
  row.mode &= ~setidBitsToKill(caller, row);
}

/**
 * chown(path, -1, -1) reaches the service as a setattr that changes nothing: the kernel
 * sends FATTR_KILL_SUIDGID only along with FATTR_UID/FATTR_GID, and FATTR_CTIME only with
 * the writeback cache. The kernel's file_remove_privs() before a fallocate or
 * copy_file_range by a caller without CAP_FSETID arrives in the same shape (FUSE strips the
 * kill bits and sends what is left: nothing), so the two cannot be told apart here.
 */
function isEmptyChange(changes: SetAttrChanges): boolean {
  return (
    changes.mode === undefined &&
    changes.uid === undefined &&
    changes.gid === undefined &&
    changes.sizeBytes === undefined &&
    changes.atime === undefined &&
    changes.mtime === undefined &&
    !changes.killSuid
  );
}

async function setSize(
  ctx: OpContext,
  chunkSizeBytes: number,
  row: InodeRow,
  sizeBytes: number,
): Promise<void> {
  if (sizeBytes < 0) throw fsError.EINVAL(`invalid file size ${sizeBytes}`);
  if (sizeBytes > MAX_FILE_SIZE_BYTES) {
    throw fsError.EFBIG(`file size ${sizeBytes} is past the largest file size, ${MAX_FILE_SIZE_BYTES} bytes`);
  }
  if (sizeBytes === row.sizeBytes) return;
  // Usage follows the data a truncate drops (chunks.ts), not the size: growing adds a hole.
  await truncateChunks(ctx, row.ino, chunkSizeBytes, row.sizeBytes, sizeBytes);
  row.sizeBytes = sizeBytes;
}

export async function setattr(
  ctx: OpContext,
  chunkSizeBytes: number,
  ino: Ino,
  changes: SetAttrChanges,
): Promise<InodeRow> {
  const { caller, now } = ctx;
  const row = await ctx.inode(ino);
  const owner = isOwnerOrRoot(caller, row);
  // Linux clears set-id bits on every chown of a non-directory, even chown(-1, -1). For the
  // owner or root that is what an empty change means either way. For anyone else tmpfs
  // answers chown(-1, -1) with EPERM, but file_remove_privs() (same request) must not fail a
  // fallocate through a descriptor the caller may use: leave the bits, fallocate clears them.
  if (owner && isEmptyChange(changes) && !isDir(row.mode)) row.mode &= ~setidBitsToKill(caller, row);
  if (changes.uid !== undefined || changes.gid !== undefined) {
    const killBits = isDir(row.mode) ? 0 : setidBitsToKill(caller, row);
    const newUid = changes.uid ?? row.uid;
    const newGid = changes.gid ?? row.gid;
    if (caller.uid !== 0) {
      if (newUid !== row.uid) throw fsError.EPERM(`only root may change the owner of inode ${ino}`);
      if (!owner)
        throw fsError.EPERM(`only the owner (uid ${row.uid}) or root may change the group of inode ${ino}`);
      if (newGid !== row.gid && !inGroup(caller, newGid)) {
        throw fsError.EPERM(`uid ${caller.uid} is not in group ${newGid}; cannot give inode ${ino} to it`);
      }
    }
    row.uid = newUid;
    row.gid = newGid;
    row.mode &= ~killBits;
  }
  if (changes.mode !== undefined) {
    if (!owner) throw fsError.EPERM(`only the owner (uid ${row.uid}) or root may chmod inode ${ino}`);
    let mode = changes.mode & 0o7777;
    if (caller.uid !== 0 && !inGroup(caller, row.gid)) mode &= ~S_ISGID;
    row.mode = (row.mode & S_IFMT) | mode;
    const acl = await ctx.tx.getXattr(ino, ACL_ACCESS_XATTR);
    const updated = acl && chmodAcl(acl, mode);
    if (updated) await ctx.tx.putXattr(ino, ACL_ACCESS_XATTR, updated);
  }
  if (changes.sizeBytes !== undefined) {
    if (isDir(row.mode)) throw fsError.EISDIR(`inode ${ino} is a directory; it has no size to set`);
    if (!isReg(row.mode))
      throw fsError.EINVAL(`inode ${ino} is not a regular file; only files can be truncated`);
    await setSize(ctx, chunkSizeBytes, row, changes.sizeBytes);
    setMtime(row, now);
  }
  for (const [key, apply] of [
    ['atime', setAtime],
    ['mtime', setMtime],
  ] as const) {
    const change = changes[key];
    if (change === undefined) continue;
    if (change === 'now') {
      if (!owner) await ctx.requireAccess(row, W_OK, `set ${key} of inode ${ino} to now`);
      apply(row, now);
    } else {
      if (!owner)
        throw fsError.EPERM(`only the owner (uid ${row.uid}) or root may set ${key} of inode ${ino}`);
      apply(row, change);
    }
  }
  if (changes.killSuid) killSetid(caller, row);
  setCtime(row, changes.ctime ?? now);
  ctx.touch(row);
  return row;
}

async function regularFile(ctx: OpContext, ino: Ino): Promise<InodeRow> {
  const row = await ctx.inode(ino);
  if (isDir(row.mode)) throw fsError.EISDIR(`inode ${ino} is a directory, not a file`);
  if (!isReg(row.mode)) throw fsError.EINVAL(`inode ${ino} is not a regular file`);
  return row;
}

function checkSlice(chunkSizeBytes: number, s: SliceRef, where: string): void {
  const ok =
    Number.isSafeInteger(s.id) &&
    s.id >= 0 &&
    s.lengthBytes > 0 &&
    s.chunkOffsetBytes >= 0 &&
    s.chunkOffsetBytes + s.lengthBytes <= chunkSizeBytes &&
    s.sliceOffsetBytes >= 0 &&
    s.sliceOffsetBytes + s.lengthBytes <= s.sliceSizeBytes;
  if (!ok) {
    throw fsError.EINVAL(
      `${where}: slice ${s.id} (chunk offset ${s.chunkOffsetBytes}, slice offset ${s.sliceOffsetBytes}, ` +
        `length ${s.lengthBytes}, slice size ${s.sliceSizeBytes}) does not fit a ${chunkSizeBytes}-byte chunk`,
    );
  }
}

export async function commitWrites(
  ctx: OpContext,
  chunkSizeBytes: number,
  ino: Ino,
  writes: SliceWrite[],
  minSizeBytes: number,
  mtime: Timespec,
): Promise<{ row: InodeRow; ctimeBefore: Timespec }> {
  // First: a reclaim pass raising the floor waits for this, and holds no row lock of ours.
  await refuseReclaimedSlices(
    ctx.tx,
    writes.map((w) => w.slice),
    `commit to inode ${ino}`,
  );
  const row = await regularFile(ctx, ino);
  // The state the commit found (see CommittedWrites): read before anything here moves it.
  const ctimeBefore = { sec: row.ctimeSec, nsec: row.ctimeNsec };
  const byChunk = new Map<number, SliceRef[]>();
  for (const w of writes) {
    if (!Number.isSafeInteger(w.chunkIndex) || w.chunkIndex < 0) {
      throw fsError.EINVAL(`commitWrites: invalid chunk index ${w.chunkIndex}`);
    }
    checkSlice(chunkSizeBytes, w.slice, `commitWrites on inode ${ino}`);
    const list = byChunk.get(w.chunkIndex) ?? [];
    list.push(w.slice);
    byChunk.set(w.chunkIndex, list);
  }
  for (const [idx, added] of byChunk) await appendToChunk(ctx, ino, idx, added);
  if (minSizeBytes > row.sizeBytes) await setSize(ctx, chunkSizeBytes, row, minSizeBytes);
  setMtime(row, mtime);
  // The writes changed the file when they were made, not when committed: the mount showed
  // their time as ctime all along (vfs open-files, changeTimeAfter), so a later commit
  // (close, fsync, a full buffer) must not move ctime again. When the write time is not
  // after the current ctime (an explicit mtime, a mount clock a little behind the
  // server's), one microsecond after it, as the mount showed too.
  setCtime(row, laterCtime(row, mtime));
  ctx.touch(row);
  return { row, ctimeBefore };
}

export async function fallocate(
  ctx: OpContext,
  chunkSizeBytes: number,
  ino: Ino,
  mode: number,
  offset: number,
  length: number,
): Promise<InodeRow> {
  const row = await ctx.inode(ino);
  if (isDir(row.mode)) throw fsError.EISDIR(`inode ${ino} is a directory`);
  if (!isReg(row.mode))
    throw new FsError(Errno.ENODEV, `inode ${ino} is not a regular file; fallocate needs one`);
  if (offset < 0 || length <= 0)
    throw fsError.EINVAL(`fallocate: invalid offset ${offset} or length ${length}`);
  const known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~known) throw fsError.ENOTSUP(`fallocate mode 0x${mode.toString(16)} is not supported`);
  const end = offset + length;
  if (end > MAX_FILE_SIZE_BYTES) throw fsError.EFBIG(`fallocate past the maximum file size`);
  const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    if (!keepSize || mode & FALLOC_FL_ZERO_RANGE) {
      throw fsError.ENOTSUP(
        'FALLOC_FL_PUNCH_HOLE must be combined with FALLOC_FL_KEEP_SIZE (and nothing else)',
      );
    }
    await zeroRange(ctx, ino, chunkSizeBytes, offset, Math.min(end, row.sizeBytes));
  } else if (mode & FALLOC_FL_ZERO_RANGE) {
    await zeroRange(ctx, ino, chunkSizeBytes, offset, keepSize ? Math.min(end, row.sizeBytes) : end);
  }
  // Plain allocation has nothing to reserve in an object store: only the size moves.
  if (!keepSize && end > row.sizeBytes) await setSize(ctx, chunkSizeBytes, row, end);
  // Linux (tmpfs, ext4) runs file_modified() on every fallocate, KEEP_SIZE included: mtime
  // and ctime move, and a caller without CAP_FSETID loses set-id bits as after a write. The
  // FUSE request carries no kill flag for fallocate, so the rule lives here (uid 0 stands in
  // for CAP_FSETID, as everywhere in this service).
  if (ctx.caller.uid !== 0) row.mode &= ~setidBitsToKill(ctx.caller, row);
  setMtime(row, ctx.now);
  setCtime(row, ctx.now);
  ctx.touch(row);
  return row;
}

export async function copyFileRange(
  ctx: OpContext,
  chunkSizeBytes: number,
  srcIno: Ino,
  srcOffset: number,
  dstIno: Ino,
  dstOffset: number,
  length: number,
): Promise<{ copiedBytes: number; row: InodeRow }> {
  if (srcOffset < 0 || dstOffset < 0 || length < 0) {
    throw fsError.EINVAL(`copy_file_range: negative offset or length`);
  }
  const src = await regularFile(ctx, srcIno);
  const dst = await regularFile(ctx, dstIno);
  const copiedBytes = Math.max(0, Math.min(length, src.sizeBytes - srcOffset));
  if (srcIno === dstIno && srcOffset < dstOffset + copiedBytes && dstOffset < srcOffset + copiedBytes) {
    throw fsError.EINVAL('copy_file_range: source and destination ranges overlap in the same file');
  }
  if (dstOffset + copiedBytes > MAX_FILE_SIZE_BYTES)
    throw fsError.EFBIG('copy_file_range past the maximum file size');
  if (copiedBytes === 0) return { copiedBytes, row: dst };
  await copyByReference(ctx, chunkSizeBytes, srcIno, srcOffset, dstIno, dstOffset, copiedBytes);
  // A copy is a write to dst: a caller without CAP_FSETID (uid 0 stands in for it) clears
  // its set-id bits, as on tmpfs; FUSE's copy request carries no kill flag.
  if (ctx.caller.uid !== 0) dst.mode &= ~setidBitsToKill(ctx.caller, dst);
  if (dstOffset + copiedBytes > dst.sizeBytes)
    await setSize(ctx, chunkSizeBytes, dst, dstOffset + copiedBytes);
  setMtime(dst, ctx.now);
  setCtime(dst, ctx.now);
  ctx.touch(dst);
  return { copiedBytes, row: dst };
}

/**
 * Compaction's compare-and-swap of one chunk's slice list. It leaves times alone; the inode row
 * is written only when the merged list covers a different number of bytes with data.
 */
export async function replaceChunkSlices(
  ctx: OpContext,
  chunkSizeBytes: number,
  ino: Ino,
  chunkIndex: number,
  expectedIds: SliceId[],
  merged: SliceRef[],
): Promise<boolean> {
  await refuseReclaimedSlices(ctx.tx, merged, `compaction of inode ${ino} chunk ${chunkIndex}`);
  // The inode before its chunk, as every other change takes them (PostgreSQL row locks): the
  // merge may move its allocated bytes. A file deleted meanwhile has nothing left to merge.
  if ((await ctx.findInode(ino)) === undefined) return false;
  const current = await ctx.tx.getChunk(ino, chunkIndex);
  if (current.length !== expectedIds.length || current.some((s, i) => s.id !== expectedIds[i])) return false;
  for (const s of merged) checkSlice(chunkSizeBytes, s, `replaceChunkSlices on inode ${ino}`);
  await replaceChunk(ctx, ino, chunkIndex, merged, current);
  return true;
}
