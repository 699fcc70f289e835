import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  isOutOfDescriptors,
  OpenFileCache,
  openWaitingForDescriptor,
  readRange,
} from '../../common/index.js';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore } from '../store.js';
import { DIRECT_READ_MIN_BYTES, nativePut, type NativePut } from './native-put.js';

/** Temporary files live here until renamed into place; list() never shows them. */
const TMP_DIR = '.strata-tmp';
/** A temporary file this old belongs to a put that crashed, not to one in progress. */
const STALE_TMP_MS = 3_600_000;
/**
 * Objects kept open for reads. Each random read of a block not in memory was an open, a stat, a
 * pread and a close, four thread-pool jobs one after the other; with the object kept open it is
 * one. An object's bytes never change under its key, so an open object reads right even after
 * another process deleted it (its space is freed when it is closed here).
 */
const MAX_OPEN_OBJECTS = 64;

/** An object opened for reads: its handle and its size (fixed: objects are immutable). */
interface OpenObject {
  handle: FileHandle;
  sizeBytes: number;
}

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

/**
 * fsyncs a directory so a rename or a new entry in it survives a power loss. The handle may
 * have been opened before the entry was made: fsync covers the directory as it is when it runs.
 * The close is not waited for: the entry is durable once the fsync returns, and a serial put
 * (a small file's close) would otherwise wait one more thread-pool round trip for nothing.
 */
async function syncDir(opened: Promise<FileHandle>): Promise<void> {
  const handle = await opened;
  try {
    await handle.sync();
  } finally {
    handle.close().catch(() => undefined);
  }
}

/**
 * One directory's fsyncs, shared: puts that renamed into the directory while a sync was running
 * wait for the next one, and all of them share it. Blocks of one slice land in one directory
 * (the key's fan-out comes from the slice id), so a stream's 16 puts in flight cost a few
 * directory syncs instead of 16.
 */
class DirectorySync {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** A handle opened ahead by prepare(), while the put was still writing: the next sync's. */
  private spare: Promise<FileHandle> | null = null;

  constructor(
    private readonly dir: string,
    private readonly idle: () => void,
  ) {}

  /** Closes the handle prepare() opened, for a put that failed before asking for its sync. */
  dropSpare(): void {
    const spare = this.spare;
    this.spare = null;
    if (spare !== null) void spare.then((handle) => handle.close()).catch(() => undefined);
    if (!this.running && !this.next) this.idle();
  }

  /** Opens the directory now, so the sync that request() starts later need not wait for it. */
  prepare(): void {
    if (this.spare !== null) return;
    const spare = openWaitingForDescriptor(this.dir, 'r');
    // Unused (this sync object went idle first, or the open failed): nothing may leak or throw.
    spare.catch(() => undefined);
    this.spare = spare;
  }

  /** Resolves once every entry renamed into the directory before this call is durable. */
  request(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    // The running sync may have started before the caller's rename: it needs the next one.
    this.next = this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const opened = this.spare ?? openWaitingForDescriptor(this.dir, 'r');
    this.spare = null;
    const run = syncDir(opened);
    this.running = run;
    const settle = () => {
      if (this.running !== run) return;
      this.running = null;
      // A spare handle means a put is on its way to request a sync: stay for it.
      if (!this.next && this.spare === null) this.idle();
    };
    run.then(settle, settle);
    return run;
  }
}

/**
 * An object store in a local directory: one file per object, keys as paths. A put writes a
 * temporary file, renames it into place, then fsyncs the file and its directory at once and
 * returns only after both: an acknowledged put survives a power loss, and a crashed process
 * leaves the whole object or none of it. Being a directory tree, it cannot hold both "a" and
 * "a/b" as objects; StrataFS's keys never need that.
 */
