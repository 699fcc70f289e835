import type { InodeRow } from '../../engine.js';

/**
 * What one group-commit batch keeps in memory between its statements. Creates in one directory
 * read and rewrite the same parent inode and bump the same usage counter once each: within a
 * batch the parent is served from here instead of a SELECT, and counters are summed here and
 * written once at commit instead of one upsert per change.
 *
 * Inode rows and extended attributes are write-through (SQLite holds every put at once; this is only a read cache).
 * Counters are write-back: the engine writes `dirtyCounters()` before its COMMIT, so nothing
 * outside this batch can tell the difference (readers see committed state only).
 *
 * A change rolled back to its savepoint must leave no trace here: `rollbackChange` drops the
 * cached rows and restores every counter the change touched.
 */
export class BatchRows {
  /** Inode rows written by this batch (null: deleted by it). Callers get copies: they mutate rows. */
  private readonly inodes = new Map<number, InodeRow | null>();
  /**
   * Extended attributes this batch read or wrote (null: none by that name). Every create reads its
   * directory's default ACL, almost always absent: one SELECT per batch instead of per create.
   */
  private readonly xattrs = new Map<number, Map<string, Buffer | null>>();
  /** Counter values as this batch sees them, loaded on first use. */
  private readonly counters = new Map<string, number>();
  private readonly dirty = new Set<string>();
  /** Counter values before the running change touched them (undefined: not loaded then). */
  private readonly undo = new Map<string, number | undefined>();

  /** A new batch: nothing cached survives a commit or an abort. */
  reset(): void {
    this.inodes.clear();
    this.xattrs.clear();
    this.counters.clear();
    this.dirty.clear();
    this.undo.clear();
  }

  /** A change begins (its savepoint is open): its counter changes may still be undone. */
  beginChange(): void {
    this.undo.clear();
  }

  rollbackChange(): void {
    this.inodes.clear();
    this.xattrs.clear();
    for (const [name, before] of this.undo) {
      if (before === undefined) {
        this.counters.delete(name);
        this.dirty.delete(name);
      } else {
        this.counters.set(name, before);
      }
    }
    this.undo.clear();
  }

  /** undefined: not known here (ask SQLite); null: deleted in this batch. */
  inode(ino: number): InodeRow | null | undefined {
    const row = this.inodes.get(ino);
    return row ? copyInode(row) : row;
  }

  wroteInode(row: InodeRow): void {
    this.inodes.set(row.ino, copyInode(row));
  }

  deletedInode(ino: number): void {
    this.inodes.set(ino, null);
    this.xattrs.delete(ino);
  }

  /** undefined: not known here (ask SQLite); null: the inode has no such attribute. */
  xattr(ino: number, name: string): Buffer | null | undefined {
    const value = this.xattrs.get(ino)?.get(name);
    return value ? Buffer.from(value) : value;
  }

  /** What SQLite holds for (ino, name) now, read or just written (null: nothing). */
  knowXattr(ino: number, name: string, value: Buffer | null): void {
    let names = this.xattrs.get(ino);
    if (names === undefined) {
      names = new Map();
      this.xattrs.set(ino, names);
    }
    names.set(name, value && Buffer.from(value));
  }

  /** The counter's value in this batch; `load` reads the committed value the first time. */
  counter(name: string, load: (name: string) => number): number {
    let value = this.counters.get(name);
    if (value === undefined) {
      value = load(name);
      this.counters.set(name, value);
    }
    return value;
  }

  addCounter(name: string, delta: number, load: (name: string) => number): number {
    const before = this.counter(name, load);
    if (!this.undo.has(name)) this.undo.set(name, this.dirty.has(name) ? before : undefined);
    const after = before + delta;
    this.counters.set(name, after);
    this.dirty.add(name);
    return after;
  }

  /** Counters to write before the batch commits. */
  *dirtyCounters(): Iterable<[string, number]> {
    for (const name of this.dirty) yield [name, this.counters.get(name)!];
  }
}

/** A field-by-field copy: the same shape as rows read from SQLite (rows.ts toInode). */
function copyInode(r: InodeRow): InodeRow {
  return {
    ino: r.ino,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    nlink: r.nlink,
    sizeBytes: r.sizeBytes,
    rdev: r.rdev,
    atimeSec: r.atimeSec,
    atimeNsec: r.atimeNsec,
    mtimeSec: r.mtimeSec,
    mtimeNsec: r.mtimeNsec,
    ctimeSec: r.ctimeSec,
    ctimeNsec: r.ctimeNsec,
    generation: r.generation,
    parent: r.parent,
    target: r.target,
  };
}
