import type tls from 'node:tls';
import { Errno, isFsError, type Ino, type SliceId } from '../../common/index.js';
import { RpcClient, type RpcCallStats, type RpcClientOptions, type RpcSecret } from '../../rpc/index.js';
import type {
  AsOf,
  Caller,
  CommittedWrites,
  DirEntry,
  InodeAttr,
  LockOwner,
  LockRange,
  MetaApi,
  NameRemoval,
  SessionInfo,
  SetAttrChanges,
  SliceRef,
  SliceWrite,
  StatFsInfo,
  Timespec,
  VolumeSettings,
} from '../api.js';
import { INVALIDATION_TOPIC, decodeInvalidation, type MetaInvalidation } from '../invalidation.js';

export type { MetaInvalidation };

export interface MetaClientOptions {
  /**
   * The metadata server: `HOST:PORT` or a Unix socket path; or several servers of the volume as
   * a comma-separated list, used one at a time: when the current one goes away, calls in flight
   * move to the next one (see docs/rpc.md, failover).
   */
  address: string;
  /** The volume's secret (proved to the server, never sent). */
  secret: RpcSecret;
  /** TLS settings for a TLS server (at least `ca` for a self-signed certificate). */
  tls?: tls.ConnectionOptions;
  /** Deadline of each call, retries included (default 30 s). */
  timeoutMs?: number;
  /** Pipelined connections to keep (default 1). */
  connections?: number;
  /** Connection attempts in a row before calls fail (default 5). */
  maxAttempts?: number;
  /** Keep trying an unreachable server at least this long before calls fail (RpcClientOptions.retryForMs). */
  retryForMs?: number;
  connectTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  maxInFlightPerConnection?: number;
  /** Shown in the client's id on the server (e.g. host name); a random part is always added. */
  clientName?: string;
  /**
   * Ask the server for cache invalidations (default false): a mount does, to keep its kernel's
   * caches coherent (onInvalidation); tools and benchmarks need not cost the server pushes.
   */
  invalidations?: boolean;
  /** Time each call by method and count its errors by errno (RpcClientOptions.stats), for metrics. */
  stats?: RpcCallStats;
}

/** MetaApi over the wire, plus what a network client needs besides. */
export interface MetaClient extends MetaApi {
  /** Calls `listener` with each invalidation the server pushes (connect with `invalidations: true`). */
  onInvalidation(listener: (invalidation: MetaInvalidation) => void): void;
  readonly address: string;
  /** Calls resent after a lost connection so far. */
  readonly retriedCalls: number;
  /** Times the client moved on to the next server of its list. */
  readonly failovers: number;
  close(): Promise<void>;
}

const READ = { idempotent: true } as const;
const WRITE = { idempotent: false } as const;

/**
 * Connects to a metadata server; resolves once a connection is authenticated, rejects with an
 * FsError saying why not (unreachable after N attempts, wrong secret, version mismatch).
 */
