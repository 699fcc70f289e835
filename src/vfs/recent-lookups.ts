import type { Ino } from '../common/index.js';
import type { InodeAttr } from '../meta/api.js';
import { isRegular } from './attr.js';

/** How long a lookup is remembered: the kernel opens what it looked up at once. */
const MAX_AGE_US = 2_000_000;
/** Lookups remembered at most; the oldest go first. */
const MAX_ENTRIES = 1024;

interface Lookup {
  attr: InodeAttr;
  /** When the service answered the lookup, on this mount's clock: the file was that version then. */
  seenAtUs: number;
}

/**
 * The regular files this mount's kernel looked up in the last moments, with when. An open that
 * finds its file removed since (renamed over between the kernel's lookup and its open, on this
 * mount or another) opens the version the lookup saw, as on a local file system, where a
 * rename cannot come between the two; without it the open fails with ESTALE and the kernel
 * looks the name up once more, which a writer renaming in a tight loop can beat again.
 */
export class RecentLookups {
  private readonly entries = new Map<Ino, Lookup>();

  note(attr: InodeAttr, seenAtUs: number): void {
    if (!isRegular(attr.mode)) return;
    this.entries.delete(attr.ino); // re-inserted last: the Map's order is the eviction order
    this.entries.set(attr.ino, { attr, seenAtUs });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as Ino);
  }

  /** The lookup of `ino` answered within the last moments, if any. */
  get(ino: Ino, nowUs: number): Lookup | undefined {
    const lookup = this.entries.get(ino);
    if (lookup === undefined || nowUs - lookup.seenAtUs > MAX_AGE_US) return undefined;
    return lookup;
  }
}
