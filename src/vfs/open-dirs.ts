import type { Ino } from '../common/index.js';
import type { Caller, InodeAttr, MetaApi } from '../meta/api.js';
import { S_IFDIR, S_IFMT } from './attr.js';

interface OpenDir {
  opens: number;
  /** Attributes at removal, nlink 0: set once rmdir or a rename removed it while open. */
  removed: InodeAttr | null;
}

/**
 * Directories open in this mount. Linux keeps a removed directory's inode while it is open
 * (fstat works and shows nlink 0); the metadata service deletes a directory at rmdir. So this
 * mount remembers the attributes of an open directory it removes, or renames another over,
 * and answers getattr from them until the last close. As for open files, opens in other
 * mounts are not protected, and the lookup that finds the victim is paid only while some
 * directory is open here.
 */
export class OpenDirs {
  private readonly dirs = new Map<Ino, OpenDir>();

  constructor(private readonly meta: MetaApi) {}

  opened(ino: Ino): void {
    const dir = this.dirs.get(ino);
    if (dir) dir.opens++;
    else this.dirs.set(ino, { opens: 1, removed: null });
  }

  released(ino: Ino): void {
    const dir = this.dirs.get(ino);
    if (dir && --dir.opens <= 0) this.dirs.delete(ino);
  }

  /** The directory `name` in `parent` names, if it is open here: call before removing it. */
  async victim(caller: Caller, parent: Ino, name: string): Promise<InodeAttr | undefined> {
    if (this.dirs.size === 0) return undefined;
    let attr: InodeAttr;
    try {
      attr = await this.meta.lookup(caller, parent, name);
    } catch {
      return undefined; // The removal itself reports a missing name.
    }
    return (attr.mode & S_IFMT) === S_IFDIR && this.dirs.has(attr.ino) ? attr : undefined;
  }

  /** The removal of `victim` succeeded: keep its attributes as Linux keeps the inode. */
  removed(victim: InodeAttr | undefined): void {
    const dir = victim && this.dirs.get(victim.ino);
    if (!dir || !victim) return;
    const nowMs = Date.now();
    const ctime = { sec: Math.floor(nowMs / 1000), nsec: (nowMs % 1000) * 1_000_000 };
    dir.removed = { ...victim, nlink: 0, ctime };
  }

  /** The kept attributes of an open directory that was removed, if `ino` is one. */
  removedAttr(ino: Ino): InodeAttr | undefined {
    return this.dirs.get(ino)?.removed ?? undefined;
  }
}
