import { blockKeyDirectories } from '../data/index.js';
import { FileObjectStore, fileStoreRoot } from '../object/backends/file.js';

/**
 * Makes a local (file:) object store ready for a volume's blocks: its 4096 fan-out directories
 * are created in one batch with one directory fsync, where each would otherwise cost the first
 * put into it a mkdir and an fsync of chunks/ on the close path (measured: see bench/RESULTS.md,
 * "Session 6: small files"). Other stores need nothing. Idempotent: on a volume that has them
 * all it is one readdir and one fsync, so it runs at every start, and volumes made before it
 * existed get them too.
 */
export async function prepareObjectStore(storageUrl: string): Promise<void> {
  if (!storageUrl.startsWith('file:')) return;
  const store = new FileObjectStore(fileStoreRoot(storageUrl));
  try {
    await store.createDirectories(blockKeyDirectories());
  } finally {
    await store.close();
  }
}
