import { formatBytes, parseDurationMs } from '../common/index.js';
import type { Engine, VolumeSettings } from '../meta/index.js';
import type { ObjectStore } from '../object/index.js';
import { GC_DEFAULTS, collectGarbage, type GcReport } from './gc.js';
import { reclaimLeakedObjects } from './gc-scan.js';

/**
 * The GC in the background of the process that owns a volume's metadata engine (`strata up`;
 * `strata meta serve`, on SQLite as a task on its engine thread: src/volume/server-gc.ts).
 * It runs there, and not in the mounts, because its writes must go through the one engine
 * that owns the database (a second SQLite engine would hand out directory-entry cursors twice
 * and keep caches the owner never invalidates) and because one owner needs no claim to keep
 * two collectors off the same rows.
 *
 * A pass runs every `intervalMs`; it deletes at most `maxDeletesPerSecond` objects a second
 * with a few in flight, so foreground reads and writes to the store keep their share. Every
 * `reclaimIntervalMs` (default a day: it lists the whole store, which costs on S3) a pass also
 * reclaims leaked blocks (gc-scan.ts), at the same pace; a session without a slice floor makes
 * it wait, in one log line naming the session.
 */

export const BACKGROUND_GC_DEFAULTS = {
  intervalMs: 60_000,
  /**
   * A delete is an unlink on a file store and a small request on S3, far cheaper than the put
   * that made the object: 100/s keeps a small share of either, and still frees a volume of
   * small files at 360,000 objects an hour (10/s took a day for a million deleted files).
   */
  maxDeletesPerSecond: 100,
  deletesInFlight: 4,
  reclaimIntervalMs: 24 * 3_600_000,
} as const;

export interface BackgroundGcOptions {
  engine: Engine;
  store: ObjectStore;
  volume: Pick<VolumeSettings, 'historyRetentionMs' | 'blockSizeBytes'>;
  intervalMs?: number;
  /** How often leaked blocks are reclaimed too; 0 never. */
  reclaimIntervalMs?: number;
  safetyMarginMs?: number;
  maxDeletesPerSecond?: number;
  /** One line per pass that deleted or dropped something, and per failed pass. */
  log: (message: string) => void;
  /** Hears every pass the timer or runNow ran: its report, or undefined when it failed (metrics). */
  onPass?: (report: GcReport | undefined) => void;
}

export interface BackgroundGc {
  /** Runs a pass now (after the one in progress, if any) and returns its report. */
  runNow(): Promise<GcReport>;
  /** Stops the timer, cuts a running pass short between batches and waits for it. */
  stop(): Promise<void>;
}

/**
 * Overrides of the background GC's timing and pace from the environment (STRATA_GC_INTERVAL,
 * STRATA_GC_SAFETY_MARGIN, STRATA_GC_RECLAIM_INTERVAL, e.g. "10s", "0s" for no reclaiming;
 * STRATA_GC_RATE, deletes a second), for tests and operators who cannot wait a minute or want
 * another share of the store.
 */
export function backgroundGcEnv(
  env: NodeJS.ProcessEnv = process.env,
): Pick<BackgroundGcOptions, 'intervalMs' | 'safetyMarginMs' | 'maxDeletesPerSecond' | 'reclaimIntervalMs'> {
  const given = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const duration = (name: string): number | undefined => {
    const text = given(name);
    return text === undefined ? undefined : parseDurationMs(text, name);
  };
  const rateText = given('STRATA_GC_RATE');
  if (rateText !== undefined && !/^\s*[1-9]\d*\s*$/.test(rateText)) {
    throw new Error(`invalid STRATA_GC_RATE "${rateText}": use a whole number of deletes a second, e.g. 100`);
  }
  return {
    intervalMs: duration('STRATA_GC_INTERVAL'),
    safetyMarginMs: duration('STRATA_GC_SAFETY_MARGIN'),
    reclaimIntervalMs: duration('STRATA_GC_RECLAIM_INTERVAL'),
    maxDeletesPerSecond: rateText === undefined ? undefined : Number(rateText),
  };
}

