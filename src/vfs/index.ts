export { Vfs } from './vfs.js';
export type { VfsOptions } from './options.js';
export { Coherence, type Invalidation, type KernelCache } from './coherence.js';
