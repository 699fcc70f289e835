export type {
  DataPath,
  DataPathOptions,
  DataPathStats,
  FileWriter,
  ChunkSlicesFn,
  FillListener,
  FillSink,
  ReadLease,
} from './api.js';
export { createDataPath, DATA_PATH_DEFAULTS } from './data-path.js';
export { blockAt, blockKey, type BlockRef } from './layout.js';
