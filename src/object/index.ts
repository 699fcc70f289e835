export { type ObjectStore, type ObjectInfo, ObjectNotFoundError, TransientStoreError } from './store.js';
export { openObjectStore, objectStoreSchemes, type OpenObjectStoreOptions } from './registry.js';
export {
  withRetry,
  isTransient,
  RetryingObjectStore,
  RETRY_DEFAULTS,
  type RetryOptions,
  type RetryStats,
} from './wrappers/retry.js';
export { withFaults, FaultyObjectStore, type FaultOptions, type FaultStats } from './wrappers/faults.js';
export { allocDirectBuffer } from './backends/native-put.js';
