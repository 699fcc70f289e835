import { fsError } from '../../src/common/index.js';
import { LockType, type FileLock } from '../../src/fuse/index.js';

/** One held lock: POSIX byte-range locks belong to a lock owner, flock locks to an open file. */
interface HeldLock {
  owner: bigint;
  pid: number;
  start: number;
  end: number;
  type: number;
  isFlock: boolean;
}

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }) =>
  a.start <= b.end && b.start <= a.end;

/**
 * The lock table of one inode for the test file system: POSIX record locks (fcntl) and
 * BSD flock locks, kept apart as Linux keeps them, with waiters for SETLKW that give up
 * with EINTR when their request is interrupted.
 */
export class LockTable {
  private held: HeldLock[] = [];
  private waiters = new Set<() => void>();

  /** The first lock of another owner that conflicts with `lock`, if any. */
  conflict(owner: bigint, lock: FileLock, isFlock: boolean): HeldLock | undefined {
    return this.held.find(
      (other) =>
        other.isFlock === isFlock &&
        other.owner !== owner &&
        (other.type === LockType.F_WRLCK || lock.type === LockType.F_WRLCK) &&
        overlaps(other, lock),
    );
  }

  test(owner: bigint, lock: FileLock): FileLock {
    const other = this.conflict(owner, lock, false);
    if (!other) return { start: lock.start, end: lock.end, type: LockType.F_UNLCK, pid: 0 };
    return { start: other.start, end: other.end, type: other.type, pid: other.pid };
  }

  async set(
    owner: bigint,
    lock: FileLock,
    sleep: boolean,
    isFlock: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    if (lock.type === LockType.F_UNLCK) {
      this.remove(owner, lock, isFlock);
      return;
    }
    for (;;) {
      if (!this.conflict(owner, lock, isFlock)) break;
      if (!sleep) throw fsError.EAGAIN(`range ${lock.start}-${lock.end} is locked by another owner`);
      await this.waitForChange(signal);
    }
    this.remove(owner, lock, isFlock);
    this.held.push({ owner, pid: lock.pid, start: lock.start, end: lock.end, type: lock.type, isFlock });
  }

  /** Drops `owner`'s locks in the range (splitting partly covered ones), or all its flock locks. */
  remove(owner: bigint, range: { start: number; end: number }, isFlock: boolean): void {
    const kept: HeldLock[] = [];
    for (const lock of this.held) {
      if (lock.owner !== owner || lock.isFlock !== isFlock || !overlaps(lock, range)) {
        kept.push(lock);
        continue;
      }
      if (isFlock) continue;
      if (lock.start < range.start) kept.push({ ...lock, end: range.start - 1 });
      if (lock.end > range.end) kept.push({ ...lock, start: range.end + 1 });
    }
    this.held = kept;
    for (const wake of [...this.waiters]) wake();
  }

  private waitForChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(fsError.EINTR('lock wait interrupted'));
        return;
      }
      const onAbort = () => {
        this.waiters.delete(wake);
        reject(fsError.EINTR('lock wait interrupted'));
      };
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
