import { Worker } from 'node:worker_threads';
import {
  FsError,
  fsError,
  type Ino,
  type SliceId,
  type SliceRef,
  type SliceWrite,
} from '../../common/index.js';
import type {
  AsOf,
  Caller,
  DirEntry,
  InodeAttr,
  LockOwner,
  LockRange,
  SessionInfo,
  SetAttrChanges,
  StatFsInfo,
  Timespec,
  VolumeSettings,
} from '../api.js';
import type { OpenMetaServiceOptions } from '../volume.js';
import {
  asBuffer,
  type CallMessage,
  type RemoteMethod,
  type ReplyMessage,
  type WorkerRemote,
} from './protocol.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The metadata service running in a worker thread: same API, the engine's blocking calls
 * (statements, commits, checkpoints) stay off the caller's event loop. Calls are batched
 * into one message per event-loop turn in each direction. Errors come back as FsError with
 * the same errno and message.
 */
export class MetaWorkerProxy implements WorkerRemote {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private outbox: CallMessage[] = [];
  private flushArmed = false;
  private closed = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (message: ReplyMessage[] | string) => {
      if (typeof message === 'string') return;
      for (const r of message) {
        const p = this.pending.get(r.id);
        if (!p) continue;
        this.pending.delete(r.id);
        if (r.ok) p.resolve(r.value);
        else p.reject(new FsError(r.errno, r.internal ? `metadata worker: ${r.message}` : r.message));
      }
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => this.failAll(new Error(`metadata worker exited with code ${code}`)));
  }

  /** Starts the worker and opens the service in it (same options as openMetaService, minus the clock). */
  static async start(options: Omit<OpenMetaServiceOptions, 'clock'>): Promise<MetaWorkerProxy> {
    const worker = new Worker(new URL('./worker-main.js', import.meta.url), { workerData: options });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (m === 'ready') {
          worker.off('message', onMessage);
          resolve();
        } else if (typeof m === 'object' && m !== null && 'startupError' in m) {
          const [errno, message] = (m as { startupError: [number, string] }).startupError;
          void worker.terminate();
          reject(new FsError(errno, message));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new MetaWorkerProxy(worker);
  }

  private failAll(error: unknown): void {
    this.closed = true;
    const failure = fsError.EIO(`metadata worker stopped: ${String(error)}`, error);
    for (const p of this.pending.values()) p.reject(failure);
    this.pending.clear();
  }

  private call<T>(method: RemoteMethod, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(fsError.EIO('metadata worker is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.outbox.push({ id, method, args });
      if (!this.flushArmed) {
        this.flushArmed = true;
        queueMicrotask(() => {
          this.flushArmed = false;
          const out = this.outbox;
          this.outbox = [];
          this.worker.postMessage(out);
        });
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      const onMessage = (m: unknown) => {
        if (m === 'closed') {
          this.worker.off('message', onMessage);
          resolve();
        }
      };
      this.worker.on('message', onMessage);
      this.worker.postMessage('close');
    });
    this.closed = true;
    await this.worker.terminate();
  }

  openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }> {
    return this.call('openSession', [info]);
  }
  heartbeat(sessionId: string): Promise<void> {
    return this.call('heartbeat', [sessionId]);
  }
  closeSession(sessionId: string): Promise<void> {
    return this.call('closeSession', [sessionId]);
  }
  lookup(caller: Caller, parent: Ino, name: string, asOf?: AsOf): Promise<InodeAttr> {
    return this.call('lookup', [caller, parent, name, asOf]);
  }
  getattr(ino: Ino, asOf?: AsOf): Promise<InodeAttr> {
    return this.call('getattr', [ino, asOf]);
  }
  readlink(ino: Ino, asOf?: AsOf): Promise<string> {
    return this.call('readlink', [ino, asOf]);
  }
  readdir(
    caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
    asOf?: AsOf,
  ): Promise<DirEntry[]> {
    return this.call('readdir', [caller, dir, afterCursor, limit, withAttrs, asOf]);
  }
  access(caller: Caller, ino: Ino, mask: number): Promise<void> {
    return this.call('access', [caller, ino, mask]);
  }
  mknod(
    caller: Caller,
    parent: Ino,
    name: string,
    mode: number,
    rdev: number,
    umask: number,
  ): Promise<InodeAttr> {
    return this.call('mknod', [caller, parent, name, mode, rdev, umask]);
  }
  mkdir(caller: Caller, parent: Ino, name: string, mode: number, umask: number): Promise<InodeAttr> {
    return this.call('mkdir', [caller, parent, name, mode, umask]);
  }
  symlink(caller: Caller, parent: Ino, name: string, target: string): Promise<InodeAttr> {
    return this.call('symlink', [caller, parent, name, target]);
  }
  link(caller: Caller, ino: Ino, newParent: Ino, newName: string): Promise<InodeAttr> {
    return this.call('link', [caller, ino, newParent, newName]);
  }
  unlink(caller: Caller, parent: Ino, name: string): Promise<void> {
    return this.call('unlink', [caller, parent, name]);
  }
  rmdir(caller: Caller, parent: Ino, name: string): Promise<void> {
    return this.call('rmdir', [caller, parent, name]);
  }
  rename(
    caller: Caller,
    parent: Ino,
    name: string,
    newParent: Ino,
    newName: string,
    flags: number,
  ): Promise<void> {
    return this.call('rename', [caller, parent, name, newParent, newName, flags]);
  }
  setattr(caller: Caller, ino: Ino, changes: SetAttrChanges): Promise<InodeAttr> {
    return this.call('setattr', [caller, ino, changes]);
  }
  open(caller: Caller, sessionId: string, ino: Ino, flags: number): Promise<InodeAttr> {
    return this.call('open', [caller, sessionId, ino, flags]);
  }
  release(sessionId: string, ino: Ino): Promise<void> {
    return this.call('release', [sessionId, ino]);
  }
  setxattr(caller: Caller, ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    return this.call('setxattr', [caller, ino, name, value, flags]);
  }
  async getxattr(ino: Ino, name: string, asOf?: AsOf): Promise<Buffer> {
    return asBuffer(await this.call('getxattr', [ino, name, asOf])) as Buffer;
  }
  listxattr(ino: Ino, asOf?: AsOf): Promise<string[]> {
    return this.call('listxattr', [ino, asOf]);
  }
  removexattr(caller: Caller, ino: Ino, name: string): Promise<void> {
    return this.call('removexattr', [caller, ino, name]);
  }
  allocateSliceIds(count: number): Promise<SliceId> {
    return this.call('allocateSliceIds', [count]);
  }
  readSlices(ino: Ino, firstChunk: number, lastChunk: number, asOf?: AsOf): Promise<Map<number, SliceRef[]>> {
    return this.call('readSlices', [ino, firstChunk, lastChunk, asOf]);
  }
  commitWrites(
    caller: Caller,
    ino: Ino,
    writes: SliceWrite[],
    minSizeBytes: number,
    mtime: Timespec,
  ): Promise<InodeAttr> {
    return this.call('commitWrites', [caller, ino, writes, minSizeBytes, mtime]);
  }
  fallocate(caller: Caller, ino: Ino, mode: number, offset: number, length: number): Promise<InodeAttr> {
    return this.call('fallocate', [caller, ino, mode, offset, length]);
  }
  copyFileRange(
    caller: Caller,
    srcIno: Ino,
    srcOffset: number,
    dstIno: Ino,
    dstOffset: number,
    length: number,
  ): Promise<{ copiedBytes: number; attr: InodeAttr }> {
    return this.call('copyFileRange', [caller, srcIno, srcOffset, dstIno, dstOffset, length]);
  }
  replaceChunkSlices(
    ino: Ino,
    chunkIndex: number,
    expectedIds: SliceId[],
    merged: SliceRef[],
  ): Promise<boolean> {
    return this.call('replaceChunkSlices', [ino, chunkIndex, expectedIds, merged]);
  }
  getlk(ino: Ino, owner: LockOwner, lock: LockRange): Promise<LockRange | null> {
    return this.call('getlk', [ino, owner, lock]);
  }
  setlk(ino: Ino, owner: LockOwner, lock: LockRange, isFlock: boolean): Promise<void> {
    return this.call('setlk', [ino, owner, lock, isFlock]);
  }
  statfs(): Promise<StatFsInfo> {
    return this.call('statfs', []);
  }
  volume(): Promise<VolumeSettings> {
    return this.call('volume', []);
  }
  volumeSecret(): Promise<string> {
    return this.call('volumeSecret', []);
  }
  expireSessions(): Promise<string[]> {
    return this.call('expireSessions', []);
  }
  pruneHistory(): Promise<number> {
    return this.call('pruneHistory', []);
  }
}

/** openMetaService, but the service and its engine run in a worker thread (what the server uses). */
export function openMetaServiceInWorker(
  options: Omit<OpenMetaServiceOptions, 'clock'>,
): Promise<MetaWorkerProxy> {
  return MetaWorkerProxy.start(options);
}
