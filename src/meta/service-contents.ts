import {
  Errno,
  FsError,
  asSliceId,
  fsError,
  nameByteLength,
  type Ino,
  type SliceId,
  type SliceRef,
  type SliceWrite,
} from '../common/index.js';
import type { AsOf, Caller, CommittedWrites, InodeAttr, LockOwner, LockRange, Timespec } from './api.js';
import { XATTR_CREATE, XATTR_REPLACE } from './api.js';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR } from './acl.js';
import { S_ISGID, toAttr } from './attrs.js';
import type { InodeRow } from './engine.js';
import * as fileOps from './file-ops.js';
import { applyPosixChange, findConflict } from './locks.js';
import type { OpContext } from './op-context.js';
import { W_OK, inGroup, isOwnerOrRoot } from './permissions.js';
import { MetaServiceCore, getInode, requireSession, rootCaller } from './service-core.js';
import { COUNTER_SLICE_HI } from './volume-keys.js';

const XATTR_NAME_MAX_BYTES = 255;
const XATTR_VALUE_MAX_BYTES = 65536;

/**
 * The metadata service's calls on what one inode holds (see MetaService): the opens that keep
 * an unlinked file alive, its extended attributes, its data map, and its byte-range locks.
 */
export abstract class MetaServiceContents extends MetaServiceCore {
  // --- open files ---

  async open(caller: Caller, sessionId: string, ino: Ino, _flags: number): Promise<InodeAttr> {
    return this.change(caller, async (ctx) => {
      await requireSession(ctx.tx, sessionId);
      const row = await ctx.inode(ino);
      await ctx.tx.addOpen(sessionId, ino, 1);
      return toAttr(row);
    });
  }

  async release(sessionId: string, ino: Ino): Promise<void> {
    await this.change(rootCaller, async (ctx) => {
      await ctx.tx.addOpen(sessionId, ino, -1);
      await this.reclaimIfOrphan(ctx, ino);
    });
  }

  // --- extended attributes ---

  async setxattr(caller: Caller, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    checkXattrName(name);
    if (value.length > XATTR_VALUE_MAX_BYTES) {
      throw new FsError(
        Errno.E2BIG,
        `xattr value of ${value.length} bytes is over the ${XATTR_VALUE_MAX_BYTES}-byte limit`,
      );
    }
    await this.change(caller, async (ctx) => {
      const row = await ctx.inode(ino);
      await requireXattrWrite(ctx, row, name);
      const existing = await ctx.tx.getXattr(ino, name);
      if (flags & XATTR_CREATE && existing)
        throw fsError.EEXIST(`xattr "${name}" already exists on inode ${ino}`);
      if (flags & XATTR_REPLACE && !existing)
        throw fsError.ENODATA(`no xattr "${name}" on inode ${ino} to replace`);
      await ctx.tx.putXattr(ino, name, Buffer.from(value));
      aclChangeKillsSgid(ctx, row, name);
      ctx.touchCtime(row);
    });
  }

  async getxattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer> {
    const t = this.checkAsOf(asOf);
    checkXattrName(name);
    return this.engine.read(async (tx) => {
      await getInode(tx, ino, t);
      const value = await tx.getXattr(ino, name, t);
      if (!value) throw fsError.ENODATA(`no xattr "${name}" on inode ${ino}`);
      return value;
    });
  }

