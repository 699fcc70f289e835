import { randomBytes } from 'node:crypto';
import { Errno, fsError, isFsError, ROOT_INO, type Ino, type SliceWrite } from '../common/index.js';
import type { AsOf, Caller, InodeAttr, MetaApi } from '../meta/index.js';

/**
 * `strata restore`: brings a file or a directory tree back as it was at an instant of the
 * volume's history, by reference. A restored file points at the very slices it had then (the
 * objects are immutable and kept for the retention window), so a restore of any size costs
 * metadata only: no byte is read or written. Names, modes, owners, times, xattrs and ACLs,
 * symlinks, special files and hard links inside the tree come back too.
 *
 * A file restored in place replaces the current one atomically (built under a temporary name,
 * then renamed over it); a directory tree goes to a path that does not exist yet (a directory
 * cannot be replaced atomically, and merging with what is there would be a guess).
 */

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const READDIR_BATCH = 512;
/** Chunks whose slice lists are read per call. */
const CHUNKS_PER_READ = 64;
/**
 * How far inside the history window the instant must lie. A restore references slices that may
 * have been deleted since; the GC takes those once their deletion leaves the window (plus its
 * margin), so an instant at the window's edge could lose its data while the restore runs.
 */
const WINDOW_EDGE_MS = 5 * 60_000;
/**
 * How far inside the window the instant must still be when a file's slices are committed. The
 * GC deletes a slice only once its deletion, which came after the instant, is older than the
 * window: while the instant stays inside the window by this much, no pass can have decided to
 * delete a slice of it, and the commit (one call) lands well before one could.
 */
const COMMIT_SLACK_MS = 60_000;
/** Restores run as root: ownership and modes are set to what they were, whoever owned them. */
const ROOT: Caller = { uid: 0, gid: 0, pid: process.pid };

export interface RestoreOptions {
  meta: MetaApi;
  /** The instant to go back to, µs since the epoch (inside the history window). */
  asOfUs: number;
  /** Absolute path inside the volume, as it was at the instant. */
  path: string;
  /** Where the restored copy goes (absolute path inside the volume); default `path` itself. */
  to?: string;
  /** Called after each restored entry with the totals so far. */
  onProgress?: (report: RestoreReport) => void;
  /** The clock the history window is measured against (ms since the epoch); default Date.now. */
  nowMs?: () => number;
}

export interface RestoreReport {
  files: number;
  directories: number;
  symlinks: number;
  /** Fifos, sockets and device nodes. */
  others: number;
  /** Extra names of files linked more than once inside the tree. */
  hardLinks: number;
  /** Bytes of the restored files (referenced, not copied). */
  bytes: number;
}

