import type { SliceId } from '../common/index.js';
import { blockKey } from '../data/index.js';
import type { DeletedSliceKey, DeletedSliceRow, Engine, SliceGcState } from '../meta/index.js';
import type { ObjectStore } from '../object/index.js';

/**
 * Object garbage collection: gives back the store space of slices no retained version of the
 * volume refers to.
 *
 * When the last current reference to a slice goes (unlink, truncate, overwrite, punch hole,
 * compaction), the metadata engine logs the slice in `deleted_slice` with the commit instant.
 * History still refers to it: an as-of read may ask for any instant of the retention window,
 * and at instants before the deletion the slice is part of the file. So a slice's objects may
 * go only once its deletion is older than the window, plus a safety margin for clocks of
 * other servers and for reads in flight from slice lists other mounts still hold.
 *
 * Per logged row, decided in ONE engine read with the slice's current state:
 * - referenced again now (refs > 0): the row is stale; it is forgotten and no object is touched.
 *   `strata restore` (ops/restore.ts) re-references slices from history; it can only
 *   pick up slices live at an instant inside the window: never one whose deletion is older.
 * - logged again later (a newer row exists): this row is forgotten; the newer one decides.
 * - otherwise: every block object of the slice is deleted, THEN the row is forgotten. A crash
 *   in between leaves the row, and the next pass deletes again (a missing object is fine).
 *
 * Block keys are computed from the slice size and the volume's block size, which is fixed at
 * format time (every slice of a volume uses it). Keys carry the slice id, so a wrong block
 * size could only miss objects (leak them), never delete another slice's.
 */

export const GC_DEFAULTS = {
  /** Beyond the retention window: clock skew between servers, reads in flight from known slices. */
  safetyMarginMs: 60_000,
  /** Deleted-slice rows decided per engine read (and forgotten per engine write). */
  batchSlices: 256,
  /** Object deletes in flight at once. */
  deletesInFlight: 8,
  /** Dry runs read the whole log at once (they forget nothing, so they cannot page by forgetting). */
  dryRunMaxSlices: 10_000_000,
} as const;

export interface GcOptions {
  engine: Engine;
  store: ObjectStore;
  /** The volume's history retention (VolumeSettings.historyRetentionMs). */
  historyRetentionMs: number;
  /** The volume's block size (VolumeSettings.blockSizeBytes). */
  blockSizeBytes: number;
  safetyMarginMs?: number;
  /** Count what would go; delete and forget nothing. */
  dryRun?: boolean;
  batchSlices?: number;
  deletesInFlight?: number;
  /** At most this many object deletes per second (background passes); 0 or absent: no limit. */
  maxDeletesPerSecond?: number;
  /** The clock (µs since the epoch); default the system clock. */
  nowUs?: () => number;
  /** Called after each batch with the totals so far. */
  onProgress?: (report: GcReport) => void;
  /** Stops the pass between batches (what is done stays done). */
  signal?: AbortSignal;
}

export interface GcReport {
  dryRun: boolean;
  /** Slices deleted at or before this instant (µs) were eligible. */
  cutoffUs: number;
  /** Slices whose objects were deleted (or would be). */
  slices: number;
  /** Object deletes issued (or that would be), and the bytes they held. */
  objects: number;
  bytes: number;
  /** Log rows forgotten without touching objects: the slice is referenced again or was logged again later. */
  staleRows: number;
}

type Decision = 'delete' | 'stale';

/** The rule above, for one row and its slice's state read in the same engine read. */
export function decide(row: DeletedSliceRow, state: SliceGcState | undefined): Decision {
  if (state === undefined) throw new Error(`the metadata engine returned no state for slice ${row.id}`);
  if (state.refs > 0) return 'stale';
  if (state.lastDeletedUs !== undefined && state.lastDeletedUs > row.deletedUs) return 'stale';
  return 'delete';
}

/** The object keys of a slice of `sliceSizeBytes`: full blocks, the last one possibly short. */
export function sliceBlockKeys(id: SliceId, sliceSizeBytes: number, blockSizeBytes: number): string[] {
  const keys: string[] = [];
  for (let start = 0, blockIndex = 0; start < sliceSizeBytes; start += blockSizeBytes, blockIndex++) {
    keys.push(
      blockKey({
        sliceId: id,
        blockIndex,
        blockLengthBytes: Math.min(blockSizeBytes, sliceSizeBytes - start),
      }),
    );
  }
  return keys;
}

