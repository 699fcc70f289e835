import type { Ino } from '../common/index.js';
import type { InodeAttr, NameRemoval } from '../meta/api.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFSOCK } from './attr.js';

/**
 * Directories remembered for a removal nobody here saw coming (see SpecialNodes): the most
 * recently answered ones, so a mount the kernel fills with a large tree keeps a bounded
 * ~2.5 MB instead of one entry per directory in the kernel's cache.
 */
const KEPT_DIRECTORIES = 10_000;
/**
 * Inodes this mount removed, kept until their FORGET. The kernel forgets an inode nothing holds
 * right after its unlink, so few are kept at once; the bound is for forgets that never come (an
 * inode the kernel learned of before a session handover is not counted, so not forgotten here).
 */
const KEPT_REMOVED = 10_000;

/**
 * What this mount answers getattr with for an inode the metadata service no longer has but the
 * kernel still holds (an entry it accepted and has not forgotten). Linux keeps such an inode
 * while anything holds it, and fstat through that hold shows its last attributes with nlink 0:
 * an O_PATH descriptor, a working directory, an open directory, FIFO or device. The service
 * deletes the row once the last name is gone and no session has the inode open, and opens that
 * never reach the file system (O_PATH, FIFOs, devices, a cwd) or that it does not track
 * (directories) do not count.
 *
 * The inodes this mount takes the last name from (unlink, rmdir, rename over) are kept from the
 * call's reply (NameRemoval) until FORGET. Removals by other mounts are not in any reply: for
 * FIFOs, sockets, devices and directories, the last attributes answered are kept as well (the
 * directories bounded to the most recent ones); a regular file removed by another mount while
 * open here is answered from its open state (Vfs.openRemovedElsewhere), since opens are not
 * registered with the service.
 */
export class SpecialNodes {
  private readonly nodes = new Map<Ino, InodeAttr>();
  /** In the order last answered (oldest first): Map keeps insertion order. */
  private readonly dirs = new Map<Ino, InodeAttr>();
  /** Removed by this mount (nlink 0), oldest first. */
  private readonly removed = new Map<Ino, InodeAttr>();

  /** Attributes this mount hands to the kernel: remembered when they are a special node's. */
  note(attr: InodeAttr): void {
    const type = attr.mode & S_IFMT;
    if (type === S_IFDIR) {
      this.dirs.delete(attr.ino);
      this.dirs.set(attr.ino, attr);
      if (this.dirs.size > KEPT_DIRECTORIES) this.dirs.delete(this.dirs.keys().next().value as Ino);
    } else if (type === S_IFIFO || type === S_IFSOCK || type === S_IFCHR || type === S_IFBLK) {
      this.nodes.set(attr.ino, attr);
    }
    // A removed file still open somewhere changes until its last close: keep the newest view.
    if (attr.nlink === 0 && this.removed.has(attr.ino)) this.removed.set(attr.ino, attr);
  }

  /**
   * The reply of an unlink, rmdir or rename made here: the inodes it left without a name. Servers
   * that do not report one answer nothing; then only the kinds `note` keeps are covered.
   */
  removedHere(removal: NameRemoval | null | undefined): void {
    if (!removal || !Array.isArray(removal.unnamed)) return;
    for (const attr of removal.unnamed) {
      this.removed.delete(attr.ino);
      this.removed.set(attr.ino, attr);
      if (this.removed.size > KEPT_REMOVED) this.removed.delete(this.removed.keys().next().value as Ino);
    }
  }

  /** The kernel dropped the inode: nothing can ask for it any more. */
  forget(ino: Ino): void {
    this.nodes.delete(ino);
    this.dirs.delete(ino);
    this.removed.delete(ino);
  }

  /** For a getattr the service answered ENOENT: the node as last seen, with no names left. */
  removedAttr(ino: Ino): InodeAttr | undefined {
    const attr = this.removed.get(ino) ?? this.nodes.get(ino) ?? this.dirs.get(ino);
    return attr && { ...attr, nlink: 0 };
  }
}
