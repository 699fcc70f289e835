import { asSliceId, type SliceId } from '../common/index.js';
import type { Engine } from '../meta/index.js';
import type { ObjectStore } from '../object/index.js';

/**
 * `strata gc --scan-leaked`: lists the store's block objects and reports those of slices the
 * metadata knows nothing of (no current reference and no row in the deleted slice log). Those
 * are blocks uploaded for a commit that never happened (a mount killed between upload and
 * commit, a failed commit) — or blocks a live writer uploaded and has not committed YET: a
 * mount may hold an open file's uploaded slices for hours before its fsync or close.
 *
 * Nothing here can tell the two apart, so the scan only reports. Deleting safely needs every
 * live mount to report the lowest slice id it may still commit (a floor, renewed with its
 * heartbeat, surviving a session renewal); blocks of slices below every floor and unknown to
 * the metadata could then go. Until then a leaked block costs space, never correctness.
 */

/** `chunks/FFF/<sliceId>_<blockIndex>_<blockLengthBytes>` (src/data/layout.ts blockKey). */
const BLOCK_KEY = /^chunks\/[0-9a-f]{3}\/(\d+)_(\d+)_(\d+)$/;
/** Slice ids whose state is read per engine read. */
const STATE_BATCH = 1000;

export interface LeakScanReport {
  /** Block objects listed under chunks/. */
  objectsScanned: number;
  /** Slices the metadata knows nothing of, their objects and bytes. */
  unknownSlices: number;
  unknownObjects: number;
  unknownBytes: number;
  /** Up to `sampleLimit` of those slice ids, lowest first, for people to look at. */
  sample: SliceId[];
  /** Objects under chunks/ whose key is not a block key (left alone). */
  foreignObjects: number;
}

export interface LeakScanOptions {
  engine: Engine;
  store: ObjectStore;
  sampleLimit?: number;
  onProgress?: (report: LeakScanReport) => void;
}

interface Pending {
  objects: number;
  bytes: number;
}

export async function scanLeakedObjects(options: LeakScanOptions): Promise<LeakScanReport> {
  const report: LeakScanReport = {
    objectsScanned: 0,
    unknownSlices: 0,
    unknownObjects: 0,
    unknownBytes: 0,
    sample: [],
    foreignObjects: 0,
  };
  const sampleLimit = options.sampleLimit ?? 20;
  // A slice's blocks share a fan-out directory and the key prefix "<id>_", so they list
  // together: a slice is complete once the listing moves past it, and each id comes once.
  const pending = new Map<number, Pending>();
  const judge = async (): Promise<void> => {
    if (pending.size === 0) return;
    const ids = [...pending.keys()].map(asSliceId);
    const states = await options.engine.read((tx) => tx.getSliceStates(ids));
    for (const state of states) {
      if (state.refs > 0 || state.lastDeletedUs !== undefined) continue;
      const found = pending.get(state.id as number)!;
      report.unknownSlices++;
      report.unknownObjects += found.objects;
      report.unknownBytes += found.bytes;
      report.sample.push(state.id);
    }
    report.sample.sort((a, b) => (a as number) - (b as number)).splice(sampleLimit);
    pending.clear();
    options.onProgress?.({ ...report, sample: [...report.sample] });
  };
  for await (const object of options.store.list('chunks/')) {
    const match = BLOCK_KEY.exec(object.key);
    if (match === null) {
      report.foreignObjects++;
      continue;
    }
    report.objectsScanned++;
    const id = Number(match[1]);
    const entry = pending.get(id);
    if (entry !== undefined) {
      entry.objects++;
      entry.bytes += object.sizeBytes;
      continue;
    }
    if (pending.size >= STATE_BATCH) await judge();
    pending.set(id, { objects: 1, bytes: object.sizeBytes });
  }
  await judge();
  return report;
}
