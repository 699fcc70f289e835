import type { Ino } from '../common/index.js';
import type { InodeAttr } from '../meta/api.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFSOCK } from './attr.js';

/**
 * Directories remembered for a removal nobody here saw coming (see SpecialNodes): the most
 * recently answered ones, so a mount the kernel fills with a large tree keeps a bounded
 * ~2.5 MB instead of one entry per directory in the kernel's cache.
 */
const KEPT_DIRECTORIES = 10_000;

/**
 * FIFOs, sockets and device nodes the kernel holds (from the entry or attributes it was
 * last given until its FORGET). Linux keeps such an inode while a descriptor holds it, so
 * fstat of an open FIFO works after its last name is gone (nlink 0); but opening one
 * never reaches the file system (the kernel's pipe or device code serves it), so nothing
 * registers it as open and the metadata service deletes it at unlink. This mount answers
 * getattr for such an inode from what it last saw, with nlink 0. Regular files have their
 * own opens (open-files.ts) and are not kept here.
 *
 * Directories the same way, for the holds that are no open: a process's working directory
 * (stat(".") and opendir(".") after another process removed it: Linux answers nlink 0 and an
 * empty listing, the service ENOENT). Open directories are kept exactly by open-dirs.ts;
 * these are the last attributes answered, kept for the KEPT_DIRECTORIES most recent ones
 * (the kernel does not say which inode an RMDIR removes, and a lookup first would cost every
 * rmdir a metadata round trip).
 */
export class SpecialNodes {
  private readonly nodes = new Map<Ino, InodeAttr>();
  /** In the order last answered (oldest first): Map keeps insertion order. */
  private readonly dirs = new Map<Ino, InodeAttr>();

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
  }

  /** The kernel dropped the inode: nothing can ask for it any more. */
  forget(ino: Ino): void {
    this.nodes.delete(ino);
    this.dirs.delete(ino);
  }

  /** For a getattr the service answered ENOENT: the node as last seen, with no names left. */
  removedAttr(ino: Ino): InodeAttr | undefined {
    const attr = this.nodes.get(ino) ?? this.dirs.get(ino);
    return attr && { ...attr, nlink: 0 };
  }
}
