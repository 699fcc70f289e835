import { fsError, type Ino, type SliceId, type SliceRef } from '../common/index.js';
import type {
  AsOf,
  Caller,
  DirEntry,
  InodeAttr,
  LockRange,
  MetaApi,
  SessionInfo,
  StatFsInfo,
  VolumeSettings,
} from '../meta/api.js';

/**
 * The volume as it was at one instant of its history, read-only: every namespace and data-map
 * read asks the metadata service "as of" that instant, every change fails with EROFS. A mount
 * over it shows a past state that cannot change under it; its blocks are immutable objects,
 * so caches need no invalidation either. The instant must stay inside the volume's history
 * window: once it leaves it, reads fail with the service's "outside the history window" error.
 */
export class PastMeta implements MetaApi {
  private readonly asOf: AsOf;

  constructor(
    private readonly meta: MetaApi,
    readonly asOfUs: number,
  ) {
    this.asOf = { asOfUs };
  }

  // Sessions stay real: `strata status` lists the mount, locks taken read-only work.
  openSession(info: SessionInfo): Promise<{ sessionId: string; volume: VolumeSettings }> {
    return this.meta.openSession(info);
  }
  heartbeat(sessionId: string, sliceFloor?: SliceId): Promise<void> {
    return this.meta.heartbeat(sessionId, sliceFloor);
  }
  closeSession(sessionId: string): Promise<void> {
    return this.meta.closeSession(sessionId);
  }

  lookup(caller: Caller, parent: Ino, name: string): Promise<InodeAttr> {
    return this.meta.lookup(caller, parent, name, this.asOf);
  }
  getattr(ino: Ino): Promise<InodeAttr> {
    return this.meta.getattr(ino, this.asOf);
  }
  readlink(ino: Ino): Promise<string> {
    return this.meta.readlink(ino, this.asOf);
  }
  readdir(
    caller: Caller,
    dir: Ino,
    afterCursor: number,
    limit: number,
    withAttrs: boolean,
  ): Promise<DirEntry[]> {
    return this.meta.readdir(caller, dir, afterCursor, limit, withAttrs, this.asOf);
  }
  /**
   * Mounts use default_permissions, so the kernel checks modes itself and sends ACCESS only
   * for access(2) of an existence; W_OK is refused as on any read-only file system.
   */
  async access(_caller: Caller, ino: Ino, mask: number): Promise<void> {
    if (mask & 2) throw this.readOnly('access(W_OK)');
    await this.meta.getattr(ino, this.asOf);
  }
  getxattr(ino: Ino, name: string): Promise<Buffer> {
    return this.meta.getxattr(ino, name, this.asOf);
  }
  listxattr(ino: Ino): Promise<string[]> {
    return this.meta.listxattr(ino, this.asOf);
  }
  readSlices(ino: Ino, firstChunk: number, lastChunk: number): Promise<Map<number, SliceRef[]>> {
    return this.meta.readSlices(ino, firstChunk, lastChunk, this.asOf);
  }

  /** An open for reading: the file as it was (the kernel refuses write opens on a read-only mount). */
  async open(_caller: Caller, _sessionId: string, ino: Ino, flags: number): Promise<InodeAttr> {
    if ((flags & 3) !== 0) throw this.readOnly('open for writing');
    return this.meta.getattr(ino, this.asOf);
  }
  async release(): Promise<void> {
    // Nothing was registered by open: a past state has no unlinked-while-open files to keep.
  }

  /**
   * Nothing can change the past, so locks guard nothing here; asking the service would lock
   * the live file of the same inode number instead. Granted at once (SQLite and others take
   * read locks even on read-only files).
   */
  async getlk(): Promise<LockRange | null> {
    return null;
  }
  async setlk(): Promise<void> {
    // Granted: see getlk.
  }

  statfs(): Promise<StatFsInfo> {
    return this.meta.statfs();
  }
  volume(): Promise<VolumeSettings> {
    return this.meta.volume();
  }
  async sync(): Promise<void> {
    // Nothing is ever written through this view.
  }

  mknod(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('mknod'));
  }
  mkdir(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('mkdir'));
  }
  symlink(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('symlink'));
  }
  link(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('link'));
  }
  unlink(): Promise<never> {
    return Promise.reject(this.readOnly('unlink'));
  }
  rmdir(): Promise<never> {
    return Promise.reject(this.readOnly('rmdir'));
  }
  rename(): Promise<never> {
    return Promise.reject(this.readOnly('rename'));
  }
  setattr(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('setattr'));
  }
  tmpfile(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('O_TMPFILE'));
  }
  linkTmpfile(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('linkat'));
  }
  setxattr(): Promise<void> {
    return Promise.reject(this.readOnly('setxattr'));
  }
  removexattr(): Promise<void> {
    return Promise.reject(this.readOnly('removexattr'));
  }
  allocateSliceIds(): Promise<SliceId> {
    return Promise.reject(this.readOnly('write'));
  }
  commitWrites(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('write'));
  }
  fallocate(): Promise<InodeAttr> {
    return Promise.reject(this.readOnly('fallocate'));
  }
  copyFileRange(): Promise<{ copiedBytes: number; attr: InodeAttr }> {
    return Promise.reject(this.readOnly('copy_file_range into it'));
  }
  replaceChunkSlices(): Promise<boolean> {
    // Compaction never rewrites the past; "not replaced" is the answer it copes with.
    return Promise.resolve(false);
  }

  private readOnly(what: string): Error {
    return fsError.EROFS(
      `${what}: this mount shows the volume as of ${new Date(this.asOfUs / 1000).toISOString()}, read-only; ` +
        'make changes through a mount of the current state',
    );
  }
}
