export { Vfs } from './vfs.js';
export type { VfsOptions } from './options.js';
