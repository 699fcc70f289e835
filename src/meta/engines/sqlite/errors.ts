import { Errno, FsError, isOutOfSpace, systemErrorCode } from '../../../common/index.js';

/**
 * SQLite's result codes for "the disk holding the database (or its WAL, or a temporary file)
 * has no room": SQLITE_FULL, and SQLITE_IOERR_WRITE when the write(2) itself said ENOSPC.
 */
function isDiskFull(error: unknown): boolean {
  return systemErrorCode(error) === 'SQLITE_FULL' || isOutOfSpace(error);
}

/**
 * The error a metadata change reports when SQLite failed under it. A full disk is ENOSPC, as a
 * local file system reports it, so programs say "No space left on device" and the user knows to
 * free space (the engine goes on once there is room: nothing to restart); anything else is EIO.
 */
export function storageFailure(what: string, engineUrl: string, error: unknown): FsError {
  if (error instanceof FsError) return error;
  if (isDiskFull(error)) {
    return new FsError(
      Errno.ENOSPC,
      `${what} on ${engineUrl}: the disk holding the metadata database is full (${String(error)}); ` +
        `nothing was changed, and changes work again once space is freed on that disk`,
      { cause: error },
    );
  }
  return new FsError(Errno.EIO, `${what} on ${engineUrl}: ${String(error)}`, { cause: error });
}

/** A change's own failure: SQLite's disk-full errors become ENOSPC, everything else passes. */
export function changeFailure(engineUrl: string, error: unknown): unknown {
  return isDiskFull(error) ? storageFailure('metadata change failed', engineUrl, error) : error;
}
