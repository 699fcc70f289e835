export { Vfs } from './vfs.js';
export type { VfsOptions } from './options.js';
export { Coherence, type Invalidation, type KernelCache } from './coherence.js';
export { PageCache, type PageCacheStats, type PageStore } from './page-cache.js';
export { PastMeta } from './past-meta.js';
export { PushingVfs } from './pushing-vfs.js';
