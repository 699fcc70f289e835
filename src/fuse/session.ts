import { constants } from 'node:os';
import { Errno, fsError, isFsError, type Ino } from '../common/index.js';
import { fuse_in_header, fuse_out_header, Opcode } from './abi.js';
import { readU32, readU64 } from './codec.js';
import { DevTransport, type DevRequestSink } from './dev-transport.js';
import type { FileSystem, InitInfo } from './filesystem.js';
import { maxReadBytesFor } from './init.js';
import { opTable, type Op } from './ops.js';
import { RequestCounts, type OpcodeCounts } from './request-counts.js';
import { FuseRing, possibleCpuCount, type RingSink } from './ring.js';
import { closeDevice, deleteMessage, invalEntryMessage, invalInodeMessage, Notifier } from './notify.js';
import { Replies } from './replies.js';
import { FuseRequest, InFlight } from './request.js';
import {
  checkedPollSpinUs,
  consoleLogger,
  type FuseLogger,
  type SessionHandoff,
  type SessionOptions,
} from './session-options.js';

export type { FuseLogger, SessionHandoff, SessionOptions } from './session-options.js';

const DEFAULT_MAX_WRITE_BYTES = 1024 * 1024;
/** Room for the in-header and the largest in-struct before WRITE data. */
const REQUEST_HEADROOM_BYTES = 4096;
const DEFAULT_RING_QUEUE_DEPTH = 8;
/** The kernel's smallest payload buffer (FUSE_MIN_READ_BUFFER). */
const MIN_RING_PAYLOAD_BYTES = 8192;

/**
 * One FUSE connection: takes requests from its transport (the /dev/fuse read loop in
 * dev-transport.ts, or the io_uring ring in ring.ts), runs each one concurrently through
 * the opcode table, and writes each reply exactly once, back the way its request came.
 * One shared reply buffer: replies are written synchronously, so it is never shared by
 * two at once.
 */
export class FuseSession implements RingSink, DevRequestSink {
  readonly fs: FileSystem;
  readonly options: SessionOptions;
  readonly log: FuseLogger;
  readonly maxWriteBytes: number;
  /** Shared reply buffer: fill from offset 16 (after the out header) and call `replyOut`. */
  readonly out: Buffer;
  /** Resolves with the negotiated parameters once INIT is answered; rejects if the session ends first. */
  readonly ready: Promise<InitInfo>;
  /** Resolves when the session has ended (unmounted, closed or detached). */
  readonly closed: Promise<void>;
  /** The negotiated INIT flags; 0 until INIT. */
  initFlags = 0;
  /** The largest READ a kernel may send under the negotiated flags; larger ones are refused. */
  maxReadBytes = 0;
  initInfo: InitInfo | undefined;
  /** File data bytes READ replies carried and WRITE replies acknowledged (metrics). */
  readBytes = 0;
  writtenBytes = 0;

  private readonly fd: number;
  private readonly dev: DevTransport;
  private readonly replies: Replies;
  private readonly inflight = new InFlight();
  private readonly counts = new RequestCounts();
  /**
   * Kernel lookup count per inode (nlookup); the root is never counted nor forgotten.
   * Boxed, so that counting an inode the kernel already holds is one Map read.
   */
  private readonly lookups = new Map<number, { count: number }>();
  /** The io_uring transport, once INIT negotiated it and the entries were registered. */
  private ring: FuseRing | undefined;
  private state: 'running' | 'draining' | 'closed' = 'running';
  private destroyed = false;
  private resolveReady!: (info: InitInfo) => void;
  private rejectReady!: (error: Error) => void;
  private resolveClosed!: () => void;
  private drained: (() => void) | undefined;
  private signalHandler: (() => void) | undefined;

