import { loadNativeAddon } from '../../common/index.js';

/** The `native/objput` addon (objput.c): a whole durable put of a file object as one thread-pool job. */
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
}

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
