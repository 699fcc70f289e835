import { blockKeyDirectories } from '../data/index.js';
import { FileObjectStore, fileStoreRoot } from '../object/backends/file.js';

/**
 * Makes a local (file:) object store ready for a volume's blocks: its 4096 fan-out directories
 * are created in batches of 64 with one directory fsync each, where each would otherwise cost
 * the first put into it a mkdir and an fsync of chunks/ on the close path (measured: see
 * bench/RESULTS.md, "Session 6: small files"). Other stores need nothing. Idempotent: on a
 * volume that has them all it is one readdir and one fsync. Making them all takes about a
 * second on a slow disk, so the caller runs it alongside the mount (puts that meet a directory
 * it made wait for its sync) and stops it through `stopped` before tearing the volume down.
 */
export async function prepareObjectStore(storageUrl: string, stopped?: () => boolean): Promise<void> {
  if (!storageUrl.startsWith('file:')) return;
  const store = new FileObjectStore(fileStoreRoot(storageUrl));
  try {
    await store.createDirectories(blockKeyDirectories(), stopped);
  } finally {
    await store.close();
  }
}