  constructor(fd: number, fs: FileSystem, options: SessionOptions = {}) {
    this.fd = fd;
    this.fs = fs;
    this.options = options;
    this.log = options.logger ?? consoleLogger;
    const maxWrite = options.maxWriteBytes ?? DEFAULT_MAX_WRITE_BYTES;
    if (!Number.isInteger(maxWrite) || maxWrite < 4096 || maxWrite > DEFAULT_MAX_WRITE_BYTES) {
      throw new Error(
        `maxWriteBytes ${maxWrite} out of range: use 4096..1048576 (the kernel caps writes at 256 pages)`,
      );
    }
    this.maxWriteBytes = maxWrite;
    const bufferSizeBytes = maxWrite + REQUEST_HEADROOM_BYTES;
    this.dev = new DevTransport(fd, bufferSizeBytes, this, checkedPollSpinUs(options.pollSpinUs));
    this.replies = new Replies(
      this.dev,
      this.log,
      bufferSizeBytes,
      () => this.state === 'closed',
      () => this.ring,
    );
    this.out = this.replies.out;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined); // observed through `closed` when nobody awaits it
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const handoff = options.handoff;
    if (handoff) {
      this.initFlags = handoff.initFlags;
      this.maxReadBytes = maxReadBytesFor(handoff.initFlags);
      this.initInfo = handoff.init;
      for (const [ino, count] of handoff.lookupCounts) this.lookups.set(ino, { count });
      this.resolveReady(handoff.init);
    }
  }

  /** Serves an already-open, already-mounted /dev/fuse fd (made non-blocking here). */
  static fromFd(fd: number, fs: FileSystem, options: SessionOptions = {}): FuseSession {
    const session = new FuseSession(fd, fs, options);
    session.start();
    return session;
  }

  get mountpoint(): string | undefined {
    return this.options.mountpoint;
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Starts polling the fd. Only after the mount exists: before it, the device polls as an error. */
  start(): void {
    this.dev.start();
  }

  /** Unmounts (falls back to a lazy unmount when busy) and waits for the session to end. */
  async unmount(): Promise<void> {
    const mountpoint = this.options.mountpoint;
    if (!mountpoint)
      throw new Error('unmount: this session was started without a mountpoint; run umount yourself');
    const { runCommand } = await import('./mount.js');
    // -c: no stat of the mount point first (a GETATTR, slow to answer if the server is gone).
    const plain = await runCommand('umount', ['-c', mountpoint]);
    if (plain.code !== 0) {
      const lazy = await runCommand('umount', ['-c', '-l', mountpoint]);
      if (lazy.code !== 0 && this.state !== 'closed') {
        throw fsError.EIO(
          `umount ${mountpoint} failed: ${plain.stderr.trim()}; umount -l: ${lazy.stderr.trim()}`,
        );
      }
    }
    // After a plain umount the kernel aborts the connection and our next read sees ENODEV.
    // A lazy unmount waits for the last open file; do not wait for that forever.
    const timer = setTimeout(() => this.finish(undefined), 2000);
    await this.closed;
    clearTimeout(timer);
  }

  /** Ends the session without unmounting: callers of the mount then get ENOTCONN until `umount -l`. */
  close(): void {
    this.finish(undefined);
  }

  /**
   * Stops reading, waits for the requests in flight, and hands the still-mounted fd and
   * the kernel's view (INIT result, lookup counts) to a successor (`FuseSession.fromFd`
   * with `handoff`). The fd stays open and the file system is not destroyed.
   */
  async detach(): Promise<SessionHandoff> {
    if (this.state !== 'running' || !this.initInfo)
      throw new Error('detach: session is not running or not initialised');
    if (this.ring)
      throw new Error(
        "detach: the kernel holds this session's io_uring entries, which cannot be handed over; mount without ioUring for in-place upgrades",
      );
    this.state = 'draining';
    this.dev.stop();
    if (this.inflight.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.state = 'closed';
    this.removeSignalHandlers();
    this.resolveClosed();
    return {
      fd: this.fd,
      init: this.initInfo,
      initFlags: this.initFlags,
      lookupCounts: Array.from(this.lookups, ([ino, held]) => [ino, held.count]),
    };
  }

  /** Unmount cleanly when the process gets SIGINT or SIGTERM. */
  unmountOnSignals(): void {
    if (this.signalHandler) return;
    this.signalHandler = () => {
      this.unmount().catch((error: unknown) => this.log.error(`unmount on signal failed: ${String(error)}`));
    };
    process.on('SIGINT', this.signalHandler);
    process.on('SIGTERM', this.signalHandler);
  }

  // ---- notifications (cache coherence), see notify.ts ----

  private notifierCache: Notifier | undefined;

  /** Writes notifications (bounded in the libuv pool) while the session runs. */
  private get notifier(): Notifier {
    return (this.notifierCache ??= new Notifier(this.fd, () => this.state !== 'closed'));
  }

  /** Drops cached data of `ino` in [offset, offset+length) (length 0: to the end); offset -1: attributes only. */
  notifyInvalInode(ino: Ino, offsetBytes = 0, lengthBytes = 0): Promise<void> {
    return this.sendNotify(invalInodeMessage(ino, offsetBytes, lengthBytes), `inval_inode ${ino}`);
  }

  /** Drops the cached name `name` in directory `parent`. */
  notifyInvalEntry(parent: Ino, name: string): Promise<void> {
    return this.sendNotify(invalEntryMessage(parent, name), `inval_entry ${parent}/${name}`);
  }

  /** Tells the kernel `name` in `parent` (inode `child`) was deleted elsewhere. */
  notifyDelete(parent: Ino, child: Ino, name: string): Promise<void> {
    return this.sendNotify(deleteMessage(parent, child, name), `delete ${parent}/${name}`);
  }

  /**
   * Puts `data` into the kernel's page cache of `ino` at `offsetBytes` (NOTIFY_STORE). The caller
   * owns correctness: the bytes must be the file's current content, and must not reach past its
   * size (the kernel grows i_size to their end). ENOENT (the kernel forgot the inode) resolves.
   */
  async notifyStore(ino: Ino, offsetBytes: number, data: Buffer): Promise<void> {
    await this.ready;
    await this.notifier.store(ino, offsetBytes, data);
  }

  private async sendNotify(message: Buffer, what: string): Promise<void> {
    await this.ready;
    await this.notifier.send(message, what);
  }

  // ---- requests (from either transport) ----

  /** DevRequestSink: the /dev/fuse loop reads only while the session runs. */
  get acceptsRequests(): boolean {
    return this.state === 'running';
  }

  /** DevRequestSink: the device ended the connection (ENODEV) or failed. */
  deviceEnded(error: Error | undefined): void {
    this.finish(error);
  }

  /**
   * Decodes one request (as read from the device) and starts its handler; returns true if
   * the handler keeps `buf` until it settles. Public so that other transports and the
   * protocol tests can feed requests; the /dev/fuse loop calls it for every read.
   */
  processRequest(buf: Buffer, length: number, ringEntry = -1): boolean {
    if (length < fuse_in_header.size || readU32(buf, fuse_in_header.len) !== length) {
      this.log.error(`fuse: malformed request of ${length} bytes (header says ${readU32(buf, 0)}), dropped`);
      return false;
    }
    const opcode = readU32(buf, fuse_in_header.opcode);
    this.counts.request(opcode);
    const nodeid = readU64(buf, fuse_in_header.nodeid) as Ino;
    const op: Op | undefined = opTable[opcode];
    if (op?.noReply) {
      // FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY: never answered, handled on the spot.
      op.noReply(this, buf, length, nodeid);
      return false;
    }
    const req = new FuseRequest(
      buf,
      length,
      opcode,
      readU64(buf, fuse_in_header.unique),
      nodeid,
      readU32(buf, fuse_in_header.uid),
      readU32(buf, fuse_in_header.gid),
      readU32(buf, fuse_in_header.pid),
    );
    req.ringEntry = ringEntry;
    if (!op?.handle) {
      if (this.options.debug) this.log.debug(`fuse: unknown opcode ${opcode}, answering ENOSYS`);
      this.replyError(req, Errno.ENOSYS);
      return false;
    }
    if (this.initInfo === undefined && opcode !== Opcode.INIT) {
      this.log.error(`fuse: ${op.name} before INIT, answering EIO`);
      this.replyError(req, Errno.EIO);
      return false;
    }
    if (length - fuse_in_header.size < op.minBodyBytes) {
      this.log.error(
        `fuse: ${op.name} body of ${length - fuse_in_header.size} bytes is too short, answering EINVAL`,
      );
      this.replyError(req, Errno.EINVAL);
      return false;
    }
    if (this.options.debug) {
      this.log.debug(
        `fuse: ${op.name} unique=${req.uniqueId} ino=${nodeid} uid=${req.uid} pid=${req.pid} len=${length}`,
      );
    }
    this.inflight.add(req);
    void this.run(op, req, op.handle);
    return req.retainsBuffer;
  }

  /** The per-request error boundary. */
  private async run(op: Op, req: FuseRequest, handle: NonNullable<Op['handle']>): Promise<void> {
    const startMs = performance.now();
    try {
      await handle(this, req);
      if (!req.replied) {
        this.log.error(`fuse: BUG: ${op.name} handler finished without replying; answering EIO`);
        this.replyError(req, Errno.EIO);
      }
    } catch (error) {
      this.replyFailure(op, req, error);
    } finally {
      this.counts.timed(req.opcode, performance.now() - startMs);
      this.inflight.remove(req);
      // A ring request's buffer is a view of its entry, never one for the /dev/fuse pool.
      if (req.retainsBuffer && req.ringEntry < 0) this.dev.releaseBuffer(req.buf);
      if (this.inflight.size === 0) {
        if (this.drained) this.drained();
        else if (req.ringEntry < 0) this.dev.idle();
      }
    }
  }

  private replyFailure(op: Op, req: FuseRequest, error: unknown): void {
    let errno: number;
    if (isFsError(error) && error.errno > 0 && error.errno < 4096) {
      errno = error.errno;
      if (this.options.debug)
        this.log.debug(`fuse: ${op.name} ino=${req.nodeid} -> ${error.code}: ${error.message}`);
    } else if (req.isInterrupted && error instanceof Error && error.name === 'AbortError') {
      errno = Errno.EINTR;
    } else {
      errno = Errno.EIO;
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.log.error(`fuse: ${op.name} ino=${req.nodeid} failed unexpectedly, answering EIO: ${detail}`);
    }
    if (req.replied) {
      this.log.error(`fuse: ${op.name} ino=${req.nodeid} failed after its reply was sent: errno ${errno}`);
      return;
    }
    this.replyError(req, errno);
  }

  // ---- replies (replies.ts): each request is answered exactly once ----

  replyError(req: FuseRequest, errno: number): void {
    this.counts.error(req.opcode);
    this.replies.error(req, errno);
  }

  /** Sends `this.out[0, 16 + bodyBytes)`; the body must already be in place. Returns false if the kernel did not take it. */
  replyOut(req: FuseRequest, bodyBytes: number): boolean {
    // fuse_write_out.size, the bytes the write took, is the body's first field.
    if (req.opcode === Opcode.WRITE) this.writtenBytes += readU32(this.out, fuse_out_header.size);
    return this.replies.body(req, bodyBytes);
  }

  /** Sends a reply whose body is `data` (READ, READLINK, GETXATTR), without copying it. */
  replyData(req: FuseRequest, data: Buffer): boolean {
    if (req.opcode === Opcode.READ) this.readBytes += data.length;
    return this.replies.data(req, data);
  }

  /** How the /dev/fuse loop's polls for a next request ended (SessionOptions.pollSpinUs). */
  get pollSpins(): Readonly<{ found: number; missed: number; contended: number }> {
    return this.dev.spins;
  }

  /** Requests received and answered with an error, by opcode name, of the opcodes seen so far. */
  requestCountsByOpcode(): OpcodeCounts[] {
    return this.counts.byOpcode();
  }

  // ---- the io_uring transport (ring.ts) ----

  /**
   * Before the INIT reply: sets up the ring (memory, io_uring instance) so that
   * FUSE_OVER_IO_URING is accepted only if it can be served. Once accepted, the kernel
   * holds every new request until each CPU queue has an entry, so failing later would hang
   * callers. Returns false (after one log line) to stay on /dev/fuse.
   */
  prepareRing(payloadBytes: number): boolean {
    if (this.ring || this.state !== 'running') return false;
    const depth = this.options.ioUringQueueDepth ?? DEFAULT_RING_QUEUE_DEPTH;
    try {
      const queues = possibleCpuCount();
      this.ring = new FuseRing(this.fd, queues, depth, Math.max(MIN_RING_PAYLOAD_BYTES, payloadBytes), this);
      this.log.warn(`fuse: serving over io_uring (${queues} queues of ${depth} entries)`);
      return true;
    } catch (error) {
      this.log.warn(
        `fuse: cannot set up an io_uring ring (${(error as Error).message}); serving over /dev/fuse`,
      );
      return false;
    }
  }

  /** Right after the INIT reply that accepted FUSE_OVER_IO_URING: registers the ring entries. */
  startRing(): void {
    if (!this.ring || this.state !== 'running') return;
    try {
      this.ring.start();
    } catch (error) {
      // The kernel waits for entries that will never come: end the connection (callers
      // get ENOTCONN) instead of leaving them blocked.
      this.finish(new Error(`registering the io_uring entries failed: ${(error as Error).message}`));
    }
  }

  /** RingSink: a ring command failed. Before any request came through it, the kernel falls back to /dev/fuse. */
  ringFailed(errno: number, message: string): void {
    if (this.state === 'closed') return;
    const { ENOTCONN, ECANCELED, ECONNABORTED } = constants.errno;
    if (errno === ENOTCONN || errno === ECANCELED || errno === ECONNABORTED) return; // /dev/fuse reports the end
    this.log.error(`fuse: io_uring: ${message}`);
  }

  /** True while requests are served through io_uring. */
  get usesIoUring(): boolean {
    return this.ring !== undefined;
  }

  /** Requests that arrived through the io_uring ring so far (0 over /dev/fuse). */
  get ioUringRequests(): number {
    return this.ring?.requestsServed ?? 0;
  }

  // ---- state used by the opcode handlers ----

  /** Records INIT's outcome; the file system's init has already run. */
  completeInit(info: InitInfo, flags: number): void {
    this.initInfo = info;
    this.initFlags = flags;
    this.maxReadBytes = maxReadBytesFor(flags);
    this.resolveReady(info);
  }

  /** The kernel now holds one more reference to `ino` (an entry reply it accepted). */
  countLookup(ino: number): void {
    if (ino === 1 || ino === 0) return;
    const held = this.lookups.get(ino);
    if (held) held.count++;
    else this.lookups.set(ino, { count: 1 });
  }

  /** FORGET: drops `count` references; the file system hears of it when none remain. */
  forgetLookups(ino: number, count: number): void {
    const held = this.lookups.get(ino);
    // The kernel may forget an inode we never counted (root, or one from before a restart): ignore.
    if (held === undefined) return;
    if (held.count > count) {
      held.count -= count;
      return;
    }
    this.lookups.delete(ino);
    if (this.fs.forget) this.fs.forget(ino as Ino).catch(this.onForgetError);
  }

  /** Kernel references currently held, for tests and `strata status`. */
  lookupCount(ino: number): number {
    return this.lookups.get(ino)?.count ?? 0;
  }

  interruptRequest(uniqueId: number): void {
    // Not found: the request was already answered, which is fine.
    this.inflight.find(uniqueId)?.interrupt('interrupted by the kernel');
  }

  /** Calls the file system's destroy once (DESTROY or session end). */
  async destroyFs(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.fs.destroy?.();
  }

  private readonly onForgetError = (error: unknown): void => {
    this.log.error(`fuse: forget failed: ${String(error)}`);
  };

  private removeSignalHandlers(): void {
    if (!this.signalHandler) return;
    process.off('SIGINT', this.signalHandler);
    process.off('SIGTERM', this.signalHandler);
    this.signalHandler = undefined;
  }

  /** Ends the session once: stop reading, abort what is in flight, close the fd, destroy the file system. */
  private finish(error: Error | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.dev.stop();
    this.removeSignalHandlers();
    if (error) this.log.error(`fuse: session ended on error: ${error.message}`);
    for (const req of this.inflight.list()) req.interrupt('aborted: the FUSE session ended');
    // The ring first: its pending commands hold the device file open, so the connection
    // aborts (callers get ENOTCONN) only once both are closed.
    this.ring?.close();
    closeDevice(this.fd, this.notifierCache);
    this.rejectReady(new Error('the FUSE session ended before INIT completed'));
    this.destroyFs()
      .catch((destroyError: unknown) => this.log.error(`fuse: destroy failed: ${String(destroyError)}`))
      .finally(() => this.resolveClosed());
  }
}
