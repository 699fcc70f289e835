import { fsError } from '../../common/index.js';
import type { MetaApi, VolumeSettings } from '../api.js';
import { openEngineReader } from '../engine-registry.js';
import { systemClock, type Engine } from '../engine.js';
import { MetaService } from '../service.js';
import { META_METHODS } from './methods.js';

/**
 * Answered on the serving thread: reads of a few rows, microseconds of SQLite each. readdir
 * stays on the engine thread (milliseconds for 1,000 entries would show in the serving
 * thread's event-loop delay).
 */
const LOCAL_METHODS = new Set<string>([
  'getattr',
  'lookup',
  'readlink',
  'access',
  'getxattr',
  'listxattr',
  'readSlices',
  'getlk',
  'statfs',
  'volume',
]);

/**
 * Changes made without a call (session expiry on the engine thread) reach local reads at most
 * this late; every call's own changes are seen at once.
 */
const BACKGROUND_STALENESS_MS = 100;

export interface LocalReads {
  readonly api: MetaApi;
  close(): Promise<void>;
}

/**
 * Serves short reads on this thread through the engine's reader (a second SQLite connection)
 * and passes every other call to `service` (the engine thread). Each passed-on call invalidates
 * the reader's snapshot when it settles, before its reply goes out: every change to the volume
 * arrives through here, so a client always reads back what it changed. A getattr then costs no
 * structured clone and no thread hop each way. Undefined when the engine has no reader
 * (PostgreSQL).
 */
export async function withLocalReads(
  service: MetaApi,
  engineUrl: string,
  settings: VolumeSettings,
): Promise<LocalReads | undefined> {
  const reader = await openEngineReader(engineUrl);
  if (!reader) return undefined;
  const readOnly = (): Promise<never> =>
    Promise.reject(
      fsError.EROFS(`${reader.displayUrl}: the serving thread only reads; changes go to the engine thread`),
    );
  const engine: Engine = {
    displayUrl: reader.displayUrl,
    read: (fn) => reader.read(fn),
    write: readOnly,
    pruneHistory: readOnly,
    wipe: readOnly,
    stats: readOnly,
    close: () => reader.close(),
  };
  const local = new MetaService(engine, settings, { clock: systemClock });
  const invalidate = (): void => reader.invalidate();
  const timer = setInterval(invalidate, BACKGROUND_STALENESS_MS);
  timer.unref();
  const api: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  const target = (on: MetaApi, method: string) =>
    (on as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method].bind(on);
  // Shared by every passed-on call rather than two new closures per call.
  const settledValue = (value: unknown): unknown => {
    invalidate();
    return value;
  };
  const settledError = (error: unknown): never => {
    invalidate();
    throw error;
  };
  for (const method of Object.keys(META_METHODS)) {
    if (LOCAL_METHODS.has(method)) {
      api[method] = target(local, method);
    } else {
      const remote = target(service, method);
      // The read snapshot ends before the change goes to the engine thread as well: one still
      // open when the engine's write transaction begins keeps the WAL from starting over.
      api[method] = (...args) => {
        invalidate();
        return remote(...args).then(settledValue, settledError);
      };
    }
  }
  return {
    api: api as unknown as MetaApi,
    close: async () => {
      clearInterval(timer);
      await reader.close();
    },
  };
}
