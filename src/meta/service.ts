import { randomUUID } from 'node:crypto';
import {
  Errno,
  FsError,
  asIno,
  asSliceId,
  fsError,
  nameByteLength,
  type Ino,
  type SliceId,
  type SliceRef,
  type SliceWrite,
} from '../common/index.js';
import type {
  AsOf,
  Caller,
  DirEntry,
  InodeAttr,
  LockOwner,
  LockRange,
  MetaApi,
  SessionInfo,
  SetAttrChanges,
  StatFsInfo,
  Timespec,
  VolumeSettings,
} from './api.js';
import { XATTR_CREATE, XATTR_REPLACE } from './api.js';
import { ACL_ACCESS_XATTR, ACL_DEFAULT_XATTR } from './acl.js';
import { outsideNumberedCall } from './call-outcomes.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISGID, isDir, isLnk, timespecFromUs, toAttr } from './attrs.js';
import type { Clock, Engine, InodeRow, ReadTx, WriteTx } from './engine.js';
import * as fileOps from './file-ops.js';
import { applyPosixChange, findConflict } from './locks.js';
import * as ns from './namespace.js';
import { createTmpfile, linkTmpfile } from './tmpfile.js';
import { OpContext } from './op-context.js';
import { R_OK, W_OK, X_OK, inGroup, isOwnerOrRoot, requireAccess } from './permissions.js';
import { SETTING_SECRET, COUNTER_INO_HI, COUNTER_SLICE_HI } from './volume-keys.js';

export interface MetaServiceOptions {
  clock: Clock;
  /** A session without a heartbeat for this long is expired: locks released, orphans reclaimed. */
  sessionTimeoutMs?: number;
  /** Inode numbers reserved per trip to the engine (a crash skips at most this many). */
  inoBatch?: number;
  /** Run session expiry and history pruning on timers (off in tests that drive them). */
  background?: boolean;
  pruneIntervalMs?: number;
  pruneBatchRows?: number;
}

const XATTR_NAME_MAX_BYTES = 255;
const XATTR_VALUE_MAX_BYTES = 65536;
const CAPACITY_BYTES = 2 ** 50; // object stores have no fixed size; report 1 PiB
const INODES_TOTAL = 2 ** 40;
const DOT_CURSOR = 1;
const DOTDOT_CURSOR = 2;
/** Engine cursors start at 1; shift them past "." and "..". */
const CURSOR_SHIFT = 2;

/**
 * The metadata service: every POSIX rule of `MetaApi` over an `Engine`. Each method is one
 * engine transaction (id reservation aside, which is its own).
 */
