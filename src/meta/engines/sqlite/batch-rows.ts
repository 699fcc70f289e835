import type { InodeRow } from '../../engine.js';

/** An inode's place in the batch before the running change first touched it. */
interface InodeBefore {
  row: InodeRow | null | undefined;
  dirty: boolean;
  kept: boolean;
}

/**
 * What one group-commit batch keeps in memory between its statements. Creates in one directory
 * read and rewrite the same parent inode and bump the same usage counter once each: within a
 * batch the parent is served from here instead of a SELECT, and its row, like the counters, is
 * written once before the COMMIT instead of once per change.
 *
 * Inode rows and counters are write-back: the engine writes `dirtyInodes()` and `dirtyCounters()`
 * before its COMMIT, so nothing outside this batch can tell the difference (readers see
 * committed state only). Until then SQLite still holds the inode rows as committed before the
 * batch, which is what the history copy (`inode_hist`) must take, once per batch: `needsKeep`.
 * Extended attributes are write-through (SQLite holds every put at once; this is a read cache).
 *
 * A change rolled back to its savepoint must leave no trace here: every inode and counter it
 * touched goes back to what it was when the change began (its savepoint rolled back the
 * history copies it made, so those inodes need a copy again).
 */
export class BatchRows {
  /** Inode rows as this batch sees them (null: deleted by it). Callers get copies: they mutate rows. */
  private readonly inodes = new Map<number, InodeRow | null>();
  /** Inode rows written by this batch and not yet by SQLite. */
  private readonly dirtyInos = new Set<number>();
  /**
   * Inodes whose committed image is in history already, or which have none (created by this
   * batch): the copy statement would add nothing or a duplicate. A parent directory changes in
   * almost every create; this is most of the history cost.
   */
  private readonly kept = new Set<number>();
  /** Inodes the running change touched, as they were before it. */
  private readonly inodeUndo = new Map<number, InodeBefore>();
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
    this.dirtyInos.clear();
    this.kept.clear();
    this.inodeUndo.clear();
    this.xattrs.clear();
    this.counters.clear();
    this.dirty.clear();
    this.undo.clear();
  }

  /** A change begins (its savepoint is open): its inode and counter changes may still be undone. */
  beginChange(): void {
    this.inodeUndo.clear();
    this.undo.clear();
  }

  rollbackChange(): void {
    for (const [ino, before] of this.inodeUndo) {
      if (before.row === undefined) this.inodes.delete(ino);
      else this.inodes.set(ino, before.row);
      if (before.dirty) this.dirtyInos.add(ino);
      else this.dirtyInos.delete(ino);
      if (before.kept) this.kept.add(ino);
      else this.kept.delete(ino);
    }
    this.inodeUndo.clear();
    // Write-through: SQLite rolled these back itself; only the cached reads may be stale.
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

  /** Remembers how `ino` stood before the running change's first touch (for rollbackChange). */
  private touchInode(ino: number): void {
    if (this.inodeUndo.has(ino)) return;
    // Stored rows are never mutated (only replaced), so keeping the reference is a snapshot.
    this.inodeUndo.set(ino, {
      row: this.inodes.get(ino),
      dirty: this.dirtyInos.has(ino),
      kept: this.kept.has(ino),
    });
  }

  /** undefined: not known here (ask SQLite); null: deleted in this batch. */
  inode(ino: number): InodeRow | null | undefined {
    const row = this.inodes.get(ino);
    return row ? copyInode(row) : row;
  }

  /**
   * True the first time this batch changes or deletes `ino` (not created by it): SQLite still
   * holds the committed image, to be copied to history now. Later calls answer false.
   */
  needsKeep(ino: number): boolean {
    if (this.kept.has(ino)) return false;
    this.touchInode(ino);
    this.kept.add(ino);
    return true;
  }

  /** `row` is the inode's new state, written to SQLite at commit; `fresh`: created by this change. */
  wroteInode(row: InodeRow, fresh: boolean): void {
    this.touchInode(row.ino);
    this.inodes.set(row.ino, copyInode(row));
    this.dirtyInos.add(row.ino);
    if (fresh) this.kept.add(row.ino);
  }

  /** SQLite's row was deleted (its history copied): nothing to write back for `ino`. */
  deletedInode(ino: number): void {
    this.touchInode(ino);
    this.inodes.set(ino, null);
    this.dirtyInos.delete(ino);
    this.kept.add(ino);
    this.xattrs.delete(ino);
  }

  /** Inode rows to write before the batch commits. */
  *dirtyInodes(): Iterable<InodeRow> {
    for (const ino of this.dirtyInos) yield this.inodes.get(ino)!;
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
    allocatedBytes: r.allocatedBytes,
  };
}
