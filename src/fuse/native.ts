import { writeSync, writevSync } from 'node:fs';
import { loadNativeAddon, nativeAddonPath } from '../common/index.js';

/** The `native/fdpoll` addon: a libuv uv_poll_t on an fd, calling back on the main thread. */
export interface FdPoll {
  /** Starts watching `fd` for readability; `onReadable(status)` gets a negative libuv error on failure. */
  start(fd: number, onReadable: (status: number) => void): FdWatcher;
  /** Stops watching; the callback is never called afterwards. Idempotent. */
  stop(watcher: FdWatcher): void;
  ref(watcher: FdWatcher): void;
  unref(watcher: FdWatcher): void;
  /** Sets O_NONBLOCK on an fd (one handed over, not opened by us). */
  setNonBlocking(fd: number): void;
  /** read(2) into `buffer`: the byte count, or a negative errno (EAGAIN when drained). */
  readInto(fd: number, buffer: Buffer): number;
  /** write(2) of `buffer[0, length)`: the byte count, or a negative errno. */
  writeFrom(fd: number, buffer: Buffer, length: number): number;
  /** writev(2) of `header` then `data`: the byte count, or a negative errno. */
  writeTwo(fd: number, header: Buffer, data: Buffer): number;
  /** malloc_trim(0): true when memory went back to the system. Missing from builds before it. */
  trimMemory?(): boolean;
  /** dup3 of /dev/null onto `fd`: what it named is released, the number stays taken. Missing from builds before it. */
  retireFd?(fd: number): void;
  /** Polls `fd` without sleeping for up to `us` microseconds: true once it is readable. Missing from builds before it. */
  spinReadable?(fd: number, us: number): boolean;
  /** The calling thread's involuntary context switches so far (-1 if unknown). Missing from builds before it. */
  involuntarySwitches?(): number;
}

declare const watcherBrand: unique symbol;
export type FdWatcher = { readonly [watcherBrand]: 'FdWatcher' };

let loaded: FdPoll | undefined;

/** The addon if it is built, else undefined (a session fed through `processRequest` can do without). */
export function tryLoadFdPoll(): FdPoll | undefined {
  try {
    return loadFdPoll();
  } catch {
    return undefined;
  }
}

/** Loads the addon once. Throws with the command that builds it when it is missing. */
export function loadFdPoll(): FdPoll {
  loaded ??= loadNativeAddon<FdPoll>('fdpoll');
  if (!loaded) {
    throw new Error(
      `native addon fdpoll not built (no ${nativeAddonPath('fdpoll')}); ` +
        'run "npx node-gyp rebuild --directory native/fdpoll" (part of "npm run build")',
    );
  }
  return loaded;
}

/**
 * Gives the heap memory glibc keeps after frees back to the system (see fdpoll.c): undefined
 * when the addon is not built, else whether anything went back.
 */
export function releaseFreedMemory(): boolean | undefined {
  return tryLoadFdPoll()?.trimMemory?.();
}

type WriteFrom = FdPoll['writeFrom'];
type WriteTwo = FdPoll['writeTwo'];

const negativeErrno = (error: unknown): number => -Math.abs((error as NodeJS.ErrnoException).errno ?? 5);

const writeSyncErrno: WriteFrom = (fd, buffer, length) => {
  try {
    return writeSync(fd, buffer, 0, length);
  } catch (error) {
    return negativeErrno(error);
  }
};

const writevSyncErrno: WriteTwo = (fd, header, data) => {
  try {
    return writevSync(fd, [header, data]);
  } catch (error) {
    return negativeErrno(error);
  }
};

/**
 * How replies are written: the addon's write/writev (no context object, request wrapper
 * or exception per reply: measured in bench/fuse/dispatch.ts), or fs.writeSync when the
 * addon is not built (a session fed through `processRequest` needs no poll) or predates
 * these functions.
 */
export function replyWriters(): [WriteFrom, WriteTwo] {
  const addon = tryLoadFdPoll();
  if (addon && typeof addon.writeFrom === 'function' && typeof addon.writeTwo === 'function')
    return [addon.writeFrom, addon.writeTwo];
  return [writeSyncErrno, writevSyncErrno];
}