  async listxattr(ino: Ino, asOf?: AsOf): Promise<string[]> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      await getInode(tx, ino, t);
      return tx.listXattrs(ino, t);
    });
  }

  async removexattr(caller: Caller, ino: Ino, name: string): Promise<void> {
    checkXattrName(name);
    await this.change(caller, async (ctx) => {
      const row = await ctx.inode(ino);
      await requireXattrWrite(ctx, row, name);
      if (!(await ctx.tx.getXattr(ino, name))) {
        // Removing a POSIX ACL is set_acl(NULL) in Linux: no error when there is none, and
        // ctime moves all the same (tmpfs, ext4). Other names answer ENODATA.
        if (name !== ACL_ACCESS_XATTR && name !== ACL_DEFAULT_XATTR)
          throw fsError.ENODATA(`no xattr "${name}" on inode ${ino}`);
      } else {
        await ctx.tx.deleteXattr(ino, name);
      }
      aclChangeKillsSgid(ctx, row, name);
      ctx.touchCtime(row);
    });
  }

  // --- file data maps ---

  async allocateSliceIds(count: number): Promise<SliceId> {
    if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
      throw fsError.EINVAL(`allocateSliceIds: count ${count} must be between 1 and 1000000`);
    }
    const hi = await this.engine.write((tx) => tx.addCounter(COUNTER_SLICE_HI, count));
    return asSliceId(hi - count + 1);
  }

  async readSlices(
    ino: Ino,
    firstChunk: number,
    lastChunk: number,
    asOf?: AsOf,
  ): Promise<Map<number, SliceRef[]>> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      await getInode(tx, ino, t);
      const out = new Map<number, SliceRef[]>();
      for (const idx of await tx.listChunkIndexes(ino, firstChunk, lastChunk, t)) {
        out.set(idx, await tx.getChunk(ino, idx, t));
      }
      return out;
    });
  }

  async commitWrites(
    caller: Caller,
    ino: Ino,
    writes: SliceWrite[],
    minSizeBytes: number,
    mtime: Timespec,
  ): Promise<CommittedWrites> {
    return this.change(caller, async (ctx) => {
      const chunkSizeBytes = this.settings.chunkSizeBytes;
      const committed = await fileOps.commitWrites(ctx, chunkSizeBytes, ino, writes, minSizeBytes, mtime);
      return { ...toAttr(committed.row), ctimeBefore: committed.ctimeBefore };
    });
  }

  async fallocate(
    caller: Caller,
    ino: Ino,
    mode: number,
    offset: number,
    length: number,
  ): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await fileOps.fallocate(ctx, this.settings.chunkSizeBytes, ino, mode, offset, length)),
    );
  }

  async copyFileRange(
    caller: Caller,
    srcIno: Ino,
    srcOffset: number,
    dstIno: Ino,
    dstOffset: number,
    length: number,
  ): Promise<{ copiedBytes: number; attr: InodeAttr }> {
    return this.change(caller, async (ctx) => {
      const chunk = this.settings.chunkSizeBytes;
      const r = await fileOps.copyFileRange(ctx, chunk, srcIno, srcOffset, dstIno, dstOffset, length);
      return { copiedBytes: r.copiedBytes, attr: toAttr(r.row) };
    });
  }

  async replaceChunkSlices(
    ino: Ino,
    chunkIndex: number,
    expectedIds: SliceId[],
    merged: SliceRef[],
  ): Promise<boolean> {
    return this.change(rootCaller, (ctx) =>
      fileOps.replaceChunkSlices(ctx, this.settings.chunkSizeBytes, ino, chunkIndex, expectedIds, merged),
    );
  }

  // --- locks ---

  async getlk(ino: Ino, owner: LockOwner, lock: LockRange): Promise<LockRange | null> {
    return this.engine.read(async (tx) => {
      await getInode(tx, ino, undefined);
      const held = await tx.listLocks(ino);
      const c = findConflict(held, owner.sessionId, owner.owner, false, lock);
      return c ? { type: c.type, start: c.start, end: c.end, pid: c.pid } : null;
    });
  }

  async setlk(ino: Ino, owner: LockOwner, lock: LockRange, isFlock: boolean): Promise<void> {
    if (lock.start < 0 || lock.end < lock.start) {
      throw fsError.EINVAL(`lock range [${lock.start}, ${lock.end}] is invalid`);
    }
    const wanted: LockRange = isFlock ? { ...lock, start: 0, end: Number.MAX_SAFE_INTEGER } : lock;
    await this.engine.write(async (tx) => {
      await requireSession(tx, owner.sessionId);
      await getInode(tx, ino, undefined);
      const held = await tx.listLocks(ino);
      const conflict = findConflict(held, owner.sessionId, owner.owner, isFlock, wanted);
      if (conflict) {
        throw fsError.EAGAIN(
          `inode ${ino} bytes ${conflict.start}-${conflict.end} are ${conflict.type}-locked by pid ${conflict.pid}`,
        );
      }
      const mine = held.filter(
        (l) => l.sessionId === owner.sessionId && l.owner === owner.owner && l.flock === isFlock,
      );
      const next = isFlock
        ? wanted.type === 'unlock'
          ? []
          : [{ type: wanted.type, start: wanted.start, end: wanted.end, pid: wanted.pid }]
        : applyPosixChange(mine, wanted);
      await tx.replaceLocks(ino, owner.sessionId, owner.owner, isFlock, next);
    });
  }
}

function checkXattrName(name: string): void {
  if (name.length === 0) throw fsError.EINVAL('empty xattr name');
  if (nameByteLength(name) > XATTR_NAME_MAX_BYTES) {
    throw fsError.ERANGE(
      `xattr name of ${nameByteLength(name)} bytes is over the ${XATTR_NAME_MAX_BYTES}-byte limit`,
    );
  }
  const namespace = /^(user|trusted|security)\./.exec(name);
  // As Linux resolves names to handlers: a prefix with nothing after it is EINVAL, and
  // system.* names only the two POSIX ACLs (no other system handler exists on ext4/tmpfs).
  if (namespace !== null) {
    if (name.length === namespace[0].length)
      throw fsError.EINVAL(`xattr name "${name}" has nothing after its prefix`);
    return;
  }
  if (name !== ACL_ACCESS_XATTR && name !== ACL_DEFAULT_XATTR) {
    throw fsError.ENOTSUP(
      `xattr "${name}" is not supported: use the user., trusted. or security. namespaces, or ${ACL_ACCESS_XATTR} / ${ACL_DEFAULT_XATTR}`,
    );
  }
}

/**
 * Setting or removing an access ACL runs posix_acl_update_mode in Linux, which drops
 * S_ISGID (files and directories alike) when the caller is neither in the inode's group nor
 * privileged, as chmod does.
 */
function aclChangeKillsSgid(ctx: OpContext, row: InodeRow, name: string): void {
  if (name === ACL_ACCESS_XATTR && ctx.caller.uid !== 0 && !inGroup(ctx.caller, row.gid)) {
    row.mode &= ~S_ISGID;
  }
}

/** user.* needs write permission; ACLs and other system.* need ownership; trusted.* needs root. */
async function requireXattrWrite(ctx: OpContext, row: InodeRow, name: string): Promise<void> {
  if (name.startsWith('user.')) {
    await ctx.requireAccess(row, W_OK, `change xattr "${name}"`);
  } else if (name.startsWith('trusted.')) {
    if (ctx.caller.uid !== 0) throw fsError.EPERM(`only root may change trusted xattr "${name}"`);
  } else if (!isOwnerOrRoot(ctx.caller, row)) {
    throw fsError.EPERM(`only the owner (uid ${row.uid}) or root may change "${name}" on inode ${row.ino}`);
  }
}
