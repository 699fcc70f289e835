import type { Ino, SliceRef } from '../common/index.js';
import type { InodeAttr } from '../meta/api.js';
import { exactVersion } from './attr.js';

/** Files whose slice lists are kept after their last close. */
const MAX_FILES = 4096;
/** However long the volume keeps history, a list is not reused after this long. */
const MAX_AGE_MS = 10 * 60_000;

interface Entry {
  version: string;
  slices: Map<number, SliceRef[]>;
  readAtMs: number;
}

/**
 * The slice lists of recently closed files, so that opening an unchanged file again (a build
 * reading headers, `cat` after `cp`) reads its data without asking the metadata service for
 * them. An open always asks the service for the inode's attributes first (close-to-open), and a
 * list is reused only when those show the exact committed state the list was read under.
 * Compaction (by this or another mount) rewrites lists without changing the inode, but the old
 * slices keep their objects until garbage collection, which never deletes what a version inside
 * the history retention refers to: so a list is reused only within that window of its reading.
 */
export class RecentSlices {
  private readonly entries = new Map<Ino, Entry>();
  private maxAgeMs = 0;

  /** Lists are reusable for as long as the volume keeps history (none when it keeps none). */
  setRetention(historyRetentionMs: number): void {
    this.maxAgeMs = Math.min(historyRetentionMs, MAX_AGE_MS);
  }

  /** Keeps lists read under the inode state `version` (exactVersion), the oldest at `readAtMs`. */
  remember(ino: Ino, version: string, slices: Map<number, SliceRef[]>, readAtMs: number): void {
    if (this.maxAgeMs === 0 || slices.size === 0) return;
    this.entries.delete(ino); // re-inserted last: the Map's order is the eviction order
    this.entries.set(ino, { version, slices, readAtMs });
    if (this.entries.size > MAX_FILES) this.entries.delete(this.entries.keys().next().value as Ino);
  }

  /** The lists of `ino` if `attr` (fresh from the service) is the state they were read under. */
  take(ino: Ino, attr: InodeAttr): { slices: Map<number, SliceRef[]>; readAtMs: number } | undefined {
    const entry = this.entries.get(ino);
    if (entry === undefined) return undefined;
    this.entries.delete(ino);
    if (entry.version !== exactVersion(attr) || Date.now() - entry.readAtMs >= this.maxAgeMs)
      return undefined;
    return entry;
  }

  forget(ino: Ino): void {
    this.entries.delete(ino);
  }
}
