import { asSliceId, type SliceId } from '../common/index.js';
import { describeBlockingSession, raiseReclaimFloor, type Engine } from '../meta/index.js';
import type { ObjectStore } from '../object/index.js';
import { GC_DEFAULTS, PacedDeleter } from './gc.js';

/**
 * Leaked blocks: block objects of slices the metadata knows nothing of (no current reference and
 * no row in the deleted slice log). They are blocks uploaded for a commit that never happened (a
 * mount killed between upload and commit, a failed commit, a mount whose session expired) — or
 * blocks a live writer uploaded and has not committed YET: a mount may hold an open file's
 * uploaded slices for hours before its fsync or close. The two look the same in the store.
 *
 * `strata gc --scan-leaked` (scanLeakedObjects) only reports them. `strata gc --reclaim-leaked`
 * (reclaimLeakedObjects) deletes those that no commit can still need, using slice floors
 * (src/meta/reclaim-floor.ts):
 * 1. Every mount reports with its heartbeat the lowest slice id it may still commit (held ids:
 *    taken and not yet committed or given up; src/data SliceIdPool). The pass
 *    raises the volume's reclaim floor F to the least of those and the allocator's next id
 *    (never lowering it), durably, BEFORE it deletes anything. A session reporting no floor (an
 *    older mount) stops the pass, which names it.
 * 2. It lists the store and deletes the blocks of unknown slices below F, paced like the GC's
 *    other deletes. Unknown slices at or above F are left: a live mount may still commit them.
 * 3. Any commit that brings in an unknown slice id below F is refused with EIO. So a mount that
 *    comes back after its session expired (its floor no longer counted) gets an error for the
 *    data it wrote while away, never a file pointing at deleted blocks.
 * A pass stopped part way leaves F raised and some blocks undeleted: the next pass deletes them.
 * The background GC (gc-background.ts) runs a pass once a day; `strata gc --reclaim-leaked` on
 * demand.
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

/** One slice the metadata knows nothing of, with its objects as listed. */
interface UnknownSlice {
  id: SliceId;
  keys: string[];
  bytes: number;
}

/**
 * Lists the store's block objects and hands over, batch by batch, the slices the metadata knows
 * nothing of. Returns the counts of what it listed.
 */
async function walkUnknownSlices(
  engine: Engine,
  store: ObjectStore,
  onBatch: (unknown: UnknownSlice[], listed: { objects: number; foreign: number }) => Promise<void>,
  signal?: AbortSignal,
): Promise<{ objects: number; foreign: number }> {
  const listed = { objects: 0, foreign: 0 };
  // A slice's blocks share a fan-out directory and the key prefix "<id>_", so they list
  // together: a slice is complete once the listing moves past it, and each id comes once.
  const pending = new Map<number, UnknownSlice>();
  const judge = async (): Promise<void> => {
    if (pending.size === 0) return;
    const ids = [...pending.keys()].map(asSliceId);
    const states = await engine.read((tx) => tx.getSliceStates(ids));
    const unknown: UnknownSlice[] = [];
    for (const state of states) {
      if (state.refs > 0 || state.lastDeletedUs !== undefined) continue;
      unknown.push(pending.get(state.id as number)!);
    }
    pending.clear();
    await onBatch(unknown, listed);
  };
  for await (const object of store.list('chunks/')) {
    if (signal?.aborted === true) return listed;
    const match = BLOCK_KEY.exec(object.key);
    if (match === null) {
      listed.foreign++;
      continue;
    }
    listed.objects++;
    const id = Number(match[1]);
    const entry = pending.get(id);
    if (entry !== undefined) {
      entry.keys.push(object.key);
      entry.bytes += object.sizeBytes;
      continue;
    }
    if (pending.size >= STATE_BATCH) await judge();
    pending.set(id, { id: asSliceId(id), keys: [object.key], bytes: object.sizeBytes });
  }
  await judge();
  return listed;
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
  await walkUnknownSlices(options.engine, options.store, async (unknown, listed) => {
    report.objectsScanned = listed.objects;
    report.foreignObjects = listed.foreign;
    for (const slice of unknown) {
      report.unknownSlices++;
      report.unknownObjects += slice.keys.length;
      report.unknownBytes += slice.bytes;
      report.sample.push(slice.id);
    }
    report.sample.sort((a, b) => (a as number) - (b as number)).splice(sampleLimit);
    options.onProgress?.({ ...report, sample: [...report.sample] });
  });
  return report;
}

export interface ReclaimOptions {
  engine: Engine;
  store: ObjectStore;
  /** Object deletes in flight at once (default as the GC's). */
  deletesInFlight?: number;
  /** At most this many object deletes per second; 0 or absent: no limit. */
  maxDeletesPerSecond?: number;
  onProgress?: (report: ReclaimReport) => void;
  /** Stops the pass between deletes (what is done stays done). */
  signal?: AbortSignal;
}

export interface ReclaimReport {
  /** The reclaim floor before the pass, and as the pass raised it: unknown slices below go. */
  previousFloor: number;
  floor: number;
  /** Set when a session without a floor stopped the pass (nothing listed or deleted). */
  blockedBy?: string;
  /** Block objects listed under chunks/. */
  objectsScanned: number;
  /** Unknown slices below the floor whose objects were deleted, those objects and their bytes. */
  reclaimedSlices: number;
  reclaimedObjects: number;
  reclaimedBytes: number;
  /** Unknown slices at or above the floor: a live mount may still commit them (left alone). */
  heldSlices: number;
  heldBytes: number;
}

/** Raises the reclaim floor, then deletes the blocks of unknown slices below it (see above). */
export async function reclaimLeakedObjects(options: ReclaimOptions): Promise<ReclaimReport> {
  const raised = await raiseReclaimFloor(options.engine);
  const report: ReclaimReport = {
    previousFloor: raised.previousFloor,
    floor: raised.floor,
    objectsScanned: 0,
    reclaimedSlices: 0,
    reclaimedObjects: 0,
    reclaimedBytes: 0,
    heldSlices: 0,
    heldBytes: 0,
  };
  if (raised.blockedBy !== undefined) {
    report.blockedBy = describeBlockingSession(raised.blockedBy);
    return report;
  }
  const deleter = new PacedDeleter(
    options.store,
    options.deletesInFlight ?? GC_DEFAULTS.deletesInFlight,
    options.maxDeletesPerSecond ?? 0,
    'the next pass deletes what is left',
  );
  await walkUnknownSlices(
    options.engine,
    options.store,
    async (unknown, listed) => {
      report.objectsScanned = listed.objects;
      const keys: string[] = [];
      for (const slice of unknown) {
        if ((slice.id as number) >= report.floor) {
          report.heldSlices++;
          report.heldBytes += slice.bytes;
          continue;
        }
        keys.push(...slice.keys);
        report.reclaimedSlices++;
        report.reclaimedObjects += slice.keys.length;
        report.reclaimedBytes += slice.bytes;
      }
      // The floor was raised durably before this: no commit can bring these slices in any more.
      await deleter.deleteAll(keys, options.signal);
      options.onProgress?.({ ...report });
    },
    options.signal,
  );
  return report;
}
