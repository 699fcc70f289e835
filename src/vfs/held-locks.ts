import type { Ino } from '../common/index.js';

/**
 * What this mount knows about the locks its handles took, kept so that closes and releases
 * can drop them the way Linux does and a lost session can tell which handles held some. The
 * locks themselves live in the metadata service; this is only who took what through which
 * handle.
 */
export class HeldLocks {
  /**
   * Per inode, the lock owners that took POSIX or OFD locks on it and the handles they
   * locked through. Per inode: a close of any descriptor of the file drops the process's
   * locks, even ones taken through another (flush). The handles: an OFD lock's owner is
   * its open file, whose last close the kernel reports only as that handle's release.
   */
  private readonly ownersByIno = new Map<Ino, Map<bigint, Set<number>>>();
  /** Lock drops of releases still running, per inode (see noteRelease). */
  private readonly releases = new Map<Ino, Promise<unknown>>();
  /** Handles holding a flock lock (flock locks belong to the open file: one handle). */
  private readonly flockHandles = new Set<number>();

  /** Records a lock call that succeeded through handle `fh`. */
  noteLocked(ino: Ino, fh: number, lockOwner: bigint, isFlock: boolean, unlock: boolean): void {
    if (isFlock) {
      if (unlock) this.flockHandles.delete(fh);
      else this.flockHandles.add(fh);
      return;
    }
    if (unlock) return;
    let owners = this.ownersByIno.get(ino);
    if (owners === undefined) this.ownersByIno.set(ino, (owners = new Map()));
    let handles = owners.get(lockOwner);
    if (handles === undefined) owners.set(lockOwner, (handles = new Set()));
    handles.add(fh);
  }

  /** Whether `lockOwner` took POSIX or OFD locks on the inode; it is forgotten. */
  forgetOwner(ino: Ino, lockOwner: bigint): boolean {
    const owners = this.ownersByIno.get(ino);
    if (!owners?.delete(lockOwner)) return false;
    if (owners.size === 0) this.ownersByIno.delete(ino);
    return true;
  }

  forgetFlock(fh: number): void {
    this.flockHandles.delete(fh);
  }

  /**
   * Owners still holding locks taken through a handle at its release. A process's own
   * close flushed (and forgot) it first, so these are OFD locks, owned by this open file.
   */
  ownersOf(ino: Ino, fh: number): bigint[] {
    const owners = this.ownersByIno.get(ino);
    if (owners === undefined) return [];
    return [...owners].filter(([, handles]) => handles.has(fh)).map(([owner]) => owner);
  }

  /**
   * Everything is forgotten (the service released it with the session); returns the inodes
   * that had locks, `inoOfHandle` naming the file of a flock handle.
   */
  takeLockedInodes(inoOfHandle: (fh: number) => Ino | undefined): Set<Ino> {
    const locked = new Set<Ino>(this.ownersByIno.keys());
    for (const fh of this.flockHandles) {
      const ino = inoOfHandle(fh);
      if (ino !== undefined) locked.add(ino);
    }
    this.ownersByIno.clear();
    this.flockHandles.clear();
    return locked;
  }

  /**
   * The kernel sends RELEASE in the background: close(2) returns before this mount has dropped
   * the OFD and flock locks of the last descriptor, while Linux drops them inside close. So a
   * GETLK or SETLK right after such a close (flock -n as the previous holder exits) found the
   * lock still held. Lock calls on the inode wait for the drops of releases read before them.
   */
  noteRelease(ino: Ino, dropping: Promise<void>): void {
    const all = Promise.allSettled([this.releases.get(ino), dropping]);
    this.releases.set(ino, all);
    void all.then(() => {
      if (this.releases.get(ino) === all) this.releases.delete(ino);
    });
  }

  async awaitReleases(ino: Ino): Promise<void> {
    const pending = this.releases.get(ino);
    if (pending !== undefined) await pending;
  }
}
