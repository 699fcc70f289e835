export { fsck, type FsckOptions, type FsckReport, type FsckProblem, type FsckCode } from './fsck.js';
export { collectGarbage, decide, sliceBlockKeys, GC_DEFAULTS, type GcOptions, type GcReport } from './gc.js';
export {
  startBackgroundGc,
  backgroundGcEnv,
  describeGcReport,
  BACKGROUND_GC_DEFAULTS,
  type BackgroundGc,
  type BackgroundGcOptions,
} from './gc-background.js';
export {
  scanLeakedObjects,
  reclaimLeakedObjects,
  type LeakScanOptions,
  type LeakScanReport,
  type ReclaimOptions,
  type ReclaimReport,
} from './gc-scan.js';
export { restore, type RestoreOptions, type RestoreReport } from './restore.js';
