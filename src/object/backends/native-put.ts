import { loadNativeAddon } from '../../common/index.js';

/**
 * The `native/objput` addon (objput.c): the file store's thread-pool jobs (a whole durable put,
 * allocating ahead, whole-object reads past the page cache).
 */
export interface NativePut {
  /**
   * Writes `data` to `tmp`, renames it to `target`, fdatasyncs it and fsyncs `dir` (the
   * target's directory). With `parent` (dir's parent, which must exist), makes `dir` first when
   * missing and then also fsyncs `parent`, even when a later step failed. Rejects with an Error
   * shaped as Node's fs errors (code, errno, syscall, path); `tmp` is gone unless the rename
   * happened. `data` must stay unchanged until the promise settles.
   */
  put(tmp: string, target: string, dir: string, data: Buffer, parent?: string): Promise<void>;
  /**
   * What `put` does before it writes, for a file written by the caller: allocates `length` bytes
   * of the open file `fd` ahead, when `length` is at least `allocateMinBytes` (see objput.c for
   * why). Resolves where the file system cannot allocate ahead; rejects like `put` (ENOSPC, ...),
   * naming `path`.
   */
  allocate(fd: number, length: number, path: string): Promise<void>;
  /** Smaller objects are written without allocating ahead (both by `put` and `allocate`). */
  readonly allocateMinBytes: number;
  /**
   * Reads the whole file at `path` into `view` from its start: its whole 4 KiB pages with
   * O_DIRECT (past the page cache), the rest through the page cache, nothing past the view.
   * Resolves with the file's size, having read nothing when that is more than `view.length`.
   * Rejects EINVAL when `view` does not start on a 4 KiB boundary or the file system cannot read
   * with O_DIRECT; `view` must not be used until this settles.
   */
  readDirect(path: string, view: Uint8Array): Promise<number>;
  /** How far from the start of `buffer` its first 4 KiB boundary lies. */
  directOffset(buffer: ArrayBuffer): number;
}

/** Where readDirect's view must start. */
const DIRECT_ALIGN_BYTES = 4096;

/**
 * Whole objects from this size on are read with O_DIRECT (a file store's get into an aligned
 * buffer); smaller buffers are ordinary memory, not worth a page of slack each.
 */
export const DIRECT_READ_MIN_BYTES = 1024 * 1024;

let addon: NativePut | null | undefined;

/**
 * The addon, or undefined when it is not built or `STRATA_NATIVE_PUT=0` (for comparisons): puts
 * then take the JavaScript path, which makes the same calls, each its own thread-pool job.
 */
export function nativePut(): NativePut | undefined {
  if (addon === undefined) {
    addon = (process.env.STRATA_NATIVE_PUT !== '0' && loadNativeAddon<NativePut>('objput')) || null;
  }
  return addon ?? undefined;
}

/**
 * A buffer of `bytes` that a file store can read an object into with O_DIRECT (readDirect):
 * starting on a 4 KiB boundary, in an ArrayBuffer a little larger than `bytes` that nothing else
 * uses. Below DIRECT_READ_MIN_BYTES or without the addon, an ArrayBuffer of exactly `bytes` (the
 * store then reads through the page cache).
 */
export function allocDirectBuffer(bytes: number): Buffer {
  const native = nativePut();
  // Never a slice of Node's shared pool: every buffer from here has its memory to itself.
  if (native === undefined || bytes < DIRECT_READ_MIN_BYTES) return Buffer.allocUnsafeSlow(bytes);
  const memory = new ArrayBuffer(bytes + DIRECT_ALIGN_BYTES);
  return Buffer.from(memory, native.directOffset(memory), bytes);
}