export function describeGcReport(report: GcReport): string {
  const verb = report.dryRun ? 'would delete' : 'deleted';
  return (
    `${verb} ${report.objects} object(s), ${formatBytes(report.bytes)} of ${report.slices} slice(s)` +
    (report.staleRows > 0 ? `; ${report.staleRows} stale log row(s) dropped` : '')
  );
}

export function startBackgroundGc(options: BackgroundGcOptions): BackgroundGc {
  const intervalMs = options.intervalMs ?? BACKGROUND_GC_DEFAULTS.intervalMs;
  const abort = new AbortController();
  let running: Promise<GcReport> = Promise.resolve(emptyReport());
  let stopped = false;

  const pass = async (): Promise<GcReport> => {
    const started = performance.now();
    try {
      const report = await collectGarbage({
        engine: options.engine,
        store: options.store,
        historyRetentionMs: options.volume.historyRetentionMs,
        blockSizeBytes: options.volume.blockSizeBytes,
        safetyMarginMs: options.safetyMarginMs ?? GC_DEFAULTS.safetyMarginMs,
        maxDeletesPerSecond: options.maxDeletesPerSecond ?? BACKGROUND_GC_DEFAULTS.maxDeletesPerSecond,
        deletesInFlight: BACKGROUND_GC_DEFAULTS.deletesInFlight,
        signal: abort.signal,
      });
      if (report.slices > 0 || report.staleRows > 0) {
        options.log(`gc: ${describeGcReport(report)} in ${Math.round(performance.now() - started)} ms`);
      }
      options.onPass?.(report);
      return report;
    } catch (error) {
      if (!stopped) {
        options.onPass?.(undefined);
        options.log(`gc: pass failed, retrying in ${intervalMs} ms: ${(error as Error).message}`);
      }
      throw error;
    }
  };
  const runNow = (): Promise<GcReport> => {
    running = running.catch(() => undefined).then(pass);
    return running;
  };
  const timer = setInterval(() => {
    runNow().catch(() => undefined); // logged in pass
  }, intervalMs);
  timer.unref();
  const reclaimIntervalMs = options.reclaimIntervalMs ?? BACKGROUND_GC_DEFAULTS.reclaimIntervalMs;
  const reclaim = async (): Promise<void> => {
    const started = performance.now();
    try {
      const report = await reclaimLeakedObjects({
        engine: options.engine,
        store: options.store,
        maxDeletesPerSecond: options.maxDeletesPerSecond ?? BACKGROUND_GC_DEFAULTS.maxDeletesPerSecond,
        deletesInFlight: BACKGROUND_GC_DEFAULTS.deletesInFlight,
        signal: abort.signal,
      });
      if (report.blockedBy !== undefined) {
        options.log(`gc: leaked blocks not reclaimed: ${report.blockedBy}`);
      } else if (report.reclaimedObjects > 0) {
        options.log(
          `gc: reclaimed ${report.reclaimedObjects} leaked object(s), ${formatBytes(report.reclaimedBytes)} of ` +
            `${report.reclaimedSlices} slice(s) below slice ${report.floor} in ${Math.round(performance.now() - started)} ms`,
        );
      }
    } catch (error) {
      if (!stopped) options.log(`gc: reclaiming leaked blocks failed: ${(error as Error).message}`);
    }
  };
  // Queued behind (and before) the regular passes: one pass at a time on the engine and store.
  const reclaimTimer =
    reclaimIntervalMs > 0
      ? setInterval(() => {
          running = running
            .catch(() => undefined)
            .then(reclaim)
            .then(() => emptyReport());
        }, reclaimIntervalMs)
      : undefined;
  reclaimTimer?.unref();
  return {
    runNow,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (reclaimTimer !== undefined) clearInterval(reclaimTimer);
      abort.abort();
      await running.catch(() => undefined);
    },
  };
}

function emptyReport(): GcReport {
  return { dryRun: false, cutoffUs: 0, slices: 0, objects: 0, bytes: 0, staleRows: 0 };
}
