import { Errno, FsError, type Ino, type SliceId } from '../../common/index.js';
import type {
  AsOf,
  Caller,
  LockOwner,
  LockRange,
  MetaApi,
  SessionInfo,
  SetAttrChanges,
  SliceRef,
  SliceWrite,
  TimeChange,
  Timespec,
} from '../api.js';
import {
  INVALID,
  arrayOf,
  bool,
  bytes,
  count,
  describeValue,
  int,
  oneOf,
  optional,
  positive,
  record,
  string,
  u32,
  type Arg,
} from './validate.js';

const MAX_GROUPS = 65_536;
const MAX_SLICES_PER_CALL = 100_000;

const ino: Arg<Ino> = { expected: 'an inode number (integer >= 1)', parse: (v) => positive.parse(v) as Ino };
const sliceId: Arg<SliceId> = {
  expected: 'a slice id (integer >= 0)',
  parse: (v) => count.parse(v) as SliceId,
};
const caller = record<Caller>('a caller {uid, gid, groups?, pid}', {
  uid: u32,
  gid: u32,
  groups: optional(arrayOf(u32, MAX_GROUPS)),
  pid: u32,
});
const asOf = optional(record<AsOf>('{asOfUs?: microseconds}', { asOfUs: optional(int) }));
const timespec = record<Timespec>('a time {sec, nsec}', {
  sec: int,
  nsec: {
    expected: 'nanoseconds in [0, 1e9)',
    parse: (v) => (u32.parse(v) !== INVALID && (v as number) < 1e9 ? (v as number) : INVALID),
  },
});
const timeChange: Arg<TimeChange> = {
  expected: `"now" or ${timespec.expected}`,
  parse: (v) => (v === 'now' ? 'now' : timespec.parse(v)),
};
const sessionInfo = record<SessionInfo>('session info {hostname, mountpoint, pid, version}', {
  hostname: string,
  mountpoint: string,
  pid: u32,
  version: string,
  processScope: optional(string),
});
const setAttrChanges = record<SetAttrChanges>('attribute changes', {
  mode: optional(u32),
  uid: optional(u32),
  gid: optional(u32),
  sizeBytes: optional(count),
  atime: optional(timeChange),
  mtime: optional(timeChange),
  ctime: optional(timespec),
  killSuid: optional(bool),
});
const sliceRef = record<SliceRef>('a slice reference', {
  id: sliceId,
  sliceSizeBytes: count,
  chunkOffsetBytes: count,
  sliceOffsetBytes: count,
  lengthBytes: count,
  blockSizeBytes: count,
});
const sliceWrite = record<SliceWrite>('a slice write {chunkIndex, slice}', {
  chunkIndex: count,
  slice: sliceRef,
});
const lockOwner = record<LockOwner>('a lock owner {sessionId, owner}', { sessionId: string, owner: string });
const lockRange = record<LockRange>('a lock range {type, start, end, pid}', {
  type: oneOf('read', 'write', 'unlock'),
  start: count,
  end: count,
  pid: u32,
});

interface MethodSpec {
  /** Parameter names (for messages) and parsers, in order. Trailing optional ones may be omitted. */
  params: [name: string, parser: Arg<unknown>][];
  /** Turns the service's result into wire form, for results msgpack cannot carry as they are. */
  encodeResult?: (value: unknown) => unknown;
}

/**
 * `Map<number, SliceRef[]>` travels as `[chunkIndex, slices][]`: msgpack maps come back as objects.
 * Anything else is in wire form already (packed on the engine thread: worker-main.ts).
 */
const mapToPairs = (value: unknown): unknown =>
  value instanceof Map ? [...(value as Map<number, SliceRef[]>)] : value;

/**
 * Every MetaApi method the server answers, with its parameters. `satisfies` keeps this table
 * and the contract in step: adding a method to MetaApi fails the build until it is listed here.
 */
