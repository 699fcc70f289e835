import { Errno, fsError, type Ino } from '../common/index.js';
import { fuse_entry_out, fuse_getxattr_out, fuse_in_header, fuse_open_out } from './abi.js';
import { writeEntryOut, writeNegativeEntryOut, writeOpenOut, writeU32 } from './codec.js';
import type { CreateReply, Entry, NegativeEntry, StatFs } from './filesystem.js';
import type { FuseRequest } from './request.js';
import type { FuseSession } from './session.js';

// Shared by the opcode handler files (ops*.ts).

/** One row of the opcode table. */
export interface Op {
  name: string;
  /** The smallest body (after the in-header) this opcode can arrive with. */
  minBodyBytes: number;
  /** Answers the request. Must read everything it needs from `req.buf` before its first await, unless it sets `req.retainsBuffer`. */
  handle?: (s: FuseSession, req: FuseRequest) => Promise<void>;
  /** For the opcodes the kernel expects no answer to. */
  noReply?: (s: FuseSession, buf: Buffer, length: number, nodeid: Ino) => void;
}

/** Where a request's body starts. */
export const B = fuse_in_header.size;

export const unsupported = (what: string) => fsError.ENOSYS(`${what} is not supported by this file system`);

export function replyEntry(s: FuseSession, req: FuseRequest, entry: Entry | NegativeEntry): void {
  if ('negative' in entry) {
    writeNegativeEntryOut(s.out, 16, entry.entryTimeoutMs);
    s.replyOut(req, fuse_entry_out.size);
    return;
  }
  writeEntryOut(s.out, 16, entry);
  if (s.replyOut(req, fuse_entry_out.size)) s.countLookup(entry.attr.ino);
}

export function replyCreate(s: FuseSession, req: FuseRequest, reply: CreateReply): void {
  writeEntryOut(s.out, 16, reply);
  writeOpenOut(s.out, 16 + fuse_entry_out.size, reply);
  if (s.replyOut(req, fuse_entry_out.size + fuse_open_out.size)) s.countLookup(reply.attr.ino);
}

/** GETXATTR/LISTXATTR: size 0 asks only for the length; a too-small buffer is ERANGE. */
export function replySized(s: FuseSession, req: FuseRequest, value: Buffer, sizeAsked: number): void {
  if (sizeAsked === 0) {
    writeU32(s.out, 16 + fuse_getxattr_out.size_, value.length);
    writeU32(s.out, 20, 0);
    s.replyOut(req, fuse_getxattr_out.size);
  } else if (value.length > sizeAsked) {
    s.replyError(req, Errno.ERANGE);
  } else {
    s.replyData(req, value);
  }
}

/** statfs when the file system has none: what libfuse answers, so df works. */
export const defaultStatFs: StatFs = {
  blocks: 0,
  blocksFree: 0,
  blocksAvailable: 0,
  files: 0,
  filesFree: 0,
  blockSizeBytes: 4096,
  nameMaxBytes: 255,
  fragmentSizeBytes: 4096,
};
