import type { MetaService } from '../meta/index.js';
import type { EngineTaskSpec, StartEngineTask } from '../meta/server/index.js';
import { addGcPass, type GcTotals } from '../metrics/index.js';
import { openObjectStore } from '../object/index.js';
import {
  backgroundGcEnv,
  startBackgroundGc,
  type BackgroundGc,
  type BackgroundGcOptions,
  type GcReport,
} from '../ops/index.js';

/**
 * The background GC of `strata meta serve` on SQLite. The volume has one writer, the server's
 * engine, so the collector runs where that engine lives: as an engine task (src/meta/server/
 * engine-task.ts) on the engine thread, or on the serving thread with --no-engine-thread. Its
 * engine calls queue with the calls the server serves, one batch of 256 rows at a time, and
 * its object deletes are asynchronous I/O, paced as in `strata up` (src/ops/gc-background.ts).
 *
 * Each pass's report crosses back to the serving thread, which logs and counts it (GcTotals,
 * --metrics): that thread owns stderr ordering and the metrics registry.
 */

type GcTiming = Pick<
  BackgroundGcOptions,
  'intervalMs' | 'safetyMarginMs' | 'maxDeletesPerSecond' | 'reclaimIntervalMs'
>;

/** What the collector reports: a log line, or a pass (null: the pass failed). */
export type ServerGcMessage = { log: string } | { pass: GcReport | null };

/**
 * The engine task that collects garbage, reporting into `totals` and `log`. Timing and pace come
 * from the environment (backgroundGcEnv), read here so a bad value stops the server at start.
 */
export function serverGcTask(totals: GcTotals, log: (line: string) => void): EngineTaskSpec {
  const timing: GcTiming = backgroundGcEnv();
  return {
    moduleUrl: new URL('./server-gc.js', import.meta.url).href,
    data: timing,
    onMessage: (message) => {
      const known = message as ServerGcMessage;
      if ('log' in known) log(known.log);
      else addGcPass(totals, known.pass ?? undefined);
    },
  };
}

/** Runs where the engine is (engine-task.ts loads it by URL). */
export const startEngineTask: StartEngineTask = async (
  service: MetaService,
  data: unknown,
  report: (message: unknown) => void,
) => {
  const send = (message: ServerGcMessage): void => report(message);
  const collector = await startServiceGc(service, {
    timing: data as GcTiming,
    log: (line) => send({ log: line }),
    onPass: (pass) => send({ pass: pass ?? null }),
  });
  return { stop: () => collector?.stop() ?? Promise.resolve() };
};

export interface ServiceGcOptions {
  /** The store to collect in; default the one the volume records. */
  storageUrl?: string;
  timing: GcTiming;
  log: (line: string) => void;
  onPass: (report: GcReport | undefined) => void;
}

/**
 * The background GC of the volume whose engine `service` owns (`strata up`, `strata meta serve`
 * on either engine), deleting from its store; stop() also closes that store. Undefined, after
 * one line saying what to do, when the volume records no store to collect in.
 */
export async function startServiceGc(
  service: MetaService,
  options: ServiceGcOptions,
): Promise<BackgroundGc | undefined> {
  const volume = await service.volume();
  const storageUrl = options.storageUrl ?? volume.storageUrl;
  if (storageUrl === '') {
    options.log('gc: the volume records no object store; run "strata gc --storage URL" to collect garbage');
    return undefined;
  }
  const store = await openObjectStore(storageUrl);
  const collector = startBackgroundGc({
    engine: service.engine,
    store,
    volume,
    ...options.timing,
    log: options.log,
    onPass: options.onPass,
  });
  return { runNow: collector.runNow, stop: () => collector.stop().finally(() => store.close()) };
}
