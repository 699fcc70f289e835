import { randomBytes } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import {
  formatBytes,
  isOutOfDescriptors,
  isOutOfSpace,
  OpenFileCache,
  readRange,
  systemErrorCode,
} from '../common/index.js';

/** Writes queued beyond this are skipped: the disk cache is best effort, never back-pressure. */
const MAX_PENDING_WRITES = 8;

/**
 * Cache files kept open for partial reads (random reads of a file copied to the cache), so each
 * read is one pread instead of open + pread + close; the least recently used is closed beyond.
 */
const MAX_OPEN_FILES = 256;

/**
 * After the cache's file system said it is full, the cache holds no more than it held then; this
 * long after, it tries to grow again (someone may have freed space).
 */
const FULL_RETRY_MS = 60_000;

/**
 * A bounded LRU of block object bodies (data + checksummed trailer) in a local directory. It
 * stores bodies as fetched, so the reader verifies a cached block exactly like a fetched one:
 * a damaged cache file fails its checksum, is removed and the block is fetched again.
 * Files are written to a temporary name and renamed, so a crash leaves no half file under a
 * block's name (and if one appeared anyway, the checksum would catch it).
 */
export class DiskBlockCache {
  /** key -> size, in LRU order (oldest first). */
  private readonly index = new Map<string, number>();
  private bytes = 0;
  /** Bodies being written now (not yet in `bytes`): room is made for them before they land. */
  private reservedBytes = 0;
  private pendingWrites = 0;
  private readonly openFiles = new OpenFileCache<FileHandle>(
    MAX_OPEN_FILES,
    (key) => open(this.path(key), 'r'),
    (handle) => handle.close(),
  );
  private readonly ready: Promise<void>;
  /** What the cache held when its file system was found full, until `fullUntilMs`; null: not full. */
  private fullAtBytes: number | null = null;
  private fullUntilMs = 0;
  private fullReported = false;
  hits = 0;
  corrupt = 0;

  constructor(
    readonly dir: string,
    readonly capacityBytes: number,
    /** Told once when the cache's file system fills up (the cache then shrinks, reads go on). */
    private readonly log: (message: string) => void = () => undefined,
  ) {
    // A cache that cannot start (unwritable dir) must not take the mount down: it stays empty.
    this.ready = this.load().catch((error: unknown) => {
      this.failed = error;
    });
  }

  /** Why the cache could not load its directory, if it could not (status shows it). */
  failed: unknown = null;

  get sizeBytes(): number {
    return this.bytes;
  }

  get blocks(): number {
    return this.index.size;
  }

  private path(key: string): string {
    return join(this.dir, key);
  }

