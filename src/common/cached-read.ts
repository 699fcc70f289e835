import type { FileHandle } from 'node:fs/promises';
import { loadNativeAddon } from './native-addon.js';

/** The `native/cachedread` addon (cachedread.c). */
interface CachedReadAddon {
  /** preadv2(fd, buffer, offset, RWF_NOWAIT): bytes read, or -errno (-EAGAIN: none cached). */
  readCached(fd: number, buffer: Uint8Array, offset: number): number;
}

let addon: CachedReadAddon | null | undefined;

/**
 * Larger reads always go to the thread pool: copying a whole 4 MiB block here would hold the
 * event loop (and every FUSE request behind it) for about a millisecond, and for such a read the
 * hop is a small part of the cost.
 */
export const MAX_CACHED_READ_BYTES = 256 * 1024;

/**
 * Fills `buffer` from `offset` of the open file `fd` on this thread, only with what the page
 * cache holds: the byte count read (0 when nothing asked for is cached, at the end of the file,
 * for a buffer over MAX_CACHED_READ_BYTES, without the addon, where the file system cannot, or
 * with STRATA_CACHED_READ=0). The caller reads the rest through the thread pool: a small read of
 * a cached file then costs no hop there and back (bench/RESULTS.md, Mounted volume, session 19).
 */
export function readIfCached(fd: number, buffer: Uint8Array, offset: number): number {
  if (addon === undefined) {
    addon =
      (process.env.STRATA_CACHED_READ !== '0' && loadNativeAddon<CachedReadAddon>('cachedread')) || null;
  }
  if (addon === null || buffer.length === 0 || buffer.length > MAX_CACHED_READ_BYTES) return 0;
  const read = addon.readCached(fd, buffer, offset);
  // -EAGAIN (not cached) and every other error alike: the thread pool's read says what is wrong.
  return read > 0 ? read : 0;
}

/**
 * Reads `length` bytes at `offset` of the open file `handle` (fewer at its end): the part the
 * page cache holds on this thread (readIfCached), the rest through the thread pool. Into
 * `into` from its start when it has room (a caller reusing memory), else into fresh memory.
 */
export async function readRange(
  handle: FileHandle,
  offset: number,
  length: number,
  into?: Buffer,
): Promise<Buffer> {
  const out =
    into !== undefined && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  let done = readIfCached(handle.fd, out, offset);
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? out : out.subarray(0, done);
}
