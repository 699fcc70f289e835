import { fsError, type Ino } from '../common/index.js';
import type { Caller, Timespec } from './api.js';
import { ACL_ACCESS_XATTR } from './acl.js';
import { isDir } from './attrs.js';
import type { InodeRow, WriteTx } from './engine.js';
import { requireAccess } from './permissions.js';

/**
 * One operation's view of the inodes it touches. Each inode is loaded once and shared, so
 * an operation that reaches the same inode twice (rename within one directory, a target
 * that is also a parent) changes one object; `flush` writes back only what changed.
 */
export class OpContext {
  private readonly loaded = new Map<Ino, InodeRow>();
  private readonly dirty = new Set<Ino>();
  private readonly deleted = new Set<Ino>();
  private readonly created = new Set<Ino>();

  constructor(
    readonly tx: WriteTx,
    readonly caller: Caller,
    readonly now: Timespec,
  ) {}

  async inode(ino: Ino, what = 'inode'): Promise<InodeRow> {
    const row = await this.findInode(ino);
    if (!row) throw fsError.ENOENT(`${what} ${ino} does not exist (deleted, or never created)`);
    return row;
  }

  /** The inode, or undefined when it does not exist; loaded once, as `inode` does. */
  async findInode(ino: Ino): Promise<InodeRow | undefined> {
    if (this.deleted.has(ino)) return undefined;
    const cached = this.loaded.get(ino);
    if (cached) return cached;
    const row = await this.tx.getInode(ino);
    if (row) this.loaded.set(ino, row);
    return row;
  }

  async dir(ino: Ino): Promise<InodeRow> {
    const row = await this.inode(ino, 'directory');
    if (!isDir(row.mode)) throw fsError.ENOTDIR(`inode ${ino} is not a directory`);
    return row;
  }

  /** Registers a new inode (written at flush). */
  add(row: InodeRow): void {
    this.loaded.set(row.ino, row);
    this.dirty.add(row.ino);
    this.created.add(row.ino);
  }

  touch(row: InodeRow): void {
    this.dirty.add(row.ino);
  }

  /** Marks the inode deleted: its row, xattrs and chunks go at flush. */
  remove(ino: Ino): void {
    this.deleted.add(ino);
    this.dirty.delete(ino);
  }

  /** mtime and ctime of a directory whose entries changed. */
  touchDir(dir: InodeRow): void {
    dir.mtimeSec = dir.ctimeSec = this.now.sec;
    dir.mtimeNsec = dir.ctimeNsec = this.now.nsec;
    this.dirty.add(dir.ino);
  }

  touchCtime(row: InodeRow): void {
    row.ctimeSec = this.now.sec;
    row.ctimeNsec = this.now.nsec;
    this.dirty.add(row.ino);
  }

  /** Checks `mask` on `inode` for the caller, consulting its access ACL when it matters. */
  async requireAccess(inode: InodeRow, mask: number, what: string): Promise<void> {
    const acl =
      this.caller.uid !== 0 && this.caller.uid !== inode.uid
        ? await this.tx.getXattr(inode.ino, ACL_ACCESS_XATTR)
        : undefined;
    requireAccess(this.caller, inode, mask, what, acl);
  }

  async flush(): Promise<void> {
    for (const ino of this.deleted) await this.tx.deleteInode(ino);
    for (const ino of this.dirty)
      if (!this.deleted.has(ino)) await this.tx.putInode(this.loaded.get(ino)!, this.created.has(ino));
  }
}