const systemNowUs = (): number => Math.floor((performance.timeOrigin + performance.now()) * 1000);

/** One pass over the deleted slice log: deletes what left the retention window. */
export async function collectGarbage(options: GcOptions): Promise<GcReport> {
  const { engine, store } = options;
  const marginMs = options.safetyMarginMs ?? GC_DEFAULTS.safetyMarginMs;
  const batch = options.dryRun
    ? GC_DEFAULTS.dryRunMaxSlices
    : (options.batchSlices ?? GC_DEFAULTS.batchSlices);
  if (!(options.blockSizeBytes > 0)) throw new Error(`block size ${options.blockSizeBytes} must be positive`);
  const nowUs = (options.nowUs ?? systemNowUs)();
  const report: GcReport = {
    dryRun: options.dryRun === true,
    cutoffUs: nowUs - (options.historyRetentionMs + marginMs) * 1000,
    slices: 0,
    objects: 0,
    bytes: 0,
    staleRows: 0,
  };
  const deleter = new PacedDeleter(
    store,
    options.deletesInFlight ?? GC_DEFAULTS.deletesInFlight,
    options.maxDeletesPerSecond ?? 0,
  );
  for (;;) {
    if (options.signal?.aborted) break;
    const decided = await engine.read(async (tx) => {
      const rows = await tx.listDeletedSlices(report.cutoffUs, batch);
      const ids = [...new Set(rows.map((r) => r.id))];
      const states = new Map((await tx.getSliceStates(ids)).map((s) => [s.id, s]));
      return rows.map((row) => ({ row, decision: decide(row, states.get(row.id)) }));
    });
    if (decided.length === 0) break;
    const forget: DeletedSliceKey[] = [];
    const keys: string[] = [];
    for (const { row, decision } of decided) {
      forget.push({ id: row.id, deletedUs: row.deletedUs });
      if (decision === 'stale') {
        report.staleRows++;
        continue;
      }
      const sliceKeys = sliceBlockKeys(row.id, row.sliceSizeBytes, options.blockSizeBytes);
      keys.push(...sliceKeys);
      report.slices++;
      report.objects += sliceKeys.length;
      report.bytes += row.sliceSizeBytes;
    }
    if (!options.dryRun) {
      // Objects first, then the rows: a failure, a crash or a stop here leaves rows to retry.
      if (!(await deleter.deleteAll(keys, options.signal))) break;
      await engine.write((tx) => tx.forgetDeletedSlices(forget));
    }
    options.onProgress?.({ ...report });
    if (options.dryRun || decided.length < batch) break;
  }
  return report;
}

/** Deletes keys with at most `inFlight` requests at once and at most `perSecond` starts a second. */
export class PacedDeleter {
  private nextStartMs = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly inFlight: number,
    private readonly perSecond: number,
    /** What happens to what a failure leaves undeleted, for its message. */
    private readonly afterFailure = 'the slices stay in the deleted slice log and the next pass tries again',
  ) {}

  /** False when `signal` stopped it part way (a stop must not wait for a whole batch). */
  async deleteAll(keys: readonly string[], signal: AbortSignal | undefined): Promise<boolean> {
    let next = 0;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (next < keys.length && failure === undefined && signal?.aborted !== true) {
        const key = keys[next++];
        await this.pace();
        try {
          await this.store.delete(key);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.inFlight, keys.length) }, worker));
    if (failure !== undefined) {
      const reason = failure instanceof Error ? failure.message : String(failure);
      throw new Error(
        `deleting objects in ${this.store.description} failed (${reason}); ${this.afterFailure}`,
        { cause: failure },
      );
    }
    return next >= keys.length && signal?.aborted !== true;
  }

  private async pace(): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = performance.now();
    const start = Math.max(now, this.nextStartMs);
    this.nextStartMs = start + 1000 / this.perSecond;
    if (start > now) await new Promise((resolve) => setTimeout(resolve, start - now));
  }
}
