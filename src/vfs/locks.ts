import { Errno, fsError, isFsError, type Ino } from '../common/index.js';
import { LockType as FuseLockType, type FileLock } from '../fuse/index.js';
import type { LockOwner, LockRange, LockType, MetaApi } from '../meta/api.js';

/** The kernel says "to end of file" with OFFSET_MAX (2^63-1), which a JS number cannot hold exactly. */
export function toLockRange(lock: FileLock): LockRange {
  return {
    type: toMetaLockType(lock.type),
    start: Math.min(lock.start, Number.MAX_SAFE_INTEGER),
    end: Math.min(lock.end, Number.MAX_SAFE_INTEGER),
    pid: lock.pid,
  };
}

export function fromLockRange(lock: LockRange | null): FileLock {
  if (lock === null) return { start: 0, end: 0, type: FuseLockType.F_UNLCK, pid: 0 };
  return {
    start: lock.start,
    // Number.MAX_SAFE_INTEGER is "to end of file" in the FUSE layer's contract as well.
    end: lock.end,
    type: lock.type === 'read' ? FuseLockType.F_RDLCK : FuseLockType.F_WRLCK,
    pid: lock.pid,
  };
}

function toMetaLockType(type: number): LockType {
  switch (type) {
    case FuseLockType.F_RDLCK:
      return 'read';
    case FuseLockType.F_WRLCK:
      return 'write';
    case FuseLockType.F_UNLCK:
      return 'unlock';
    default:
      throw fsError.EINVAL(`unknown lock type ${type}; expected F_RDLCK, F_WRLCK or F_UNLCK`);
  }
}

/**
 * Takes a lock for SETLKW: the metadata service never blocks a request, so conflicts come
 * back as EAGAIN and the waiting happens here, with growing pauses, until the lock is
 * granted or the caller is interrupted (a signal to the process, or the session ending).
 */
export async function setLockWaiting(
  meta: MetaApi,
  ino: Ino,
  owner: LockOwner,
  range: LockRange,
  isFlock: boolean,
  signal: AbortSignal,
  maxPauseMs: number,
): Promise<void> {
  let pauseMs = 1;
  for (;;) {
    if (signal.aborted) throw fsError.EINTR(`waiting for a lock on inode ${ino} was interrupted`);
    try {
      await meta.setlk(ino, owner, range, isFlock);
      return;
    } catch (err) {
      if (!isFsError(err) || err.errno !== Errno.EAGAIN) throw err;
    }
    await pause(pauseMs, signal);
    pauseMs = Math.min(pauseMs * 2, maxPauseMs);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