export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  const { meta } = options;
  const asOf: AsOf = { asOfUs: options.asOfUs };
  const { chunkSizeBytes, historyRetentionMs } = await meta.volume();
  const nowMs = options.nowMs ?? Date.now;
  const oldestSafeUs = (nowMs() - historyRetentionMs + WINDOW_EDGE_MS) * 1000;
  if (options.asOfUs < oldestSafeUs) {
    throw fsError.EINVAL(
      `${new Date(options.asOfUs / 1000).toISOString()} is outside or within ${WINDOW_EDGE_MS / 60_000} minutes of the edge ` +
        `of the volume's history window (retention ${historyRetentionMs / 1000} s), where the data it refers to may be ` +
        `collected while the restore runs; give a later instant`,
    );
  }
  const source = await resolvePath(meta, options.path, asOf);
  const target = splitPath(options.to ?? options.path);
  const targetParent = await resolvePath(meta, target.parent);
  if ((targetParent.mode & S_IFMT) !== S_IFDIR) {
    throw fsError.ENOTDIR(`${target.parent} is not a directory now; restore somewhere else with --to`);
  }
  const existing = await lookupOrNull(meta, targetParent.ino, target.name);
  const report: RestoreReport = { files: 0, directories: 0, symlinks: 0, others: 0, hardLinks: 0, bytes: 0 };
  const insideWindow = (): void => {
    if (options.asOfUs >= (nowMs() - historyRetentionMs + COMMIT_SLACK_MS) * 1000) return;
    throw fsError.EINVAL(
      `the restore ran so long that ${new Date(options.asOfUs / 1000).toISOString()} came within ` +
        `${COMMIT_SLACK_MS / 1000} s of the edge of the history window, where the GC may collect the data it ` +
        `refers to; stopped after ${report.files} files (each restored one is whole). Restore again with a ` +
        "later instant, or raise the volume's retention",
    );
  };
  const restorer = new TreeRestorer(meta, asOf, chunkSizeBytes, report, insideWindow, options.onProgress);
  if ((source.mode & S_IFMT) === S_IFDIR) {
    if (existing !== null) {
      throw fsError.EEXIST(
        `${options.to ?? options.path} exists now; a directory is restored to a new path: give --to NEW_PATH`,
      );
    }
    await restorer.entry(source, targetParent.ino, target.name);
    return report;
  }
  if (existing !== null && (existing.mode & S_IFMT) === S_IFDIR) {
    throw fsError.EISDIR(`${options.to ?? options.path} is a directory now; give --to NEW_PATH`);
  }
  // Built beside the target under a name nobody uses, then renamed over it: readers see the
  // old file or the restored one, never a half-restored one.
  const temporary = `.strata-restore-${randomBytes(6).toString('hex')}-${target.name}`.slice(0, 255);
  try {
    await restorer.entry(source, targetParent.ino, temporary);
    await meta.rename(ROOT, targetParent.ino, temporary, targetParent.ino, target.name, 0);
  } catch (err) {
    await meta.unlink(ROOT, targetParent.ino, temporary).catch(() => undefined);
    throw err;
  }
  return report;
}

class TreeRestorer {
  /** Inodes of the past already restored in this run (hard links): old ino -> (parent, name) of the copy. */
  private readonly linked = new Map<Ino, { parent: Ino; name: string }>();

  constructor(
    private readonly meta: MetaApi,
    private readonly asOf: AsOf,
    private readonly chunkSizeBytes: number,
    private readonly report: RestoreReport,
    /** Throws once the instant is too close to the window's edge to reference its slices. */
    private readonly insideWindow: () => void,
    private readonly onProgress?: (report: RestoreReport) => void,
  ) {}

  /** Restores `old` (an inode as it was) as `parent/name`, directories with everything in them. */
  async entry(old: InodeAttr, parent: Ino, name: string): Promise<void> {
    const type = old.mode & S_IFMT;
    if (type !== S_IFDIR && old.nlink > 1) {
      const first = this.linked.get(old.ino);
      if (first !== undefined) {
        const copy = await this.meta.lookup(ROOT, first.parent, first.name);
        await this.meta.link(ROOT, copy.ino, parent, name);
        this.report.hardLinks++;
        this.onProgress?.({ ...this.report });
        return;
      }
      this.linked.set(old.ino, { parent, name });
    }
    let made: InodeAttr;
    if (type === S_IFDIR) {
      made = await this.meta.mkdir(ROOT, parent, name, old.mode & 0o7777, 0);
      this.report.directories++;
      await this.children(old.ino, made.ino);
    } else if (type === S_IFLNK) {
      made = await this.meta.symlink(ROOT, parent, name, await this.meta.readlink(old.ino, this.asOf));
      this.report.symlinks++;
    } else if (type === S_IFREG) {
      made = await this.meta.mknod(ROOT, parent, name, old.mode, 0, 0);
      await this.contents(old, made.ino);
      this.report.files++;
      this.report.bytes += old.sizeBytes;
    } else {
      made = await this.meta.mknod(ROOT, parent, name, old.mode, old.rdev, 0);
      this.report.others++;
    }
    await this.xattrs(old.ino, made.ino);
    // Last: the xattrs (ACLs) and the children changed the times and maybe the mode.
    const changes = {
      mode: old.mode & 0o7777,
      uid: old.uid,
      gid: old.gid,
      atime: old.atime,
      mtime: old.mtime,
    };
    if (type === S_IFLNK) {
      await this.meta.setattr(ROOT, made.ino, {
        uid: old.uid,
        gid: old.gid,
        atime: old.atime,
        mtime: old.mtime,
      });
    } else {
      await this.meta.setattr(ROOT, made.ino, changes);
    }
    this.onProgress?.({ ...this.report });
  }

