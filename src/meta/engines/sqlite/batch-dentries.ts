import type { DentryRow } from '../../engine.js';

/** A directory entry's place in the batch before the running change first touched it. */
interface DentryBefore {
  row: DentryRow | undefined;
  kept: boolean;
}

const keyOf = (parent: number, name: string): string => `${parent}/${name}`;

/**
 * Directory entries one group-commit batch inserted, written to SQLite once before its COMMIT
 * (like the inode rows of batch-rows.ts), so a create runs no SQL write of its own and needs no
 * savepoint (engine.ts opens one at a change's first SQL write). Deletions stay immediate: only
 * puts wait here, and a put deleted again in the batch simply leaves.
 *
 * Reads of the batch see these entries: lookup first asks here, hasEntries and listDir add them
 * (their cursors are newer than any in SQLite, so they come last in cursor order).
 * Until the write-back SQLite holds the committed entry, which the first change of the batch to
 * replace or delete it copies to history (`needsKeep`), as for inodes.
 */
export class BatchDentries {
  private readonly puts = new Map<string, DentryRow>();
  /** Keys whose committed entry is in history already, or which had none (put fresh). */
  private readonly kept = new Set<string>();
  private readonly undo = new Map<string, DentryBefore>();

  reset(): void {
    this.puts.clear();
    this.kept.clear();
    this.undo.clear();
  }

  beginChange(): void {
    this.undo.clear();
  }

  rollbackChange(): void {
    for (const [key, before] of this.undo) {
      if (before.row === undefined) this.puts.delete(key);
      else this.puts.set(key, before.row);
      if (before.kept) this.kept.add(key);
      else this.kept.delete(key);
    }
    this.undo.clear();
  }

  private touch(key: string): void {
    if (this.undo.has(key)) return;
    this.undo.set(key, { row: this.puts.get(key), kept: this.kept.has(key) });
  }

  /** The entry this batch put under (parent, name), if any (a copy: callers may mutate rows). */
  get(parent: number, name: string): DentryRow | undefined {
    const row = this.puts.get(keyOf(parent, name));
    return row && { ...row };
  }

  /** True the first time this batch replaces or deletes an entry it did not put fresh. */
  needsKeep(parent: number, name: string): boolean {
    const key = keyOf(parent, name);
    if (this.kept.has(key)) return false;
    this.touch(key);
    this.kept.add(key);
    return true;
  }

  put(row: DentryRow, fresh: boolean): void {
    const key = keyOf(row.parent, row.name);
    this.touch(key);
    this.puts.set(key, { ...row });
    if (fresh) this.kept.add(key);
  }

  /** The entry is gone (SQLite's row deleted now): nothing of it to write back. */
  deleted(parent: number, name: string): void {
    const key = keyOf(parent, name);
    this.touch(key);
    this.puts.delete(key);
    this.kept.add(key);
  }

  /** Whether this batch put any entry into `parent`. */
  hasAny(parent: number): boolean {
    for (const row of this.puts.values()) if (row.parent === parent) return true;
    return false;
  }

  /** Whether an entry of this batch stands under (parent, name) (SQLite's row there is stale). */
  has(parent: number, name: string): boolean {
    return this.puts.has(keyOf(parent, name));
  }

  /** This batch's entries of `parent` after `afterCursor`, in cursor order. */
  listDir(parent: number, afterCursor: number): DentryRow[] {
    const rows: DentryRow[] = [];
    for (const row of this.puts.values()) {
      if (row.parent === parent && row.cursor > afterCursor) rows.push({ ...row });
    }
    return rows.sort((a, b) => a.cursor - b.cursor);
  }

  /** Entries to write before the batch commits. */
  values(): Iterable<DentryRow> {
    return this.puts.values();
  }
}
