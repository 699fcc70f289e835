import { nameByteLength, writeName } from '../common/index.js';
import { fuse_dirent, fuse_direntplus, fuse_entry_out } from './abi.js';
import { direntAlign, writeEntryOut, writeU64 } from './codec.js';
import type { DirEntryOut } from './filesystem.js';

/**
 * Packs directory entries as `fuse_dirent` (READDIR) or `fuse_direntplus` (READDIRPLUS)
 * records into `out` from `offset`, as many as fit in `capacityBytes`. Returns the bytes
 * used and how many entries were packed; the rest are asked for again by the kernel.
 */
export function packDirents(
  out: Buffer,
  offset: number,
  capacityBytes: number,
  entries: readonly DirEntryOut[],
  plus: boolean,
): [bytes: number, packed: number] {
  const recordHeader = plus ? fuse_direntplus.size : fuse_dirent.size;
  const direntAt = plus ? fuse_direntplus.dirent : 0;
  let used = 0;
  let packed = 0;
  for (const item of entries) {
    const nameBytes = nameByteLength(item.name);
    const recordBytes = direntAlign(recordHeader + nameBytes);
    if (used + recordBytes > capacityBytes) break;
    const at = offset + used;
    if (plus) {
      // No attributes (nodeid 0) for "." and "..": the kernel skips those anyway.
      if (item.entry) writeEntryOut(out, at, item.entry);
      else out.fill(0, at, at + fuse_entry_out.size);
    }
    const dirent = at + direntAt;
    writeU64(out, dirent + fuse_dirent.ino, item.ino);
    writeU64(out, dirent + fuse_dirent.off, item.nextOffset);
    out.writeUInt32LE(nameBytes, dirent + fuse_dirent.namelen);
    out.writeUInt32LE(item.type, dirent + fuse_dirent.type);
    writeName(out, dirent + fuse_dirent.size, item.name);
    // Zero the alignment padding: it reaches the kernel.
    out.fill(0, dirent + fuse_dirent.size + nameBytes, at + recordBytes);
    used += recordBytes;
    packed++;
  }
  return [used, packed];
}
