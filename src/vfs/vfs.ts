import { Errno, fsError, isFsError, type Ino } from '../common/index.js';
import {
  direntTypeOfMode,
  type AttrReply,
  type DirEntryOut,
  type Entry,
  type FileSystem,
  type NegativeEntry,
  type RequestContext,
  type SetAttrIn,
  type StatFs,
} from '../fuse/index.js';
import type { Caller, InodeAttr, SetAttrChanges } from '../meta/api.js';
import { ACL_ACCESS_XATTR, isMinimalAcl, modeBitsOfAcl } from './acl-mode.js';
import { requireFileEnd } from './attr.js';
import { foreignChownRefusal } from './foreign-chown.js';
import { nowUs } from './version-history.js';
import { VfsHandles } from './vfs-handles.js';

const READDIR_BATCH = 128;
const READDIRPLUS_BATCH = 32;
const STATFS_BLOCK_BYTES = 4096;
/** What the kernel asks of every file before its first write (to drop file capabilities). */
const CAPABILITY_XATTR = 'security.capability';

/**
 * The POSIX file system of a mount: the FUSE layer's `FileSystem` over the metadata
 * service (`MetaApi`) and the data path. Namespace operations go straight to the metadata
 * service; file data goes through per-inode open-file state that buffers writes and
 * commits them on flush/fsync/close (close-to-open consistency between mounts).
 *
 * The operations are split by what they work on: the session and shared state (VfsSession),
 * open files, handles and locks (VfsHandles), and here names, attributes, directories,
 * extended attributes and the volume.
 */
export class Vfs extends VfsHandles implements FileSystem {
  // --- attributes ---

  async lookup(ctx: RequestContext, parent: Ino, name: string): Promise<Entry | NegativeEntry> {
    try {
      const attr = await this.meta.lookup(this.callers.of(ctx), parent, name);
      this.recentLookups.note(attr, nowUs());
      return this.entry(attr);
    } catch (err) {
      if (isFsError(err) && err.errno === Errno.ENOENT && this.options.entryTimeoutMs > 0) {
        return { negative: true, entryTimeoutMs: this.options.entryTimeoutMs };
      }
      throw err;
    }
  }

  async getattr(_ctx: RequestContext, ino: Ino): Promise<AttrReply> {
    let attr: InodeAttr;
    try {
      attr = await this.meta.getattr(ino);
    } catch (err) {
      const removed =
        isFsError(err) && err.errno === Errno.ENOENT
          ? (this.specialNodes.removedAttr(ino) ??
            this.openRemovedElsewhere(ino) ??
            this.removedSinceLookup(ino))
          : undefined;
      if (removed === undefined) throw err;
      return this.attrReply(removed);
    }
    this.openFiles.noteAttr(attr);
    return this.attrReply(attr);
  }

  /**
   * A file open here whose last name another mount removed: as on a local file system, it
   * stays what the descriptor shows (its last attributes, no names left), and reads go on
   * from the slices this mount knows (docs/RELIABILITY.md). Without this, the kernel's next getattr
   * (past the attribute timeout, or a read past its cached size) failed them with ENOENT.
   */
  private openRemovedElsewhere(ino: Ino): InodeAttr | undefined {
    const file = this.openFiles.get(ino);
    return file && { ...file.attr, nlink: 0 };
  }

  /**
   * A regular file the kernel looked up a moment ago and asks about right after, removed in
   * between (a commit by rename over its name, here or on another mount): stat(2) of the name
   * answers the version its lookup found, with no names left, as on a local file system where
   * the lookup and the getattr are one step a rename cannot split. It failed with ENOENT for a
   * name that never went away.
   */
  private removedSinceLookup(ino: Ino): InodeAttr | undefined {
    const looked = this.recentLookups.get(ino, nowUs());
    return looked && { ...looked.attr, nlink: 0 };
  }

