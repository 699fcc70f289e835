export { Errno, errnoName, type ErrnoName } from './errno.js';
export { FsError, fsError, isFsError, isOutOfDescriptors, isOutOfSpace, systemErrorCode } from './errors.js';
export { parseSizeBytes, parseDurationMs, formatBytes } from './units.js';
export { DESCRIPTOR_WAIT_MS, openWaitingForDescriptor } from './descriptors.js';
export { processScope } from './process-scope.js';
export { OpenFileCache } from './open-files.js';
export { readIfCached, readRange } from './cached-read.js';
export { loadNativeAddon, nativeAddonPath } from './native-addon.js';
export { type Branded, type Ino, type SliceId, ROOT_INO, asIno, asSliceId } from './types.js';
export type { SliceRef, SliceWrite } from './layout.js';
export { decodeName, encodeName, nameByteLength, writeName } from './names.js';
export { LATENCY_BUCKETS_SECONDS, LatencyHistograms } from './latency.js';
export {
  SERVING_YOUNG_GENERATION_MB,
  runOnServingThread,
  sendToParentProcess,
  takeRelayedEvents,
} from './serving-thread.js';
