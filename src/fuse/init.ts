import { constants } from 'node:os';
import { fsError } from '../common/index.js';
import {
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  fuse_in_header,
  fuse_init_in,
  fuse_init_out,
  InitFlag,
} from './abi.js';
import type { InitInfo } from './filesystem.js';
import type { FuseRequest } from './request.js';
import type { FuseSession } from './session.js';

const PAGE_BYTES = 4096;
const MAX_PAGES = 256;
/** What the kernel allows per request when MAX_PAGES is not negotiated (FUSE_DEFAULT_MAX_PAGES_PER_REQ). */
const DEFAULT_MAX_PAGES = 32;

/**
 * The largest READ the kernel can send under the negotiated flags: one request never
 * spans more than max_pages pages (fuse_direct_io and readahead both split by it).
 */
export function maxReadBytesFor(initFlags: number): number {
  return (initFlags & InitFlag.MAX_PAGES ? MAX_PAGES : DEFAULT_MAX_PAGES) * PAGE_BYTES;
}
/** FUSE_OVER_IO_URING (bit 41 of the 64-bit flags): bit 9 of flags2. */
const FLAGS2_OVER_IO_URING = 1 << 9;
/** init_out was 24 bytes before protocol 7.23. */
const COMPAT_22_INIT_OUT_BYTES = 24;

/** The INIT flags we want; only those the kernel offers are set in the reply. */
function wantedFlags(s: FuseSession): number {
  const fs = s.fs;
  let flags =
    InitFlag.ASYNC_READ |
    InitFlag.PARALLEL_DIROPS |
    InitFlag.BIG_WRITES |
    InitFlag.MAX_PAGES |
    InitFlag.ATOMIC_O_TRUNC |
    InitFlag.EXPORT_SUPPORT |
    InitFlag.HANDLE_KILLPRIV_V2 |
    InitFlag.CACHE_SYMLINKS |
    InitFlag.DO_READDIRPLUS |
    InitFlag.READDIRPLUS_AUTO;
  if (s.options.writebackCache) flags |= InitFlag.WRITEBACK_CACHE;
  // Without lock methods leave locking to the kernel (local locks) instead of failing it.
  if (fs.getlk && fs.setlk) flags |= InitFlag.POSIX_LOCKS;
  if (fs.setlk) flags |= InitFlag.FLOCK_LOCKS;
  // With POSIX ACLs the file system applies the umask (ctx.umask), and only when no default
  // ACL applies: without DONT_MASK the kernel masks the mode first, so a default ACL would
  // see bits the umask had removed (mkdir 0755 under umask 077 became 0700 & ACL).
  if ((s.options.posixAcl ?? true) && fs.getxattr && fs.setxattr)
    flags |= InitFlag.POSIX_ACL | InitFlag.DONT_MASK;
  return flags;
}

/** FUSE_INIT: agree on the protocol version, features and sizes; run the file system's init. */
export async function handleInit(s: FuseSession, req: FuseRequest): Promise<void> {
  const buf = req.buf;
  const at = fuse_in_header.size;
  const major = buf.readUInt32LE(at + fuse_init_in.major);
  const minor = buf.readUInt32LE(at + fuse_init_in.minor);
  if (s.initInfo) throw fsError.EIO('second INIT on a session that is already initialised');
  if (major < FUSE_KERNEL_VERSION) {
    s.log.error(`fuse: kernel protocol ${major}.${minor} is too old (need 7.x)`);
    s.replyError(req, constants.errno.EPROTO);
    return;
  }
  const out = s.out;
  if (major > FUSE_KERNEL_VERSION) {
    // A newer major: answer with ours only; the kernel then sends INIT again in 7.x.
    out.fill(0, 16, 16 + fuse_init_out.size);
    out.writeUInt32LE(FUSE_KERNEL_VERSION, 16 + fuse_init_out.major);
    out.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 16 + fuse_init_out.minor);
    s.replyOut(req, 8);
    return;
  }
  const hasBody = req.end - at >= 16;
  const maxReadaheadBytes = hasBody ? buf.readUInt32LE(at + fuse_init_in.max_readahead) : 0;
  const kernelFlags = hasBody ? buf.readUInt32LE(at + fuse_init_in.flags) : 0;
  let flags = wantedFlags(s) & kernelFlags;
  const agreedMinor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
  const maxPages = flags & InitFlag.MAX_PAGES ? MAX_PAGES : DEFAULT_MAX_PAGES;
  const kernelFlags2 =
    kernelFlags & InitFlag.INIT_EXT && req.end - at >= 20 ? buf.readUInt32LE(at + fuse_init_in.flags2) : 0;
  let flags2 = 0;
  if (s.options.ioUring) {
    if (!(kernelFlags2 & FLAGS2_OVER_IO_URING)) {
      s.log.warn(
        'fuse: the kernel did not offer FUSE over io_uring at INIT (fuse module parameter enable_uring is N, or the kernel predates 6.14); serving over /dev/fuse',
      );
    } else if (s.prepareRing(maxPages * PAGE_BYTES)) {
      // (the kernel sizes payload buffers as max(max_write, max_pages pages): the latter here)
      flags |= InitFlag.INIT_EXT;
      flags2 |= FLAGS2_OVER_IO_URING;
    }
  }
  const maxWriteBytes = Math.min(s.maxWriteBytes, maxPages * PAGE_BYTES);
  const info: InitInfo = {
    kernelMajor: major,
    kernelMinor: minor,
    maxWriteBytes,
    maxReadaheadBytes,
    writebackCache: (flags & InitFlag.WRITEBACK_CACHE) !== 0,
    posixAcl: (flags & InitFlag.POSIX_ACL) !== 0,
  };
  await s.fs.init?.(info);

  out.fill(0, 16, 16 + fuse_init_out.size);
  out.writeUInt32LE(FUSE_KERNEL_VERSION, 16 + fuse_init_out.major);
  out.writeUInt32LE(agreedMinor, 16 + fuse_init_out.minor);
  out.writeUInt32LE(maxReadaheadBytes, 16 + fuse_init_out.max_readahead);
  out.writeUInt32LE(flags >>> 0, 16 + fuse_init_out.flags);
  const maxBackground = s.options.maxBackground ?? 64;
  out.writeUInt16LE(maxBackground, 16 + fuse_init_out.max_background);
  out.writeUInt16LE(
    Math.max(1, Math.floor((maxBackground * 3) / 4)),
    16 + fuse_init_out.congestion_threshold,
  );
  out.writeUInt32LE(maxWriteBytes, 16 + fuse_init_out.max_write);
  out.writeUInt32LE(1, 16 + fuse_init_out.time_gran); // nanosecond timestamps
  out.writeUInt16LE(maxPages, 16 + fuse_init_out.max_pages);
  out.writeUInt32LE(flags2 >>> 0, 16 + fuse_init_out.flags2);
  s.completeInit(info, flags);
  const accepted = s.replyOut(req, agreedMinor < 23 ? COMPAT_22_INIT_OUT_BYTES : fuse_init_out.size);
  // The kernel now holds every new request until each CPU queue has a ring entry.
  if (accepted && flags2 & FLAGS2_OVER_IO_URING) s.startRing();
  if (s.options.debug) {
    s.log.debug(
      `fuse: INIT kernel ${major}.${minor}, agreed 7.${agreedMinor}, flags 0x${flags.toString(16)}, max_write ${maxWriteBytes}`,
    );
  }
}
