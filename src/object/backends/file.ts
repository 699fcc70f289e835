import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../store.js';

/** Temporary files live here until renamed into place; list() never shows them. */
const TMP_DIR = '.strata-tmp';
/** A temporary file this old belongs to a put that crashed, not to one in progress. */
const STALE_TMP_MS = 3_600_000;

/**
 * Parses "file:///abs/dir", "file:/abs/dir" or "file:relative/dir" (relative to the working
 * directory). The URL form is what users type; a relative path is what `strata up DATA` builds.
 */
export function fileStoreRoot(url: string): string {
  if (url.startsWith('file://')) {
    const path = fileURLToPath(url);
    return resolve(path);
  }
  const rest = url.slice('file:'.length);
  if (rest.length === 0) throw new Error(`invalid file store URL "${url}": no directory given`);
  return resolve(decodeURIComponent(rest));
}

/** Rejects keys that could escape the root or collide with our temporary area. */
function checkKey(key: string): void {
  if (
    key.length === 0 ||
    key.startsWith('/') ||
    key.endsWith('/') ||
    key.includes('\0') ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..') ||
    key === TMP_DIR ||
    key.startsWith(TMP_DIR + '/')
  ) {
    throw new Error(`invalid object key "${key}": use non-empty "/"-separated names without "." or ".."`);
  }
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

/** fsyncs a directory so a rename or a new entry in it survives a power loss. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * An object store in a local directory: one file per object, keys as paths. Puts write a
 * temporary file, fsync it, rename it into place and fsync the directory, so a crash leaves
 * either the whole object or none of it. Being a directory tree, it cannot hold both "a" and
 * "a/b" as objects; StrataFS's keys never need that.
 */
export class FileObjectStore implements ObjectStore {
  readonly description: string;
  private readonly knownDirs = new Set<string>();

  constructor(readonly root: string) {
    this.description = `file://${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, key);
  }

  /** Creates the key's parent directories, fsyncing each new entry's parent. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const first = await mkdir(dir, { recursive: true });
    if (first !== undefined) {
      // mkdir -p created `first` and everything below it: make each new entry durable.
      let current = dir;
      while (current.length >= first.length) {
        await syncDir(dirname(current));
        current = dirname(current);
      }
    }
    this.knownDirs.add(dir);
  }

  async put(key: string, data: Buffer): Promise<void> {
    const target = this.path(key);
    const tmpDir = join(this.root, TMP_DIR);
    await this.ensureDir(tmpDir);
    try {
      await this.ensureDir(dirname(target));
    } catch (error) {
      if (isErrno(error, 'EEXIST') || isErrno(error, 'ENOTDIR')) {
        throw new Error(
          `cannot store "${key}" in ${this.description}: a parent of it is already an object ` +
            `(a directory-backed store cannot hold both "a" and "a/b")`,
          { cause: error },
        );
      }
      throw error;
    }
    const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`);
    const handle = await open(tmp, 'w');
    try {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written, written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(tmp, target);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    await syncDir(dirname(target));
  }

  async get(key: string, offset?: number, length?: number): Promise<Buffer> {
    const path = this.path(key);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR') || isErrno(error, 'EISDIR')) {
        throw new ObjectNotFoundError(key, this.description);
      }
      throw error;
    }
    try {
      const info = await handle.stat();
      // A directory is where keys below it live, not an object.
      if (!info.isFile()) throw new ObjectNotFoundError(key, this.description);
      const size = info.size;
      const start = Math.min(offset ?? 0, size);
      const end = length === undefined ? size : Math.min(size, start + length);
      const out = Buffer.allocUnsafe(end - start);
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === out.length ? out : out.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const info = await stat(this.path(key));
      if (!info.isFile()) return null;
      return { key, sizeBytes: info.size, modifiedMs: info.mtimeMs };
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (error) {
      if (!isErrno(error, 'ENOENT') && !isErrno(error, 'ENOTDIR')) throw error;
    }
  }

  list(prefix: string, startAfter?: string): AsyncIterable<ObjectInfo> {
    return this.walk('', prefix, startAfter ?? '');
  }

  /**
   * Walks directories in key order. A directory "a" sorts as "a/" so that "a-b" (0x2d) comes
   * before "a/x" (0x2f), exactly as the flat key strings compare.
   */
  private async *walk(dirKey: string, prefix: string, startAfter: string): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(join(this.root, dirKey), { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return;
      throw error;
    }
    const items = entries
      .filter((entry) => !(dirKey === '' && entry.name === TMP_DIR))
      .map((entry) => {
        const isDir = entry.isDirectory();
        return { isDir, key: dirKey + entry.name + (isDir ? '/' : '') };
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const item of items) {
      if (item.isDir) {
        // Skip subtrees that cannot hold a key matching the prefix or after startAfter.
        if (!(item.key.startsWith(prefix) || prefix.startsWith(item.key))) continue;
        if (item.key < startAfter && !startAfter.startsWith(item.key)) continue;
        yield* this.walk(item.key, prefix, startAfter);
      } else {
        if (!item.key.startsWith(prefix) || item.key <= startAfter) continue;
        const info = await this.head(item.key);
        if (info) yield info;
      }
    }
  }

  async close(): Promise<void> {
    this.knownDirs.clear();
  }

  /**
   * Removes temporary files left by puts that a crash interrupted. Only old ones: another
   * process (a second mount of the same volume) may be writing the young ones right now.
   */
  async cleanTemporaryFiles(olderThanMs = STALE_TMP_MS): Promise<void> {
    const tmpDir = join(this.root, TMP_DIR);
    let names: string[];
    try {
      names = await readdir(tmpDir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return;
      throw error;
    }
    const cutoffMs = Date.now() - olderThanMs;
    for (const name of names) {
      const path = join(tmpDir, name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoffMs) await rm(path, { force: true });
    }
  }
}

export async function openFileStore(url: string): Promise<ObjectStore> {
  const root = fileStoreRoot(url);
  await mkdir(root, { recursive: true });
  const store = new FileObjectStore(root);
  await store.cleanTemporaryFiles();
  return store;
}
