// The options and handoff a FuseSession is made with, and where it logs.
import type { InitInfo } from './filesystem.js';

/** Where the session writes its log lines; pino loggers fit. */
export interface FuseLogger {
  debug(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface SessionOptions {
  /** Largest WRITE the kernel may send; at most 1 MiB (256 pages). Default 1 MiB. */
  maxWriteBytes?: number;
  /** Let the kernel cache writes (WRITEBACK_CACHE): the kernel becomes the authority for mtime and size. Default false. */
  writebackCache?: boolean;
  /** Negotiate POSIX_ACL (see `InitInfo.posixAcl`). Default true. */
  posixAcl?: boolean;
  /** How many background requests (readahead, async direct I/O) the kernel keeps in flight. Default 64. */
  maxBackground?: number;
  logger?: FuseLogger;
  /** Log one line per request (opcode, node, result). */
  debug?: boolean;
  /** Continue a session another `FuseSession` detached from (no INIT will come again). */
  handoff?: SessionHandoff;
  /** The mount point, if known: needed by `unmount()`. */
  mountpoint?: string;
  /**
   * Serve requests through FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING) when the
   * kernel offers it at INIT (`mount` turns the fuse module's enable_uring on); otherwise,
   * or if the kernel refuses the ring, /dev/fuse read/write with one log line. Default false.
   */
  ioUring?: boolean;
  /** Ring entries (requests in flight) per CPU queue with `ioUring`. Default 8. */
  ioUringQueueDepth?: number;
  /**
   * Microseconds to poll /dev/fuse for the next request once every request read has been
   * answered, before sleeping until the kernel wakes the loop (poll-spin.ts); 0 never polls.
   * Default DEFAULT_POLL_SPIN_US.
   */
  pollSpinUs?: number;
}

/**
 * The default of `pollSpinUs`: a caller statting, creating or unlinking in a loop sends its
 * next request 10-30 µs after our reply here; 20, 50 and 100 all served 2-3.5x more such
 * requests per second than sleeping on an idle machine (bench/RESULTS.md, FUSE layer, session 13).
 */
export const DEFAULT_POLL_SPIN_US = 50;
/** The most `pollSpinUs` may be: longer spins hold the event loop for nothing. */
export const MAX_POLL_SPIN_US = 1000;

/** `pollSpinUs` or its default; throws for a value out of range. */
export function checkedPollSpinUs(value: number | undefined): number {
  const spinUs = value ?? DEFAULT_POLL_SPIN_US;
  if (!Number.isInteger(spinUs) || spinUs < 0 || spinUs > MAX_POLL_SPIN_US) {
    throw new Error(
      `pollSpinUs ${spinUs} out of range: use 0..${MAX_POLL_SPIN_US} microseconds (0: never poll)`,
    );
  }
  return spinUs;
}

/** What a new session needs to take over a mounted fd from `detach()` without the kernel noticing. */
export interface SessionHandoff {
  fd: number;
  init: InitInfo;
  initFlags: number;
  /** [ino, kernel lookup count] for every inode the kernel still references. */
  lookupCounts: Array<[number, number]>;
}

/** Logs to the console when no logger is given. */
export const consoleLogger: FuseLogger = {
  debug: (message) => console.debug(message),
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
};
