import { Errno, isFsError } from '../common/index.js';
import type { InodeAttr, MetaApi, Timespec } from '../meta/api.js';
import { compareTimes, contentVersion, nowTimespec } from './attr.js';

/** How far before this mount last saw a removed file its version is looked for in the history. */
const SEARCH_US = 1_000_000;
/** Metadata reads that search (enough to halve that second down to the microsecond). */
const PROBES = 22;

/** Now in microseconds, on the clock of the metadata service's timestamps (nowTimespec). */
export function nowUs(): number {
  return microseconds(nowTimespec());
}

function microseconds(time: Timespec): number {
  return time.sec * 1_000_000 + Math.floor(time.nsec / 1000);
}

/**
 * An instant at which the service's history shows the file as `known`, the version this mount
 * took from it at `seenAtUs` (on this mount's clock): for reading a file another change
 * removed since (OpenFile.slicesBeforeRemoval). The version was current when the service
 * answered, a moment before seenAtUs (the service's clock may differ a little, and the removal
 * may have come right after): seenAtUs first, then the second before it by halving, no earlier
 * than the version's ctime. A few metadata reads, only on that rare path; undefined if none
 * shows it (out of the history window, or another version).
 */
export async function instantOfVersion(
  meta: MetaApi,
  known: InodeAttr,
  seenAtUs: number,
): Promise<number | undefined> {
  const version = contentVersion(known);
  let lowUs = Math.max(microseconds(known.ctime), seenAtUs - SEARCH_US);
  let highUs = seenAtUs;
  for (let probe = 0; probe < PROBES && lowUs <= highUs; probe++) {
    const atUs = probe === 0 ? highUs : Math.floor((lowUs + highUs) / 2);
    let then: InodeAttr | undefined;
    try {
      then = await meta.getattr(known.ino, { asOfUs: atUs });
    } catch (err) {
      if (!isFsError(err) || err.errno !== Errno.ENOENT) return undefined;
    }
    if (then !== undefined && contentVersion(then) === version) return atUs;
    // Not there (removed already) or a later version: earlier. An older version: later.
    if (then !== undefined && compareTimes(then.ctime, known.ctime) < 0) lowUs = atUs + 1;
    else highUs = atUs - 1;
  }
  return undefined;
}