  async setattr(ctx: RequestContext, ino: Ino, changes: SetAttrIn): Promise<AttrReply> {
    const caller = this.callers.of(ctx);
    if (caller.uid !== 0 && isEmptySetattr(changes)) await this.refuseForeignChown(caller, ino);
    const metaChanges: SetAttrChanges = {};
    if (changes.mode !== undefined) metaChanges.mode = changes.mode;
    if (changes.uid !== undefined) metaChanges.uid = changes.uid;
    if (changes.gid !== undefined) metaChanges.gid = changes.gid;
    if (changes.atime !== undefined) metaChanges.atime = changes.atime;
    if (changes.mtime !== undefined) metaChanges.mtime = changes.mtime;
    if (changes.ctime !== undefined) metaChanges.ctime = changes.ctime;
    if (changes.killSuidgid) metaChanges.killSuid = true;
    if (changes.sizeBytes !== undefined) {
      requireFileEnd(changes.sizeBytes, 'truncate');
      metaChanges.sizeBytes = changes.sizeBytes;
    }
    let setting: Promise<InodeAttr> | undefined;
    const set = (): Promise<InodeAttr> => (setting = this.meta.setattr(caller, ino, metaChanges));
    if (changes.sizeBytes !== undefined || changes.mtime !== undefined) {
      // Pending writes land first, so a truncate cuts them like it cuts committed data and an
      // explicit mtime (utimes after a write) is not overwritten by their later commit. Setting
      // only times to an explicit instant (tar's futimens before close) cannot conflict with
      // writes committed at that same mtime: it joins their metadata batch (see flush).
      const mtime = changes.mtime;
      const timesOnly =
        typeof mtime === 'object' &&
        changes.sizeBytes === undefined &&
        changes.mode === undefined &&
        changes.uid === undefined &&
        changes.gid === undefined &&
        !changes.killSuidgid;
      await this.openFiles.flush(ino, caller, timesOnly ? { start: set, mtime } : undefined);
    }
    const attr = await (setting ?? set());
    if (changes.sizeBytes !== undefined) this.openFiles.invalidate(ino);
    this.openFiles.noteAttr(attr);
    return this.attrReply(attr);
  }

  /** An empty SETATTR may be a chown(-1, -1) that Linux refuses: see foreignChownRefusal. */
  private async refuseForeignChown(caller: Caller, ino: Ino): Promise<void> {
    const refusal = foreignChownRefusal(caller, await this.meta.getattr(ino));
    if (refusal !== undefined) throw fsError.EPERM(refusal);
  }

  // --- namespace ---

  async readlink(_ctx: RequestContext, ino: Ino): Promise<string> {
    return this.meta.readlink(ino);
  }

  async symlink(ctx: RequestContext, parent: Ino, name: string, target: string): Promise<Entry> {
    return this.entry(await this.meta.symlink(this.callers.of(ctx), parent, name, target));
  }

  async mknod(ctx: RequestContext, parent: Ino, name: string, mode: number, rdev: number): Promise<Entry> {
    return this.entry(await this.meta.mknod(this.callers.of(ctx), parent, name, mode, rdev, ctx.umask));
  }

  async mkdir(ctx: RequestContext, parent: Ino, name: string, mode: number): Promise<Entry> {
    return this.entry(await this.meta.mkdir(this.callers.of(ctx), parent, name, mode, ctx.umask));
  }

  async unlink(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    const caller = this.callers.of(ctx);
    await this.protectOpenFile(caller, parent, name);
    this.specialNodes.removedHere(await this.meta.unlink(caller, parent, name));
  }

  async rmdir(ctx: RequestContext, parent: Ino, name: string): Promise<void> {
    this.specialNodes.removedHere(await this.meta.rmdir(this.callers.of(ctx), parent, name));
  }

  async rename(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    const caller = this.callers.of(ctx);
    await this.protectOpenFile(caller, newParent, newName);
    this.specialNodes.removedHere(await this.meta.rename(caller, parent, name, newParent, newName, flags));
  }

  async link(ctx: RequestContext, ino: Ino, newParent: Ino, newName: string): Promise<Entry> {
    if (!this.linkableTmpfiles.has(ino)) {
      return this.entry(await this.meta.link(this.callers.of(ctx), ino, newParent, newName));
    }
    const attr = await this.meta.linkTmpfile(this.callers.of(ctx), ino, newParent, newName);
    this.linkableTmpfiles.delete(ino);
    return this.entry(attr);
  }

  // --- directories (no opendir: one removed while open is kept by the removal's reply, as any
  // inode the kernel still holds, see special-nodes.ts) ---

