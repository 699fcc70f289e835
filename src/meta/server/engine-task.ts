import type { MetaService } from '../index.js';

/**
 * Work that must run through the engine a metadata server owns, beside the calls it serves:
 * on the engine thread by default, on the serving thread with `--no-engine-thread`. A SQLite
 * volume takes one writer, so a second engine opened for such work would hand out
 * directory-entry cursors twice and keep caches the owner never invalidates
 * (src/volume/engine-lock.ts).
 *
 * The work is named by a module, not passed as a function, because a function cannot cross to
 * a worker thread; the module also keeps its imports out of this layer (the object GC lives in
 * src/ops, which src/meta must not import).
 */
export interface EngineTaskSpec {
  /** A module (file URL) exporting `startEngineTask: StartEngineTask`. */
  moduleUrl: string;
  /** Handed to `startEngineTask`; must survive structured cloning (it may cross to the worker). */
  data: unknown;
  /** Hears every message the task reports, on the serving thread, in order. */
  onMessage(message: unknown): void;
}

/** The task's handle: stop() cuts its work short and resolves once it no longer uses the engine. */
export interface EngineTask {
  stop(): Promise<void>;
}

/** What the module of an EngineTaskSpec exports. `report` messages must survive structured cloning. */
export type StartEngineTask = (
  service: MetaService,
  data: unknown,
  report: (message: unknown) => void,
) => Promise<EngineTask>;

/** Loads the task's module and starts it beside `service`. */
export async function startEngineTask(
  service: MetaService,
  spec: Pick<EngineTaskSpec, 'moduleUrl' | 'data'>,
  report: (message: unknown) => void,
): Promise<EngineTask> {
  const loaded = (await import(spec.moduleUrl)) as { startEngineTask?: unknown };
  if (typeof loaded.startEngineTask !== 'function') {
    throw new Error(`${spec.moduleUrl} exports no startEngineTask function: it cannot run beside the engine`);
  }
  return (loaded.startEngineTask as StartEngineTask)(service, spec.data, report);
}