export async function connectMeta(options: MetaClientOptions): Promise<MetaClient> {
  const listeners: ((invalidation: MetaInvalidation) => void)[] = [];
  const emit = (invalidation: MetaInvalidation): void => {
    for (const listener of listeners) listener(invalidation);
  };
  const rpcOptions: RpcClientOptions = {
    ...options,
    serverName: 'metadata server',
    unreachableHint: 'is `strata meta serve` running?',
  };
  if (options.invalidations === true) {
    rpcOptions.onPush = (topic, value) => {
      const invalidation = topic === INVALIDATION_TOPIC ? decodeInvalidation(value) : undefined;
      if (invalidation) emit(invalidation);
    };
    rpcOptions.onPushGap = () => emit({ inos: [], entries: [], all: true });
  }
  const client = new RemoteMeta(new RpcClient(rpcOptions), options.address, listeners);
  try {
    await client.rpc.connect();
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

/**
 * Each method sends its arguments as they are. Reads are marked idempotent (resent freely after
 * a lost connection); every change is numbered, so a resend is applied at most once.
 */
class RemoteMeta implements MetaClient {
  constructor(
    readonly rpc: RpcClient,
    readonly address: string,
    private readonly listeners: ((invalidation: MetaInvalidation) => void)[],
  ) {}

  onInvalidation(listener: (invalidation: MetaInvalidation) => void): void {
    this.listeners.push(listener);
  }

  get retriedCalls(): number {
    return this.rpc.retriedCalls;
  }

  get failovers(): number {
    return this.rpc.failovers;
  }

  close(): Promise<void> {
    return this.rpc.close();
  }

  private read<T>(method: keyof MetaApi, args: unknown[]): Promise<T> {
    return this.rpc.call(method, trimUndefined(args), READ) as Promise<T>;
  }

  private write<T>(method: keyof MetaApi, args: unknown[]): Promise<T> {
    return this.rpc.call(method, trimUndefined(args), WRITE) as Promise<T>;
  }

  openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }> {
    return this.write('openSession', [info]);
  }
  /** False once a server said it takes no floor (older than floors): send none from then on. */
  private serverTakesFloors = true;

  async heartbeat(sessionId: string, sliceFloor?: SliceId): Promise<void> {
    // Refreshes a timestamp and a floor that only rises: running it twice is harmless.
    if (sliceFloor === undefined || !this.serverTakesFloors) return this.read('heartbeat', [sessionId]);
    try {
      return await this.read('heartbeat', [sessionId, sliceFloor]);
    } catch (error) {
      // A server older than floors refuses the second argument (EINVAL "takes at most 1");
      // the session then keeps no floor, which blocks reclaiming leaked blocks but nothing else.
      if (
        !isFsError(error) ||
        error.errno !== Errno.EINVAL ||
        !/takes at most 1 argument/.test(error.message)
      )
        throw error;
      this.serverTakesFloors = false;
      return this.read('heartbeat', [sessionId]);
    }
  }
  closeSession(sessionId: string): Promise<void> {
    return this.write('closeSession', [sessionId]);
  }
  lookup(caller: Caller, parent: Ino, name: string, asOf?: AsOf): Promise<InodeAttr> {
    return this.read('lookup', [caller, parent, name, asOf]);
  }
  getattr(ino: Ino, asOf?: AsOf): Promise<InodeAttr> {
    return this.read('getattr', [ino, asOf]);
  }
  readlink(ino: Ino, asOf?: AsOf): Promise<string> {
    return this.read('readlink', [ino, asOf]);
  }
  readdir(
    caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
    asOf?: AsOf,
  ): Promise<DirEntry[]> {
    return this.read('readdir', [caller, dir, afterCursor, limit, withAttrs, asOf]);
  }
  access(caller: Caller, ino: Ino, mask: number): Promise<void> {
    return this.read('access', [caller, ino, mask]);
  }
  mknod(
    caller: Caller,
    parent: Ino,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<InodeAttr> {
    return this.write('mknod', [caller, parent, name, mode, rdev, umask]);
  }
  mkdir(caller: Caller, parent: Ino, name: string, mode: number, umask: number): Promise<InodeAttr> {
    return this.write('mkdir', [caller, parent, name, mode, umask]);
  }
  symlink(caller: Caller, parent: Ino, name: string, target: string): Promise<InodeAttr> {
    return this.write('symlink', [caller, parent, name, target]);
  }
  link(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.write('link', [caller, ino, newParent, newName]);
  }
  unlink(caller: Caller, parent: Ino, name: string): Promise<NameRemoval | undefined> {
    return this.write('unlink', [caller, parent, name]);
  }
  rmdir(caller: Caller, parent: Ino, name: string): Promise<NameRemoval | undefined> {
    return this.write('rmdir', [caller, parent, name]);
  }
  rename(
    caller: Caller,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<NameRemoval | undefined> {
    return this.write('rename', [caller, parent, name, newParent, newName, flags]);
  }
  setattr(caller: Caller, ino: Ino, changes: SetAttrChanges): Promise<InodeAttr> {
    return this.write('setattr', [caller, ino, changes]);
  }
  open(caller: Caller, sessionId: string, ino: Ino, flags: number): Promise<InodeAttr> {
    // Counts an open file handle on the server: must not count twice.
    return this.write('open', [caller, sessionId, ino, flags]);
  }
  release(sessionId: string, ino: Ino): Promise<void> {
    return this.write('release', [sessionId, ino]);
  }
  tmpfile(caller: Caller, sessionId: string, parent: Ino, mode: number, umask: number): Promise<InodeAttr> {
    return this.write('tmpfile', [caller, sessionId, parent, mode, umask]);
  }
  linkTmpfile(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.write('linkTmpfile', [caller, ino, newParent, newName]);
  }
  setxattr(caller: Caller, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    return this.write('setxattr', [caller, ino, name, value, flags]);
  }
  getxattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer> {
    return this.read('getxattr', [ino, name, asOf]);
  }
  listxattr(ino: Ino, asOf?: AsOf): Promise<string[]> {
    return this.read('listxattr', [ino, asOf]);
  }
  removexattr(caller: Caller, ino: Ino, name: string): Promise<void> {
    return this.write('removexattr', [caller, ino, name]);
  }
  allocateSliceIds(count: number): Promise<SliceId> {
    return this.write('allocateSliceIds', [count]);
  }
  async readSlices(
    ino: Ino,
    firstChunk: number,
    lastChunk: number,
    asOf?: AsOf,
  ): Promise<Map<number, SliceRef[]>> {
    // The server sends the map as [chunkIndex, slices] pairs (msgpack maps decode as objects).
    const pairs = await this.read<[number, SliceRef[]][]>('readSlices', [ino, firstChunk, lastChunk, asOf]);
    return new Map(pairs);
  }
  commitWrites(
    caller: Caller,
    ino: Ino,
    writes: SliceWrite[],
    minSizeBytes: number,
    mtime: Timespec,
  ): Promise<CommittedWrites> {
    return this.write('commitWrites', [caller, ino, writes, minSizeBytes, mtime]);
  }
  fallocate(caller: Caller, ino: Ino, mode: number, offset: number, length: number): Promise<InodeAttr> {
    return this.write('fallocate', [caller, ino, mode, offset, length]);
  }
  copyFileRange(
    caller: Caller,
    srcIno: Ino,
    srcOffset: number,
    dstIno: Ino,
    dstOffset: number,
    length: number,
  ): Promise<{ copiedBytes: number; attr: InodeAttr }> {
    return this.write('copyFileRange', [caller, srcIno, srcOffset, dstIno, dstOffset, length]);
  }
  replaceChunkSlices(
    ino: Ino,
    chunkIndex: number,
    expectedIds: SliceId[],
    merged: SliceRef[],
  ): Promise<boolean> {
    return this.write('replaceChunkSlices', [ino, chunkIndex, expectedIds, merged]);
  }
  getlk(ino: Ino, owner: LockOwner, lock: LockRange): Promise<LockRange | null> {
    return this.read('getlk', [ino, owner, lock]);
  }
  setlk(ino: Ino, owner: LockOwner, lock: LockRange, isFlock: boolean): Promise<void> {
    return this.write('setlk', [ino, owner, lock, isFlock]);
  }
  statfs(): Promise<StatFsInfo> {
    return this.read('statfs', []);
  }
  volume(): Promise<VolumeSettings> {
    return this.read('volume', []);
  }
  // A barrier changes nothing: resending it after a lost connection is safe.
  sync(): Promise<void> {
    return this.read('sync', []);
  }
}

/** Trailing omitted optional arguments are not sent at all. */
function trimUndefined(args: unknown[]): unknown[] {
  let length = args.length;
  while (length > 0 && args[length - 1] === undefined) length--;
  if (length !== args.length) args.length = length;
  return args;
}
