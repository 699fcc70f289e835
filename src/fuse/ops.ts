import { Errno, FsError } from '../common/index.js';
import { fuse_batch_forget_in, fuse_forget_one, fuse_interrupt_in, Opcode } from './abi.js';
import { readU32, readU64 } from './codec.js';
import { handleInit } from './init.js';
import { B, unsupported, type Op } from './op-helpers.js';
import { fileOps } from './ops-files.js';
import { nameOps } from './ops-names.js';

export type { Op } from './op-helpers.js';

/** Session-level opcodes; the rest live in ops-names.ts and ops-files.ts. */
const coreOps: Op[] = [
  { name: 'INIT', minBodyBytes: 8, handle: handleInit },
  {
    name: 'FORGET',
    minBodyBytes: 8,
    noReply: (s, buf, _length, nodeid) => s.forgetLookups(nodeid, readU64(buf, B)),
  },
  {
    name: 'BATCH_FORGET',
    minBodyBytes: fuse_batch_forget_in.size,
    noReply: (s, buf, length) => {
      const count = readU32(buf, B + fuse_batch_forget_in.count);
      let at = B + fuse_batch_forget_in.size;
      for (let i = 0; i < count && at + fuse_forget_one.size <= length; i++, at += fuse_forget_one.size) {
        s.forgetLookups(
          readU64(buf, at + fuse_forget_one.nodeid),
          readU64(buf, at + fuse_forget_one.nlookup),
        );
      }
    },
  },
  {
    name: 'INTERRUPT',
    minBodyBytes: fuse_interrupt_in.size,
    noReply: (s, buf) => s.interruptRequest(readU64(buf, B + fuse_interrupt_in.unique)),
  },
  // The answer to a NOTIFY_RETRIEVE we never send: nothing to do, and no reply is expected.
  { name: 'NOTIFY_REPLY', minBodyBytes: 0, noReply: () => undefined },
  {
    name: 'DESTROY',
    minBodyBytes: 0,
    handle: async (s, req) => {
      await s.destroyFs();
      s.replyOut(req, 0);
    },
  },
  { name: 'BMAP', minBodyBytes: 0, handle: () => Promise.reject(unsupported('bmap')) },
  {
    name: 'IOCTL',
    minBodyBytes: 0,
    handle: () => Promise.reject(new FsError(Errno.ENOTTY, 'ioctl is not supported on this file system')),
  },
  { name: 'POLL', minBodyBytes: 0, handle: () => Promise.reject(unsupported('poll')) },
  { name: 'SYNCFS', minBodyBytes: 0, handle: () => Promise.reject(unsupported('syncfs')) },
];

const opcodeByName = Opcode as Record<string, number>;

/** The dispatch table, indexed by opcode. */
export const opTable: Array<Op | undefined> = [];
for (const op of [...coreOps, ...nameOps, ...fileOps]) {
  const opcode = opcodeByName[op.name];
  if (opcode === undefined) throw new Error(`opcode table: unknown opcode name ${op.name}`);
  if (opTable[opcode]) throw new Error(`opcode table: ${op.name} listed twice`);
  // Every row gets the same shape (all four fields, in one order): the dispatcher's
  // property loads then stay monomorphic instead of going megamorphic across rows.
  opTable[opcode] = {
    name: op.name,
    minBodyBytes: op.minBodyBytes,
    handle: op.handle,
    noReply: op.noReply,
  };
}

/** The opcode's name for log lines. */
export function opcodeName(opcode: number): string {
  return opTable[opcode]?.name ?? `opcode ${opcode}`;
}