export class FileObjectStore implements ObjectStore {
  readonly description: string;
  /**
   * Directories created or being created, each with a promise that settles once its creation
   * (its entry in every parent mkdir -p made) is durable: a put into a new directory awaits it
   * together with its own fsyncs, instead of syncing the parents first and the object after.
   * Registered before the mkdir runs, so concurrent puts into a new directory share its syncs.
   */
  private readonly knownDirs = new Map<string, Promise<{ durable: Promise<void> }>>();
  private readonly dirSyncs = new Map<string, DirectorySync>();
  /** Directories a native put (one job, its own directory fsync) is writing into now. */
  private readonly nativePutDirs = new Set<string>();
  /** New directories a native put is making, settled once that put has. */
  private readonly nativeMaking = new Map<string, Promise<unknown>>();
  /** Directory creations (mkdir -p) whose entries are not known durable yet. */
  private creatingDirs = 0;
  /** Temporary names: unique to this store object (random) and to the put (a count). */
  private readonly tmpPrefix = randomBytes(6).toString('hex') + '-';
  private tmpCount = 0;

  /** Puts that ran as one native job (native/objput), for tests. */
  nativePuts = 0;
  /** Whole objects read with O_DIRECT (readDirect), for tests. */
  directReads = 0;
  /** Objects open for reads; a put or delete of the key closes it. */
  readonly openObjects = new OpenFileCache<OpenObject>(
    MAX_OPEN_OBJECTS,
    (key) => this.openObject(key),
    ({ handle }) => handle.close(),
  );
  private readonly native: NativePut | undefined;
  /**
   * The addon's other jobs, whatever `options.nativePut` says: allocating the JavaScript path's
   * objects ahead as the native put does, and whole-object reads past the page cache.
   */
  private readonly objput = nativePut();
  /**
   * Off with STRATA_DIRECT_READS=0 (every object read through the page cache, for comparisons),
   * and once the file system refuses O_DIRECT (readDirect).
   */
  private readsDirect = process.env.STRATA_DIRECT_READS !== '0';

  /** Whether whole objects are still read with O_DIRECT (readDirect), for tests. */
  get readsPastPageCache(): boolean {
    return this.readsDirect;
  }

