export type { DataPath, DataPathOptions, DataPathStats, FileWriter, ChunkSlicesFn } from './api.js';
