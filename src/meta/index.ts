export * from './api.js';
export type {
  Clock,
  DentryRow,
  DeletedSliceKey,
  DeletedSliceRow,
  Engine,
  EngineOpener,
  EngineOptions,
  EngineStats,
  InodeRow,
  LockRow,
  ReadTx,
  SessionRow,
  SliceGcState,
  WriteTx,
} from './engine.js';
export { systemClock } from './engine.js';
export { registerEngine, openEngine, engineScheme } from './engine-registry.js';
export { encodeSlices, decodeSlices } from './slice-codec.js';
export { coveredBytes, fileCoveredBytes, alignedBytes, COUNTER_USED_BYTES } from './allocation.js';
export { MetaService, type MetaServiceOptions } from './service.js';
export {
  formatVolume,
  openMetaService,
  DEFAULT_VOLUME_SETTINGS,
  type FormatOptions,
  type FormatSettings,
  type OpenMetaServiceOptions,
} from './volume.js';
export { dumpMeta, loadMeta, type DumpOptions, type DumpProgress } from './dump.js';
export { SQLITE_ENGINE_CACHE_BYTES } from './engines/sqlite/index.js';
export { planMigrations, changeFeedOf, type ChangeFeed, type MetaChange } from './engines/postgres/index.js';
export {
  raiseReclaimFloor,
  describeBlockingSession,
  RECLAIMED_SLICE_HINT,
  type RaiseResult,
} from './reclaim-floor.js';