  /**
   * `options.nativePut: false` keeps every put on the JavaScript path (tests, comparisons); large
   * objects are still allocated ahead when the addon is there.
   */
  constructor(
    readonly root: string,
    options: { nativePut?: boolean } = {},
  ) {
    this.description = `file://${root}`;
    this.native = options.nativePut === false ? undefined : nativePut();
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, key);
  }

  /**
   * Creates the key's parent directories. Resolves once they exist, with a promise (which the
   * caller must await before acknowledging) that settles when the new entries are durable;
   * wrapped, because an async function would flatten a returned promise into its own.
   */
  private ensureDir(dir: string): Promise<{ durable: Promise<void> }> {
    let entry = this.knownDirs.get(dir);
    if (entry === undefined) {
      entry = this.createDir(dir);
      this.knownDirs.set(dir, entry);
      // A failure must be met again by the next put into the directory, not remembered.
      const forget = (): void => {
        if (this.knownDirs.get(dir) === entry) this.knownDirs.delete(dir);
      };
      entry.then(({ durable }) => durable.catch(forget), forget);
    }
    return entry;
  }

  private async createDir(dir: string): Promise<{ durable: Promise<void> }> {
    this.creatingDirs++;
    let durable = Promise.resolve();
    try {
      const first = await mkdir(dir, { recursive: true });
      if (first === undefined) return { durable };
      // mkdir -p created `first` and everything below it: each new entry's parent needs a sync.
      const parents: string[] = [];
      for (let current = dir; current.length >= first.length; current = dirname(current)) {
        parents.push(dirname(current));
      }
      durable = Promise.all(parents.map((parent) => this.syncDir(parent))).then(() => undefined);
      return { durable };
    } finally {
      // Counted until the entries are durable (or the mkdir failed): see makeDir in put().
      const settled = (): void => {
        this.creatingDirs--;
      };
      durable.then(settled, settled);
    }
  }

  /** ensureDir for an object's directory; resolves with the promise of its entries' durability. */
  private async ensureObjectDir(key: string, dir: string): Promise<Promise<void>> {
    try {
      return (await this.ensureDir(dir)).durable;
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
  }

  /** Every write of a put is awaited before it settles: nothing reads `data` after. */
  readonly abandonedAttempts = 0;

  async put(key: string, data: Buffer): Promise<void> {
    try {
      await this.putObject(key, data);
    } finally {
      // A reader must not keep the file the key named before.
      this.openObjects.retire(key);
    }
  }

  private async putObject(key: string, data: Buffer): Promise<void> {
    const target = this.path(key);
    const tmpDir = join(this.root, TMP_DIR);
    // The temporary area's own durability does not matter: objects are renamed out of it.
    await this.ensureDir(tmpDir);
    const dir = dirname(target);
    // A native put making this directory: its entry is durable once that put settles.
    const making = this.nativeMaking.get(dir);
    if (making !== undefined) await making;
    const tmp = join(tmpDir, `${this.tmpPrefix}${(this.tmpCount++).toString(36)}.tmp`);
    // One thread-pool job for the whole put where no other put into the directory runs (those
    // share directory syncs, which only the JavaScript path does). Into a new directory (a fresh
    // volume's fan-out) the job makes it too, when no other directory's creation is still on its
    // way to disk (its parent is then durable); short of descriptors, or where making the
    // directory failed, the JavaScript path takes over (it waits for a descriptor, or says why
    // the directory cannot be made).
    const native =
      this.native && !this.dirSyncs.has(dir) && !this.nativePutDirs.has(dir) ? this.native : undefined;
    const makeDir = native !== undefined && !this.knownDirs.has(dir) && this.creatingDirs === 0;
    let dirDurable = makeDir ? Promise.resolve() : await this.ensureObjectDir(key, dir);
    if (native) {
      this.nativePutDirs.add(dir);
      let made: Promise<unknown> | undefined;
      try {
        const job = native.put(tmp, target, dir, data, makeDir ? dirname(dir) : undefined);
        if (makeDir) this.nativeMaking.set(dir, (made = job.catch(() => undefined)));
        await job;
        if (makeDir) this.knownDirs.set(dir, Promise.resolve({ durable: Promise.resolve() }));
        await dirDurable;
        this.nativePuts++;
        return;
      } catch (error) {
        if (!makeDir && !isOutOfDescriptors(error)) throw error;
      } finally {
        this.nativePutDirs.delete(dir);
        if (made !== undefined && this.nativeMaking.get(dir) === made) this.nativeMaking.delete(dir);
      }
      // The job may have made the directory before it failed; its parent is synced again here
      // rather than trusting that job's sync of it.
      if (makeDir) {
        const entries = await this.ensureObjectDir(key, dir);
        dirDurable = Promise.all([entries, this.syncDir(dirname(dir))]).then(() => undefined);
      }
    }
    // The directory's handle opens while the object is written, off the put's critical path.
    const dirSync = this.directorySync(dir);
    dirSync.prepare();
    let handle: FileHandle;
    try {
      // The directory handle opened ahead is only a head start: short of descriptors, let it go.
      handle = await openWaitingForDescriptor(tmp, 'w', () => dirSync.dropSpare());
    } catch (error) {
      dirSync.dropSpare();
      throw error;
    }
    let renamed = false;
    let closing = false;
    try {
      if (this.objput && data.length >= this.objput.allocateMinBytes) {
        await this.objput.allocate(handle.fd, data.length, tmp);
      }
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written, written);
        written += bytesWritten;
      }
      // Rename before syncing so that the file's data and its new name become durable in one
      // journal commit (two fsyncs issued together) instead of two commits in sequence: a
      // serial 4 KiB put took a third less time (median 4.1 vs 6.3 ms on the loaded
      // development disk). The rename happens only after every byte is written, so a
      // crashed process still leaves whole objects. A power loss before the put is acknowledged
      // may leave a partial object under the key: nothing refers to it (metadata is committed
      // only after the put returns) and readers verify every block against its checksums.
      await rename(tmp, target);
      renamed = true;
      // The object's descriptor goes as soon as its data is synced, not after the directory's sync
      // too: puts holding theirs while waiting for one to open their directory could hold all.
      const fileSynced = handle.datasync().finally(() => {
        closing = true;
        handle.close().catch(() => undefined);
      });
      const synced = await Promise.allSettled([fileSynced, dirSync.request(), dirDurable]);
      for (const result of synced) if (result.status === 'rejected') throw result.reason;
    } catch (error) {
      if (!renamed) {
        dirSync.dropSpare();
        await unlink(tmp).catch(() => undefined);
      }
      throw error;
    } finally {
      // Not waited for: once fdatasync returned, the close adds nothing to durability, and a
      // serial put (a small file's close) would wait one more thread-pool round trip for it.
      if (!closing) handle.close().catch(() => undefined);
    }
  }

  private directorySync(dir: string): DirectorySync {
    let sync = this.dirSyncs.get(dir);
    if (!sync) {
      const created = new DirectorySync(dir, () => {
        // A put may still hold an idle sync object after a newer one took its place.
        if (this.dirSyncs.get(dir) === created) this.dirSyncs.delete(dir);
      });
      sync = created;
      this.dirSyncs.set(dir, sync);
    }
    return sync;
  }

  private syncDir(dir: string): Promise<void> {
    return this.directorySync(dir).request();
  }

  async get(key: string, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    try {
      if (
        into !== undefined &&
        (offset ?? 0) === 0 &&
        length === undefined &&
        into.length >= DIRECT_READ_MIN_BYTES
      ) {
        const direct = await this.readDirect(key, into);
        if (direct !== undefined) return direct;
      }
      return await this.openObjects.use(key, async ({ handle, sizeBytes }) => {
        const start = Math.min(offset ?? 0, sizeBytes);
        const end = length === undefined ? sizeBytes : Math.min(sizeBytes, start + length);
        return readRange(handle, start, end - start, into);
      });
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR') || isErrno(error, 'EISDIR')) {
        throw new ObjectNotFoundError(key, this.description);
      }
      throw error;
    }
  }

  /**
   * A whole object read into `into` with O_DIRECT, past the page cache; undefined where that
   * cannot be (no addon, `into` not aligned, a file system without O_DIRECT, an object larger
   * than `into`): the caller reads through the page cache then. Why: a block read through the
   * page cache is copied twice (disk to cache, cache to `into`) and charged to the page cache's
   * bookkeeping, which cost the mount ~25% of its CPU per GiB of a cold sequential read; the
   * mount caches blocks itself (bench/RESULTS.md, Mounted volume, session 21). Random reads of
   * parts of objects keep the page cache (readRange).
   */
  private async readDirect(key: string, into: Buffer): Promise<Buffer | undefined> {
    if (!this.readsDirect || this.objput === undefined) return undefined;
    let read: number;
    try {
      read = await this.objput.readDirect(this.path(key), into);
    } catch (error) {
      if (!isErrno(error, 'EINVAL')) throw error;
      // The file system itself refuses O_DIRECT (ramfs, some FUSE and network file systems):
      // asking again for every block would cost each one a failed open.
      const { syscall } = error as NodeJS.ErrnoException;
      if (syscall === 'open' || syscall === 'pread') this.readsDirect = false;
      return undefined;
    }
    if (read > into.length) return undefined;
    this.directReads++;
    return into.subarray(0, read);
  }

  private async openObject(key: string): Promise<OpenObject> {
    const handle = await openWaitingForDescriptor(this.path(key), 'r');
    try {
      const info = await handle.stat();
      // A directory is where keys below it live, not an object.
      if (!info.isFile()) throw new ObjectNotFoundError(key, this.description);
      return { handle, sizeBytes: info.size };
    } catch (error) {
      await handle.close();
      throw error;
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
    } finally {
      this.openObjects.retire(key);
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
    this.openObjects.retireAll();
    this.knownDirs.clear();
    for (const sync of [...this.dirSyncs.values()]) sync.dropSpare();
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