  private async children(oldDir: Ino, newDir: Ino): Promise<void> {
    let cursor = 0;
    for (;;) {
      const batch = await this.meta.readdir(ROOT, oldDir, cursor, READDIR_BATCH, true, this.asOf);
      if (batch.length === 0) return;
      for (const e of batch) {
        cursor = e.cursor;
        if (e.name === '.' || e.name === '..') continue;
        const attr = e.attr ?? (await this.meta.getattr(e.ino, this.asOf));
        await this.entry(attr, newDir, e.name);
      }
    }
  }

  /** The file's slices as they were, committed by reference: the same objects, nothing copied. */
  private async contents(old: InodeAttr, ino: Ino): Promise<void> {
    const writes: SliceWrite[] = [];
    const chunkSizeBytes = this.chunkSizeBytes;
    const lastChunk = old.sizeBytes === 0 ? -1 : Math.floor((old.sizeBytes - 1) / chunkSizeBytes);
    for (let first = 0; first <= lastChunk; first += CHUNKS_PER_READ) {
      const last = Math.min(lastChunk, first + CHUNKS_PER_READ - 1);
      const chunks = await this.meta.readSlices(old.ino, first, last, this.asOf);
      for (const [chunkIndex, slices] of [...chunks].sort((a, b) => a[0] - b[0])) {
        // In overlay order, bottom first: committed in turn, each lands on top as it did then.
        for (const slice of slices) writes.push({ chunkIndex, slice });
      }
    }
    this.insideWindow();
    await this.meta.commitWrites(ROOT, ino, writes, old.sizeBytes, old.mtime);
  }

  private async xattrs(oldIno: Ino, ino: Ino): Promise<void> {
    for (const name of await this.meta.listxattr(oldIno, this.asOf)) {
      const value = await this.meta.getxattr(oldIno, name, this.asOf);
      await this.meta.setxattr(ROOT, ino, name, value, 0);
    }
  }
}

/** The inode at an absolute path, now or as of an instant. */
async function resolvePath(meta: MetaApi, path: string, asOf?: AsOf): Promise<InodeAttr> {
  let attr = await meta.getattr(ROOT_INO, asOf);
  for (const part of path.split('/').filter((p) => p !== '' && p !== '.')) {
    if (part === '..') throw fsError.EINVAL(`path ${path}: ".." is not allowed; give an absolute path`);
    try {
      attr = await meta.lookup(ROOT, attr.ino, part, asOf);
    } catch (err) {
      if (isFsError(err) && err.errno === Errno.ENOENT) {
        const when = asOf?.asOfUs === undefined ? 'now' : `at ${new Date(asOf.asOfUs / 1000).toISOString()}`;
        throw fsError.ENOENT(`${path} did not exist ${when} (no "${part}")`);
      }
      throw err;
    }
  }
  return attr;
}

async function lookupOrNull(meta: MetaApi, parent: Ino, name: string): Promise<InodeAttr | null> {
  try {
    return await meta.lookup(ROOT, parent, name);
  } catch (err) {
    if (isFsError(err) && err.errno === Errno.ENOENT) return null;
    throw err;
  }
}

function splitPath(path: string): { parent: string; name: string } {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const name = parts.pop();
  if (name === undefined || !path.startsWith('/')) {
    throw fsError.EINVAL(
      `"${path}" is not an absolute path of a file or directory inside the volume, e.g. /data/report.txt`,
    );
  }
  return { parent: `/${parts.join('/')}`, name };
}
