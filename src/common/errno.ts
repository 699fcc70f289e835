import { constants } from 'node:os';

/** Linux errno numbers, named as in <errno.h>. The values come from the running platform. */
export const Errno = {
  EPERM: constants.errno.EPERM,
  ENOENT: constants.errno.ENOENT,
  ESRCH: constants.errno.ESRCH,
  EINTR: constants.errno.EINTR,
  EIO: constants.errno.EIO,
  ENXIO: constants.errno.ENXIO,
  E2BIG: constants.errno.E2BIG,
  EBADF: constants.errno.EBADF,
  EAGAIN: constants.errno.EAGAIN,
  ENOMEM: constants.errno.ENOMEM,
  EACCES: constants.errno.EACCES,
  EFAULT: constants.errno.EFAULT,
  EBUSY: constants.errno.EBUSY,
  EEXIST: constants.errno.EEXIST,
  EXDEV: constants.errno.EXDEV,
  ENODEV: constants.errno.ENODEV,
  ENOTDIR: constants.errno.ENOTDIR,
  EISDIR: constants.errno.EISDIR,
  EINVAL: constants.errno.EINVAL,
  ENFILE: constants.errno.ENFILE,
  EMFILE: constants.errno.EMFILE,
  ENOTTY: constants.errno.ENOTTY,
  ETXTBSY: constants.errno.ETXTBSY,
  EFBIG: constants.errno.EFBIG,
  ENOSPC: constants.errno.ENOSPC,
  ESPIPE: constants.errno.ESPIPE,
  EROFS: constants.errno.EROFS,
  EMLINK: constants.errno.EMLINK,
  EPIPE: constants.errno.EPIPE,
  ERANGE: constants.errno.ERANGE,
  EDEADLK: constants.errno.EDEADLK,
  ENAMETOOLONG: constants.errno.ENAMETOOLONG,
  ENOLCK: constants.errno.ENOLCK,
  ENOSYS: constants.errno.ENOSYS,
  ENOTEMPTY: constants.errno.ENOTEMPTY,
  ELOOP: constants.errno.ELOOP,
  ENODATA: constants.errno.ENODATA,
  EOVERFLOW: constants.errno.EOVERFLOW,
  EOPNOTSUPP: constants.errno.ENOTSUP,
  ENOTSUP: constants.errno.ENOTSUP,
  ETIMEDOUT: constants.errno.ETIMEDOUT,
  ECONNREFUSED: constants.errno.ECONNREFUSED,
  ENOTCONN: constants.errno.ENOTCONN,
  ESTALE: constants.errno.ESTALE,
  EDQUOT: constants.errno.EDQUOT,
  ECANCELED: constants.errno.ECANCELED,
} as const;

export type ErrnoName = keyof typeof Errno;

const namesByNumber = new Map<number, ErrnoName>();
for (const [name, value] of Object.entries(Errno) as [ErrnoName, number][]) {
  if (!namesByNumber.has(value)) namesByNumber.set(value, name);
}

/** The symbolic name of an errno number, for log lines and messages. */
export function errnoName(errno: number): string {
  return namesByNumber.get(errno) ?? `errno ${errno}`;
}
