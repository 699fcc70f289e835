import { constants as fsConstants } from 'node:fs';
import type { Ino } from '../common/index.js';
import type { DataPath } from '../data/index.js';
import type {
  AttrReply,
  CreateReply,
  LentBytes,
  OpenReply,
  RequestContext,
  SetAttrIn,
} from '../fuse/index.js';
import type { MetaApi } from '../meta/api.js';
import type { Coherence, Invalidation } from './coherence.js';
import type { PageCacheOption } from './open-files.js';
import type { VfsOptions } from './options.js';
import { PUSH_WINDOW_BYTES, type PageCache } from './page-cache.js';
import { Vfs } from './vfs.js';

const { O_RDONLY, O_TRUNC } = fsConstants;
/** The access-mode bits of open flags (Linux O_ACCMODE; Node does not export it). */
const O_ACCMODE = 3;

/** Handles this mount must treat specially for the page cache, by fh. */
interface HandleKind {
  ino: Ino;
  /** Opened for writing (or O_TRUNC): pushes of the inode stop until it is released. */
  writes: boolean;
  /** direct_io: the kernel bypasses its page cache for it, so its reads push nothing. */
  direct: boolean;
}

function mayWrite(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
}

/**
 * The VFS with reads pushed into the kernel's page cache (see PageCache for the invariant). It
 * adds to the plain VFS only what that needs: which handles write or bypass the cache, a
 * generation captured when a read starts, and a wait for pushes in flight before answering an
 * open or truncate that changes what the kernel may cache.
 */
export class PushingVfs extends Vfs {
  private readonly kinds = new Map<number, HandleKind>();
  /** READ requests answered (the kernel asked us rather than its page cache), for tests and status. */
  readRequests = 0;

  constructor(
    meta: MetaApi,
    data: DataPath,
    options: VfsOptions,
    private readonly pageCache: PageCache,
  ) {
    // The VFS hands its options to its open files, which attach to the page cache through them.
    const withPageCache: VfsOptions & PageCacheOption = { ...options, pageCache };
    super(meta, data, withPageCache);
  }

  override async open(ctx: RequestContext, ino: Ino, flags: number, killSuidgid = false): Promise<OpenReply> {
    const writes = mayWrite(flags);
    if (writes) this.pageCache.beginWrite(ino);
    const before = this.pageCache.generationOf(ino);
    let reply: OpenReply;
    try {
      reply = await super.open(ctx, ino, flags, killSuidgid);
    } catch (error) {
      if (writes) this.pageCache.endWrite(ino);
      throw error;
    }
    this.noteHandle(reply.fh, { ino, writes, direct: reply.directIo === true });
    // The kernel may write into its cached pages as soon as it has this answer, and an open that
    // found another mount's change drops them: no older push may land after either.
    if (writes || this.pageCache.generationOf(ino) !== before) await this.pageCache.settle(ino);
    return reply;
  }

  override async create(
    ctx: RequestContext,
    parent: Ino,
    name: string,
    mode: number,
    flags: number,
  ): Promise<CreateReply> {
    return this.noteCreated(await super.create(ctx, parent, name, mode, flags), flags);
  }

  override async tmpfile(
    ctx: RequestContext,
    parent: Ino,
    mode: number,
    flags: number,
  ): Promise<CreateReply> {
    return this.noteCreated(await super.tmpfile(ctx, parent, mode, flags), flags);
  }

  /** A new inode: nothing of it was ever pushed, so there is nothing to wait for. */
  private noteCreated(reply: CreateReply, flags: number): CreateReply {
    const ino = reply.attr.ino;
    const writes = mayWrite(flags);
    if (writes) this.pageCache.beginWrite(ino);
    this.noteHandle(reply.fh, { ino, writes, direct: reply.directIo === true });
    return reply;
  }

  private noteHandle(fh: number, kind: HandleKind): void {
    this.kinds.set(fh, kind);
    if (!kind.direct) this.pageCache.bufferedHandle(kind.ino, true);
  }

  override async release(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    flags: number,
    lockOwner: bigint,
    isFlockRelease: boolean,
  ): Promise<void> {
    try {
      await super.release(ctx, ino, fh, flags, lockOwner, isFlockRelease);
    } finally {
      const kind = this.kinds.get(fh);
      this.kinds.delete(fh);
      if (kind?.writes) this.pageCache.endWrite(kind.ino);
      if (kind?.direct === false) this.pageCache.bufferedHandle(kind.ino, false);
    }
  }

  override async setattr(ctx: RequestContext, ino: Ino, changes: SetAttrIn): Promise<AttrReply> {
    if (changes.sizeBytes === undefined) return super.setattr(ctx, ino, changes);
    // A truncate (also by path, with no handle open for writing): the kernel drops its pages
    // past the new size once answered; a push still on its way would bring them back.
    this.pageCache.beginWrite(ino);
    try {
      const reply = await super.setattr(ctx, ino, changes);
      await this.pageCache.settle(ino);
      return reply;
    } finally {
      this.pageCache.endWrite(ino);
    }
  }

  override read(ctx: RequestContext, ino: Ino, fh: number, offset: number, size: number): Promise<Buffer> {
    return this.pushingAround(
      ino,
      fh,
      offset,
      size,
      () => super.read(ctx, ino, fh, offset, size),
      (data) => data,
    );
  }

  override readLent(
    ctx: RequestContext,
    ino: Ino,
    fh: number,
    offset: number,
    size: number,
  ): Promise<LentBytes> {
    return this.pushingAround(
      ino,
      fh,
      offset,
      size,
      () => super.readLent(ctx, ino, fh, offset, size),
      (lent) => lent.data,
    );
  }

  /** A read, and the pushes of its neighbourhood into the page cache it may be worth. */
  private async pushingAround<T>(
    ino: Ino,
    fh: number,
    offset: number,
    size: number,
    read: () => Promise<T>,
    bytesOf: (result: T) => Buffer,
  ): Promise<T> {
    this.readRequests++;
    // Reads of a window or more (the kernel's readahead) and direct_io reads push nothing.
    if (size >= PUSH_WINDOW_BYTES || this.kinds.get(fh)?.direct !== false) return read();
    const generation = this.pageCache.capture(ino);
    const result = await read();
    this.pageCache.afterRead(ino, generation, offset, bytesOf(result).length);
    return result;
  }

  /**
   * The server says other mounts changed these inodes. The generations move at once, not when
   * the queued INVAL_INODE goes: a read from before must not be pushed, and a read after it
   * (behind a lock the other mount released) must find the new data.
   */
  otherMountsChanged(invalidation: Invalidation, kernel: Coherence): void {
    for (const ino of invalidation.inos) this.pageCache.changed(ino);
    if (invalidation.all) this.pageCache.changedAll();
    this.changedElsewhere(invalidation.inos, invalidation.all);
    kernel.apply(invalidation);
  }

  override async forget(ino: Ino): Promise<void> {
    await super.forget(ino);
    this.pageCache.forget(ino);
  }
}
