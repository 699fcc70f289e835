import { Errno, errnoName } from './errno.js';

/**
 * Errnos that answer the caller's question (no such name, no such xattr, already there, would
 * block, not allowed) rather than report a failure. They are routine: a compiler or Python
 * probing paths meets ENOENT for most lookups, and the kernel asks for security.capability
 * (ENODATA) on writes. Their stack trace is never read, and capturing it cost ~11 of the ~12 µs
 * of building one (20 frames deep), so they are made without one. Failures keep theirs.
 */
const ANSWERS: ReadonlySet<number> = new Set([
  Errno.ENOENT,
  Errno.ENODATA,
  Errno.EEXIST,
  Errno.EAGAIN,
  Errno.ENOTEMPTY,
  Errno.ERANGE,
  Errno.EACCES,
  Errno.EPERM,
  Errno.EINTR,
]);

/**
 * The one error type of StrataFS. It carries an errno that travels unchanged from the
 * metadata server through RPC to the FUSE reply, and a message a person can act on.
 */
export class FsError extends Error {
  readonly errno: number;

  constructor(errno: number, message: string, options?: { cause?: unknown }) {
    if (ANSWERS.has(errno)) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        super(message, options);
      } finally {
        Error.stackTraceLimit = limit;
      }
    } else {
      super(message, options);
    }
    this.name = 'FsError';
    this.errno = errno;
  }

  /** The symbolic errno, e.g. "ENOENT". */
  get code(): string {
    return errnoName(this.errno);
  }
}

export function isFsError(value: unknown): value is FsError {
  return value instanceof FsError;
}

/** The `code` of a Node.js system error (`ENOSPC`, `EMFILE`, ...), if `error` carries one. */
export function systemErrorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The file system has no room for it, or the user no quota (ENOSPC, EDQUOT). */
export function isOutOfSpace(error: unknown): boolean {
  const code = systemErrorCode(error);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** The process (EMFILE) or the whole system (ENFILE) has no file descriptor left. */
export function isOutOfDescriptors(error: unknown): boolean {
  const code = systemErrorCode(error);
  return code === 'EMFILE' || code === 'ENFILE';
}

/** Shorthands so call sites read as the rule they enforce: `throw fsError.ENOENT('no entry "a" in dir 7')`. */
export const fsError = {
  EPERM: (message: string) => new FsError(Errno.EPERM, message),
  ENOENT: (message: string) => new FsError(Errno.ENOENT, message),
  EIO: (message: string, cause?: unknown) => new FsError(Errno.EIO, message, { cause }),
  EACCES: (message: string) => new FsError(Errno.EACCES, message),
  EEXIST: (message: string) => new FsError(Errno.EEXIST, message),
  ENOTDIR: (message: string) => new FsError(Errno.ENOTDIR, message),
  EISDIR: (message: string) => new FsError(Errno.EISDIR, message),
  EINVAL: (message: string) => new FsError(Errno.EINVAL, message),
  ENOTEMPTY: (message: string) => new FsError(Errno.ENOTEMPTY, message),
  ENAMETOOLONG: (message: string) => new FsError(Errno.ENAMETOOLONG, message),
  EMLINK: (message: string) => new FsError(Errno.EMLINK, message),
  ENODATA: (message: string) => new FsError(Errno.ENODATA, message),
  ERANGE: (message: string) => new FsError(Errno.ERANGE, message),
  ENOSYS: (message: string) => new FsError(Errno.ENOSYS, message),
  EXDEV: (message: string) => new FsError(Errno.EXDEV, message),
  EAGAIN: (message: string) => new FsError(Errno.EAGAIN, message),
  EBADF: (message: string) => new FsError(Errno.EBADF, message),
  ENOSPC: (message: string) => new FsError(Errno.ENOSPC, message),
  EFBIG: (message: string) => new FsError(Errno.EFBIG, message),
  EROFS: (message: string) => new FsError(Errno.EROFS, message),
  ENOTSUP: (message: string) => new FsError(Errno.ENOTSUP, message),
  EINTR: (message: string) => new FsError(Errno.EINTR, message),
  EDEADLK: (message: string) => new FsError(Errno.EDEADLK, message),
  ETIMEDOUT: (message: string) => new FsError(Errno.ETIMEDOUT, message),
  ENOTCONN: (message: string) => new FsError(Errno.ENOTCONN, message),
  ESTALE: (message: string) => new FsError(Errno.ESTALE, message),
} as const;