export const META_METHODS = {
  openSession: { params: [['info', sessionInfo]] },
  heartbeat: {
    params: [
      ['sessionId', string],
      ['sliceFloor', optional(sliceId)],
    ],
  },
  closeSession: { params: [['sessionId', string]] },
  lookup: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
      ['asOf', asOf],
    ],
  },
  getattr: {
    params: [
      ['ino', ino],
      ['asOf', asOf],
    ],
  },
  readlink: {
    params: [
      ['ino', ino],
      ['asOf', asOf],
    ],
  },
  readdir: {
    params: [
      ['caller', caller],
      ['dir', ino],
      ['afterCursor', count],
      ['limit', count],
      ['withAttrs', bool],
      ['asOf', asOf],
    ],
  },
  access: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['mask', u32],
    ],
  },
  mknod: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
      ['mode', u32],
      ['rdev', u32],
      ['umask', u32],
    ],
  },
  mkdir: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
      ['mode', u32],
      ['umask', u32],
    ],
  },
  symlink: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
      ['target', string],
    ],
  },
  link: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['newParent', ino],
      ['newName', string],
    ],
  },
  unlink: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
    ],
  },
  rmdir: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
    ],
  },
  rename: {
    params: [
      ['caller', caller],
      ['parent', ino],
      ['name', string],
      ['newParent', ino],
      ['newName', string],
      ['flags', u32],
    ],
  },
  setattr: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['changes', setAttrChanges],
    ],
  },
  tmpfile: {
    params: [
      ['caller', caller],
      ['sessionId', string],
      ['parent', ino],
      ['mode', u32],
      ['umask', u32],
    ],
  },
  linkTmpfile: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['newParent', ino],
      ['newName', string],
    ],
  },
  open: {
    params: [
      ['caller', caller],
      ['sessionId', string],
      ['ino', ino],
      ['flags', u32],
    ],
  },
  release: {
    params: [
      ['sessionId', string],
      ['ino', ino],
    ],
  },
  setxattr: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['name', string],
      ['value', bytes],
      ['flags', u32],
    ],
  },
  getxattr: {
    params: [
      ['ino', ino],
      ['name', string],
      ['asOf', asOf],
    ],
  },
  listxattr: {
    params: [
      ['ino', ino],
      ['asOf', asOf],
    ],
  },
  removexattr: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['name', string],
    ],
  },
  allocateSliceIds: { params: [['count', positive]] },
  readSlices: {
    params: [
      ['ino', ino],
      ['firstChunk', count],
      ['lastChunk', count],
      ['asOf', asOf],
    ],
    encodeResult: mapToPairs,
  },
  commitWrites: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['writes', arrayOf(sliceWrite, MAX_SLICES_PER_CALL)],
      ['minSizeBytes', count],
      ['mtime', timespec],
    ],
  },
  fallocate: {
    params: [
      ['caller', caller],
      ['ino', ino],
      ['mode', u32],
      ['offset', count],
      ['length', count],
    ],
  },
  copyFileRange: {
    params: [
      ['caller', caller],
      ['srcIno', ino],
      ['srcOffset', count],
      ['dstIno', ino],
      ['dstOffset', count],
      ['length', count],
    ],
  },
  replaceChunkSlices: {
    params: [
      ['ino', ino],
      ['chunkIndex', count],
      ['expectedIds', arrayOf(sliceId, MAX_SLICES_PER_CALL)],
      ['merged', arrayOf(sliceRef, MAX_SLICES_PER_CALL)],
    ],
  },
  getlk: {
    params: [
      ['ino', ino],
      ['owner', lockOwner],
      ['lock', lockRange],
    ],
  },
  setlk: {
    params: [
      ['ino', ino],
      ['owner', lockOwner],
      ['lock', lockRange],
      ['isFlock', bool],
    ],
  },
  statfs: { params: [] },
  volume: { params: [] },
  sync: { params: [] },
} satisfies Record<keyof MetaApi, MethodSpec>;

export type MetaMethod = keyof typeof META_METHODS;
const methodTable = new Map<string, MethodSpec>(Object.entries(META_METHODS) as [string, MethodSpec][]);
/** The methods in a fixed order: a method's index here is its series in the server's metrics. */
export const META_METHOD_NAMES: readonly string[] = [...methodTable.keys()];
const specsByIndex: readonly MethodSpec[] = [...methodTable.values()];

/** `method`'s result as the wire carries it (the same value unless msgpack cannot carry it as it is). */
export function wireResultOf(method: string, value: unknown): unknown {
  const encodeResult = methodTable.get(method)?.encodeResult;
  return encodeResult ? encodeResult(value) : value;
}

/**
 * Validates a call and runs it on `service`; every wrong input is an EINVAL/ENOSYS naming what was wrong.
 * `methodIndex`, when the RPC layer already numbered the method (its index in META_METHOD_NAMES),
 * spares looking the name up again.
 */
export function dispatchMetaCall(
  service: MetaApi,
  method: string,
  args: unknown[],
  methodIndex = -1,
): Promise<unknown> {
  const spec =
    methodIndex >= 0 && methodIndex < specsByIndex.length
      ? specsByIndex[methodIndex]
      : methodTable.get(method);
  if (!spec) {
    throw new FsError(
      Errno.ENOSYS,
      `unknown metadata method "${method}" (is the client newer than the server?)`,
    );
  }
  const { params } = spec;
  if (args.length > params.length) {
    throw new FsError(Errno.EINVAL, `${method} takes at most ${params.length} arguments, got ${args.length}`);
  }
  const parsed: unknown[] = new Array(params.length);
  for (let i = 0; i < params.length; i++) {
    const [name, parser] = params[i];
    const value = parser.parse(args[i]);
    if (value === INVALID) {
      throw new FsError(
        Errno.EINVAL,
        `${method}: argument ${i + 1} (${name}) must be ${parser.expected}, got ${describeValue(args[i])}`,
      );
    }
    parsed[i] = value;
  }
  const fn = service[method as MetaMethod] as (...callArgs: unknown[]) => Promise<unknown>;
  const result = fn.apply(service, parsed);
  const { encodeResult } = spec;
  return encodeResult ? result.then(encodeResult) : result;
}
