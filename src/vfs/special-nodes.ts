import type { Ino } from '../common/index.js';
import type { InodeAttr } from '../meta/api.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK } from './attr.js';

/**
 * FIFOs, sockets and device nodes the kernel holds (from the entry or attributes it was
 * last given until its FORGET). Linux keeps such an inode while a descriptor holds it, so
 * fstat of an open FIFO works after its last name is gone (nlink 0); but opening one
 * never reaches the file system (the kernel's pipe or device code serves it), so nothing
 * registers it as open and the metadata service deletes it at unlink. This mount answers
 * getattr for such an inode from what it last saw, with nlink 0. Regular files and
 * directories have their own opens (open-files.ts, open-dirs.ts) and are not kept here.
 */
export class SpecialNodes {
  private readonly nodes = new Map<Ino, InodeAttr>();

  /** Attributes this mount hands to the kernel: remembered when they are a special node's. */
  note(attr: InodeAttr): void {
    const type = attr.mode & S_IFMT;
    if (type === S_IFIFO || type === S_IFSOCK || type === S_IFCHR || type === S_IFBLK) {
      this.nodes.set(attr.ino, attr);
    }
  }

  /** The kernel dropped the inode: nothing can ask for it any more. */
  forget(ino: Ino): void {
    this.nodes.delete(ino);
  }

  /** For a getattr the service answered ENOENT: the node as last seen, with no names left. */
  removedAttr(ino: Ino): InodeAttr | undefined {
    const attr = this.nodes.get(ino);
    return attr && { ...attr, nlink: 0 };
  }
}