  /** Rebuilds the index from what a previous run left, oldest files first. */
  private async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const found: Array<{ key: string; size: number; mtimeMs: number }> = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith('.tmp')) await unlink(path).catch(() => undefined);
        else {
          const info = await stat(path);
          found.push({ key: relative(this.dir, path), size: info.size, mtimeMs: info.mtimeMs });
        }
      }
    };
    await walk(this.dir);
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const file of found) {
      this.index.set(file.key, file.size);
      this.bytes += file.size;
    }
    await this.evictTo(this.capacityBytes);
  }

  /**
   * The most the cache may hold now: its capacity, or less while its file system is full (a
   * cache on a shared disk must not keep every write failing, nor take the last free bytes).
   */
  private get limitBytes(): number {
    if (this.fullAtBytes === null) return this.capacityBytes;
    if (Date.now() >= this.fullUntilMs) {
      this.fullAtBytes = null;
      return this.capacityBytes;
    }
    return this.fullAtBytes;
  }

  /** Whether the cache holds the block (as far as its index knows; it may still be loading). */
  has(key: string): boolean {
    return this.index.has(key);
  }

  /** A read served from the cache: the entry becomes the most recently used. */
  private noteHit(key: string, size: number): void {
    this.index.delete(key);
    this.index.set(key, size);
    this.hits++;
  }

  /** The cached body, or null. The caller verifies it and calls remove() if it is damaged. */
  async get(key: string): Promise<Buffer | null> {
    await this.ready;
    const size = this.index.get(key);
    if (size === undefined) return null;
    try {
      const body = await readFile(this.path(key));
      this.noteHit(key, size);
      return body;
    } catch (error) {
      if (!isOutOfDescriptors(error)) this.forget(key);
      return null;
    }
  }

  /**
   * Parts of a cached body, one buffer per [offset, length] range (shorter at the file's end),
   * or null when the block is not cached. The caller verifies them like fetched bytes and calls
   * remove() if they are damaged: a random read costs one segment, not the whole body. The
   * first part goes into `into` when it is large enough; every read has ended when this
   * settles, even a failed one (the caller may then use `into` for something else).
   */
  async getRanges(
    key: string,
    ranges: ReadonlyArray<readonly [number, number]>,
    into?: Buffer,
  ): Promise<Buffer[] | null> {
    await this.ready;
    const size = this.index.get(key);
    if (size === undefined) return null;
    try {
      const parts = await this.openFiles.use(key, async (handle) => {
        const reads = await Promise.allSettled(
          ranges.map(([offset, length], i) => readRange(handle, offset, length, i === 0 ? into : undefined)),
        );
        return reads.map((read) => {
          if (read.status === 'rejected') throw read.reason;
          return read.value;
        });
      });
      this.noteHit(key, size);
      return parts;
    } catch (error) {
      // Out of descriptors, the file is still there and still counted: only this read misses.
      if (!isOutOfDescriptors(error)) this.forget(key);
      return null;
    }
  }

  /**
   * Stores a body and resolves once it is in the cache (or was not stored: no room, no cache).
   * Unlike put(), never skipped for pending writes: whole-file fetches wait on it instead.
   */
  async store(key: string, body: Buffer): Promise<boolean> {
    if (this.failed !== null || body.length > this.limitBytes) return false;
    if (this.index.has(key)) return true;
    this.pendingWrites++;
    try {
      await this.write(key, body);
      return true;
    } catch {
      return false;
    } finally {
      this.pendingWrites--;
    }
  }

  /** Stores a verified body in the background; drops it when too many writes are pending. */
  put(key: string, body: Buffer): void {
    if (this.failed !== null || this.index.has(key) || this.pendingWrites >= MAX_PENDING_WRITES) return;
    if (body.length > this.limitBytes) return;
    this.pendingWrites++;
    this.write(key, body)
      .catch(() => undefined)
      .finally(() => this.pendingWrites--);
  }

  private async write(key: string, body: Buffer): Promise<void> {
    await this.ready;
    // Room for every write in flight, not only this one: each used to make room for its own
    // body alone, so concurrent fills (8 puts, any number of stores) all landed on the same
    // free space and left the cache blocks over its limit (a 64M cache seen at 94M in a soak).
    this.reservedBytes += body.length;
    try {
      await this.evictTo(this.limitBytes - this.reservedBytes);
      const path = this.path(key);
      const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(tmp, body);
        await rename(tmp, path);
      } catch (error) {
        // A partial file of a failed write would hold the space until the next restart.
        await unlink(tmp).catch(() => undefined);
        if (isOutOfSpace(error)) this.noteFull(error);
        throw error;
      }
      if (!this.index.has(key)) {
        this.index.set(key, body.length);
        this.bytes += body.length;
      }
    } finally {
      this.reservedBytes -= body.length;
    }
    // More in flight than the cache holds: what landed is still kept to the limit.
    await this.evictTo(this.limitBytes);
  }

  /** The file system is full: keep to what the cache holds now, say so once. */
  private noteFull(error: unknown): void {
    this.fullAtBytes = this.bytes;
    this.fullUntilMs = Date.now() + FULL_RETRY_MS;
    if (this.fullReported) return;
    this.fullReported = true;
    this.log(
      `disk cache ${this.dir}: its file system is full (${systemErrorCode(error)}) with ${formatBytes(this.bytes)} ` +
        `cached of a ${formatBytes(this.capacityBytes)} limit; the cache keeps to what it holds and reads ` +
        `go on from the object store. Free space there or lower --cache-size (said once)`,
    );
  }

  /** Removes a damaged or unwanted entry. */
  async remove(key: string, reason: 'corrupt' | 'evict' = 'evict'): Promise<void> {
    if (reason === 'corrupt') this.corrupt++;
    this.forget(key);
    await unlink(this.path(key)).catch(() => undefined);
  }

  private forget(key: string): void {
    this.openFiles.retire(key);
    const size = this.index.get(key);
    if (size === undefined) return;
    this.index.delete(key);
    this.bytes -= size;
  }

  private async evictTo(targetBytes: number): Promise<void> {
    for (const key of this.index.keys()) {
      if (this.bytes <= targetBytes) break;
      await this.remove(key);
    }
  }

  /** Waits for background writes and closes the files kept open (tests, shutdown). */
  async drain(): Promise<void> {
    await this.ready;
    while (this.pendingWrites > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    this.openFiles.retireAll();
  }
}