  async readdir(
    ctx: RequestContext,
    ino: Ino,
    _fh: number,
    offset: number,
    plus: boolean,
  ): Promise<DirEntryOut[]> {
    const caller = this.callers.of(ctx);
    const limit = plus ? READDIRPLUS_BATCH : READDIR_BATCH;
    const entries = await this.meta.readdir(caller, ino, offset, limit, plus);
    return entries.map((e) => {
      const out: DirEntryOut = {
        name: e.name,
        ino: e.ino,
        type: direntTypeOfMode(e.type),
        nextOffset: e.cursor,
      };
      if (plus && e.attr !== undefined && e.name !== '.' && e.name !== '..') out.entry = this.entry(e.attr);
      return out;
    });
  }

  // --- volume ---

  async statfs(): Promise<StatFs> {
    const info = await this.meta.statfs();
    const blocks = Math.floor(info.capacityBytes / STATFS_BLOCK_BYTES);
    const free = Math.max(0, blocks - Math.ceil(info.usedBytes / STATFS_BLOCK_BYTES));
    return {
      blocks,
      blocksFree: free,
      blocksAvailable: free,
      files: info.inodesTotal,
      filesFree: Math.max(0, info.inodesTotal - info.inodesUsed),
      blockSizeBytes: STATFS_BLOCK_BYTES,
      nameMaxBytes: 255,
      fragmentSizeBytes: STATFS_BLOCK_BYTES,
    };
  }

  // --- extended attributes (POSIX ACLs are stored as the system.posix_acl_* xattrs) ---

  async setxattr(ctx: RequestContext, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    // The value is a view into the request buffer; the metadata call may outlive it (RPC queues).
    const copy = Buffer.from(value);
    const caller = this.callers.of(ctx);
    this.createdWithoutXattrs.delete(ino);
    if (name === ACL_ACCESS_XATTR && isMinimalAcl(copy)) {
      // Only the mode changes (the owner-only chmod rules apply); an ACL the inode had goes.
      const attr = await this.meta.getattr(ino);
      const mode = (attr.mode & ~0o777) | (modeBitsOfAcl(copy) ?? 0);
      this.openFiles.noteAttr(await this.meta.setattr(caller, ino, { mode }));
      await this.meta.removexattr(caller, ino, name).catch((err: unknown) => {
        if (!isFsError(err) || err.errno !== Errno.ENODATA) throw err;
      });
      return;
    }
    await this.meta.setxattr(caller, ino, name, copy, flags);
    const bits = name === ACL_ACCESS_XATTR ? modeBitsOfAcl(copy) : null;
    if (bits !== null) {
      const attr = await this.meta.getattr(ino);
      if ((attr.mode & 0o777) !== bits) {
        this.openFiles.noteAttr(await this.meta.setattr(caller, ino, { mode: (attr.mode & ~0o777) | bits }));
      }
    }
  }

  async getxattr(_ctx: RequestContext, ino: Ino, name: string): Promise<Buffer> {
    if (name === CAPABILITY_XATTR && this.createdWithoutXattrs.has(ino)) {
      throw fsError.ENODATA(`inode ${ino} has no ${name}`);
    }
    return this.meta.getxattr(ino, name);
  }

  async listxattr(ctx: RequestContext, ino: Ino): Promise<string[]> {
    const names = await this.meta.listxattr(ino);
    // The kernel hides trusted.* from callers without CAP_SYS_ADMIN only for file systems
    // that list through its xattr handlers; FUSE passes the list through, so filter here
    // (uid 0 stands in for the capability, as everywhere in StrataFS).
    return ctx.uid === 0 ? names : names.filter((name) => !name.startsWith('trusted.'));
  }

  async removexattr(ctx: RequestContext, ino: Ino, name: string): Promise<void> {
    this.createdWithoutXattrs.delete(ino);
    await this.meta.removexattr(this.callers.of(ctx), ino, name);
  }

  async access(ctx: RequestContext, ino: Ino, mask: number): Promise<void> {
    await this.meta.access(this.callers.of(ctx), ino, mask);
  }
}

/** chown(-1, -1) and file_remove_privs() both arrive as a SETATTR that changes nothing. */
function isEmptySetattr(changes: SetAttrIn): boolean {
  return (
    changes.mode === undefined &&
    changes.uid === undefined &&
    changes.gid === undefined &&
    changes.sizeBytes === undefined &&
    changes.atime === undefined &&
    changes.mtime === undefined &&
    !changes.killSuidgid
  );
}