export class MetaService implements MetaApi {
  private inoNext = 0;
  private inoEnd = 0;
  private inoRefill: Promise<void> | undefined;
  private readonly sessionTimeoutMs: number;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    readonly engine: Engine,
    private readonly settings: VolumeSettings,
    private readonly options: MetaServiceOptions,
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 60_000;
    if (options.background) {
      const expiry = setInterval(
        () => void this.expireSessions().catch(() => undefined),
        this.sessionTimeoutMs / 4,
      );
      const prune = setInterval(
        () => void this.pruneHistory().catch(() => undefined),
        options.pruneIntervalMs ?? 10_000,
      );
      expiry.unref();
      prune.unref();
      this.timers.push(expiry, prune);
    }
  }

  private nowUs(): number {
    return this.options.clock.nowUs();
  }

  private now(): Timespec {
    return timespecFromUs(this.nowUs());
  }

  private checkAsOf(asOf?: AsOf): number | undefined {
    const t = asOf?.asOfUs;
    if (t === undefined) return undefined;
    const oldest = this.nowUs() - this.settings.historyRetentionMs * 1000;
    if (!Number.isSafeInteger(t) || t < oldest) {
      throw fsError.EINVAL(
        `as-of instant ${t} µs is outside the history window (retention ${this.settings.historyRetentionMs} ms, oldest ${oldest} µs)`,
      );
    }
    return t;
  }

  private change<T>(caller: Caller, fn: (ctx: OpContext) => Promise<T>): Promise<T> {
    return this.engine.write(async (tx) => {
      const ctx = new OpContext(tx, caller, this.now());
      const result = await fn(ctx);
      await ctx.flush();
      return result;
    });
  }

  /**
   * Resolves once an inode number is in hand, so that a create started right after reaches its
   * engine write with no await in between: the engine thread hands call keys over synchronously
   * (call-outcomes.ts, server/worker-main.ts).
   */
  inosInHand(): Promise<void> | undefined {
    return this.inoNext < this.inoEnd ? undefined : this.refillInos();
  }

  private takeIno(): Ino | undefined {
    return this.inoNext < this.inoEnd ? asIno(this.inoNext++) : undefined;
  }

  private async allocIno(): Promise<Ino> {
    for (;;) {
      const ino = this.takeIno();
      if (ino !== undefined) return ino;
      await this.refillInos();
    }
  }

  private async refillInos(): Promise<void> {
    while (this.inoNext >= this.inoEnd) {
      // Reserve a range durably before handing any of it out: a crash loses the rest of the
      // range, never re-issues a number.
      this.inoRefill ??= outsideNumberedCall(async () => {
        const batch = this.options.inoBatch ?? 1024;
        const hi = await this.engine.write((tx) => tx.addCounter(COUNTER_INO_HI, batch));
        this.inoNext = hi - batch + 1;
        this.inoEnd = hi + 1;
      }).finally(() => (this.inoRefill = undefined));
      await this.inoRefill;
    }
  }

  // --- sessions ---

  async openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }> {
    const sessionId = randomUUID();
    const nowUs = this.nowUs();
    await this.engine.write((tx) => tx.putSession({ sessionId, info, startedUs: nowUs, heartbeatUs: nowUs }));
    return { sessionId, volume: { ...this.settings } };
  }

  async heartbeat(sessionId: string): Promise<void> {
    const nowUs = this.nowUs();
    await this.engine.write(async (tx) => {
      const row = await requireSession(tx, sessionId);
      await tx.putSession({ ...row, heartbeatUs: nowUs });
    });
  }

  async closeSession(sessionId: string): Promise<void> {
    await this.change(rootCaller, async (ctx) => {
      await requireSession(ctx.tx, sessionId);
      await this.endSession(ctx, sessionId);
    });
  }

  /** Releases the session's locks and open files (reclaiming unlinked ones) and forgets it. */
  private async endSession(ctx: OpContext, sessionId: string): Promise<void> {
    await ctx.tx.deleteSessionLocks(sessionId);
    for (const ino of await ctx.tx.takeSessionOpens(sessionId)) await this.reclaimIfOrphan(ctx, ino);
    await ctx.tx.deleteSession(sessionId);
  }

  private async reclaimIfOrphan(ctx: OpContext, ino: Ino): Promise<void> {
    const row = await ctx.tx.getInode(ino);
    if (row && row.nlink <= 0 && (await ctx.tx.openCount(ino)) === 0) {
      await ns.freeInode(ctx, await ctx.inode(ino));
    }
  }

  /** Ends every session whose last heartbeat is older than the timeout; returns their ids. */
  async expireSessions(): Promise<string[]> {
    const cutoffUs = this.nowUs() - this.sessionTimeoutMs * 1000;
    const sessions = await this.engine.read((tx) => tx.listSessions());
    const expired: string[] = [];
    for (const s of sessions) {
      if (s.heartbeatUs >= cutoffUs) continue;
      const ended = await this.change(rootCaller, async (ctx) => {
        const row = await ctx.tx.getSession(s.sessionId);
        if (!row || row.heartbeatUs >= cutoffUs) return false; // it came back meanwhile
        await this.endSession(ctx, s.sessionId);
        return true;
      });
      if (ended) expired.push(s.sessionId);
    }
    return expired;
  }

  /** Deletes history older than the retention window, in small batches. Returns rows deleted. */
  async pruneHistory(): Promise<number> {
    const beforeUs = this.nowUs() - this.settings.historyRetentionMs * 1000;
    const batch = this.options.pruneBatchRows ?? 2000;
    let total = 0;
    for (;;) {
      if (this.closed) return total;
      const n = await this.engine.pruneHistory(beforeUs, batch);
      total += n;
      if (n < batch) return total;
    }
  }

  // --- namespace reads ---

  async lookup(caller: Caller, parent: Ino, name: string, asOf?: AsOf): Promise<InodeAttr> {
    const t = this.checkAsOf(asOf);
    ns.checkName(name);
    return this.engine.read(async (tx) => {
      const dir = await getDir(tx, parent, t);
      // Only a caller who is neither root nor the owner can be refused by an ACL: read it then.
      const acl =
        caller.uid !== 0 && caller.uid !== dir.uid ? await tx.getXattr(parent, ACL_ACCESS, t) : undefined;
      requireAccess(caller, dir, X_OK, `search directory ${parent}`, acl);
      let ino: Ino;
      if (name === '.') ino = dir.ino;
      else if (name === '..') ino = dir.parent;
      else {
        const entry = await tx.lookup(parent, name, t);
        if (!entry) throw fsError.ENOENT(`no entry "${name}" in directory ${parent}`);
        ino = entry.ino;
      }
      return toAttr(await getInode(tx, ino, t));
    });
  }

  async getattr(ino: Ino, asOf?: AsOf): Promise<InodeAttr> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => toAttr(await getInode(tx, ino, t)));
  }

  async readlink(ino: Ino, asOf?: AsOf): Promise<string> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      const row = await getInode(tx, ino, t);
      if (!isLnk(row.mode) || row.target === null)
        throw fsError.EINVAL(`inode ${ino} is not a symbolic link`);
      return row.target;
    });
  }

  async readdir(
    _caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
    asOf?: AsOf,
  ): Promise<DirEntry[]> {
    const t = this.checkAsOf(asOf);
    return this.engine.read(async (tx) => {
      const row = await getDir(tx, dir, t);
      const out: DirEntry[] = [];
      const withAttr = async (e: DirEntry): Promise<DirEntry> => {
        if (withAttrs) e.attr = toAttr(await getInode(tx, e.ino, t));
        return e;
      };
      if (afterCursor < DOT_CURSOR && out.length < limit) {
        out.push(await withAttr({ name: '.', ino: row.ino, type: S_IFDIR, cursor: DOT_CURSOR }));
      }
      if (afterCursor < DOTDOT_CURSOR && out.length < limit) {
        out.push(await withAttr({ name: '..', ino: row.parent, type: S_IFDIR, cursor: DOTDOT_CURSOR }));
      }
      const remaining = limit - out.length;
      if (remaining <= 0) return out;
      const entries = await tx.listDir(dir, Math.max(0, afterCursor - CURSOR_SHIFT), remaining, t);
      for (const e of entries) {
        out.push(await withAttr({ name: e.name, ino: e.ino, type: e.type, cursor: e.cursor + CURSOR_SHIFT }));
      }
      return out;
    });
  }

  async access(caller: Caller, ino: Ino, mask: number): Promise<void> {
    await this.engine.read(async (tx) => {
      const row = await getInode(tx, ino, undefined);
      if (mask === 0) return;
      const acl = caller.uid !== 0 && caller.uid !== row.uid ? await tx.getXattr(ino, ACL_ACCESS) : undefined;
      requireAccess(caller, row, mask & (R_OK | W_OK | X_OK), `access inode ${ino} with mask ${mask}`, acl);
    });
  }

  // --- namespace changes ---

  async mknod(
    caller: Caller,
    parent: Ino,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<InodeAttr> {
    const type = mode & S_IFMT || S_IFREG;
    if (type === S_IFDIR) throw fsError.EINVAL('mknod cannot create a directory; use mkdir');
    if (type === S_IFLNK) throw fsError.EINVAL('mknod cannot create a symbolic link; use symlink');
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: type | (mode & 0o7777),
          umask,
          rdev,
        }),
      ),
    );
  }

  async mkdir(caller: Caller, parent: Ino, name: string, mode: number, umask: number): Promise<InodeAttr> {
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: S_IFDIR | (mode & 0o7777),
          umask,
        }),
      ),
    );
  }

  async symlink(caller: Caller, parent: Ino, name: string, target: string): Promise<InodeAttr> {
    if (target.length === 0) throw fsError.ENOENT('symlink target is empty');
    if (nameByteLength(target) >= ns.PATH_MAX_BYTES) {
      throw fsError.ENAMETOOLONG(`symlink target of ${nameByteLength(target)} bytes is over the path limit`);
    }
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) =>
      toAttr(
        await ns.createEntry(ctx, this.settings, parent, name, {
          ino,
          mode: S_IFLNK | 0o777,
          umask: 0,
          target,
        }),
      ),
    );
  }

  async link(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await ns.link(ctx, this.settings, ino, newParent, newName)),
    );
  }

  async tmpfile(
    caller: Caller,
    sessionId: string,
    parent: Ino,
    mode: number,
    umask: number,
  ): Promise<InodeAttr> {
    const ino = this.takeIno() ?? (await this.allocIno());
    return this.change(caller, async (ctx) => {
      await requireSession(ctx.tx, sessionId);
      return toAttr(await createTmpfile(ctx, sessionId, parent, ino, mode, umask));
    });
  }

  async linkTmpfile(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await linkTmpfile(ctx, this.settings, ino, newParent, newName)),
    );
  }

  async unlink(caller: Caller, parent: Ino, name: string): Promise<void> {
    await this.change(caller, (ctx) => ns.unlink(ctx, parent, name));
  }

  async rmdir(caller: Caller, parent: Ino, name: string): Promise<void> {
    await this.change(caller, (ctx) => ns.rmdir(ctx, parent, name));
  }

  async rename(
    caller: Caller,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    await this.change(caller, (ctx) =>
      ns.rename(ctx, this.settings, parent, name, newParent, newName, flags),
    );
  }

  async setattr(caller: Caller, ino: Ino, changes: SetAttrChanges): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await fileOps.setattr(ctx, this.settings.chunkSizeBytes, ino, changes)),
    );
  }

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
  ): Promise<InodeAttr> {
    return this.change(caller, async (ctx) =>
      toAttr(await fileOps.commitWrites(ctx, this.settings.chunkSizeBytes, ino, writes, minSizeBytes, mtime)),
    );
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
    return this.engine.write((tx) =>
      fileOps.replaceChunkSlices(tx, this.settings.chunkSizeBytes, ino, chunkIndex, expectedIds, merged),
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

  // --- volume ---

  async statfs(): Promise<StatFsInfo> {
    return this.engine.read(async (tx) => ({
      capacityBytes: CAPACITY_BYTES,
      usedBytes: await tx.getCounter(ns.COUNTER_USED_BYTES),
      inodesUsed: await tx.getCounter(ns.COUNTER_INODES),
      inodesTotal: INODES_TOTAL,
    }));
  }

  async volume(): Promise<VolumeSettings> {
    return { ...this.settings };
  }

  async sync(): Promise<void> {
    // Engines without sync() commit durably already (PostgreSQL).
    await this.engine.sync?.();
  }

  /** The volume's shared secret, for the RPC server's authentication. Never part of MetaApi. */
  async volumeSecret(): Promise<string> {
    const secret = await this.engine.read((tx) => tx.getSetting(SETTING_SECRET));
    if (!secret) throw fsError.EIO(`volume "${this.settings.name}" has no secret; re-format it`);
    return secret;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.engine.close();
  }
}

const ACL_ACCESS = 'system.posix_acl_access';
const rootCaller: Caller = { uid: 0, gid: 0, pid: 0 };

async function getInode(tx: ReadTx, ino: Ino, asOfUs: number | undefined): Promise<InodeRow> {
  const row = await tx.getInode(ino, asOfUs);
  if (!row) {
    throw fsError.ENOENT(
      asOfUs === undefined ? `inode ${ino} does not exist` : `inode ${ino} did not exist at ${asOfUs} µs`,
    );
  }
  return row;
}

async function getDir(tx: ReadTx, ino: Ino, asOfUs: number | undefined): Promise<InodeRow> {
  const row = await getInode(tx, ino, asOfUs);
  if (!isDir(row.mode)) throw fsError.ENOTDIR(`inode ${ino} is not a directory`);
  return row;
}

async function requireSession(tx: ReadTx | WriteTx, sessionId: string) {
  const row = await tx.getSession(sessionId);
  if (!row) throw fsError.ENOTCONN(`session ${sessionId} is unknown or expired; the client must remount`);
  return row;
}

function checkXattrName(name: string): void {
  if (name.length === 0) throw fsError.EINVAL('empty xattr name');
  if (nameByteLength(name) > XATTR_NAME_MAX_BYTES) {
    throw fsError.ERANGE(
      `xattr name of ${nameByteLength(name)} bytes is over the ${XATTR_NAME_MAX_BYTES}-byte limit`,
    );
  }
  if (!/^(user|trusted|security|system)\./.test(name)) {
    throw fsError.ENOTSUP(
      `xattr namespace of "${name}" is not supported (user., trusted., security., system.)`,
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
