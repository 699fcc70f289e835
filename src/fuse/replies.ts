import { constants } from 'node:os';
import { errnoName } from '../common/index.js';
import { fuse_out_header } from './abi.js';
import { writeU32, writeU64 } from './codec.js';
import type { DevTransport } from './dev-transport.js';
import type { FuseRing } from './ring.js';
import type { FuseRequest } from './request.js';
import type { FuseLogger } from './session-options.js';

const { ENOENT, ENODEV } = constants.errno;

/**
 * Writes each request's reply exactly once, back the way the request came: its ring entry
 * or /dev/fuse. Replies go out synchronously, so one shared buffer (`out`) and one header
 * serve them all.
 */
export class Replies {
  /** Shared reply buffer: fill from offset 16 (after the out header) and call `body`. */
  readonly out: Buffer;
  private readonly header = Buffer.alloc(fuse_out_header.size);

  constructor(
    private readonly dev: DevTransport,
    private readonly log: FuseLogger,
    outBytes: number,
    /** After close the fd number may already name another file: nothing is written then. */
    private readonly isClosed: () => boolean,
    /** The ring the session serves requests through, if any. */
    private readonly ring: () => FuseRing | undefined,
  ) {
    this.out = Buffer.allocUnsafe(outBytes);
  }

  error(req: FuseRequest, errno: number): void {
    const header = this.header;
    writeU32(header, fuse_out_header.len, fuse_out_header.size);
    writeU32(header, fuse_out_header.error, -errno);
    writeU64(header, fuse_out_header.unique, req.uniqueId);
    this.send(req, header, fuse_out_header.size);
  }

  /** Sends `out[0, 16 + bodyBytes)`; the body must already be in place. False if the kernel did not take it. */
  body(req: FuseRequest, bodyBytes: number): boolean {
    const out = this.out;
    const length = fuse_out_header.size + bodyBytes;
    writeU32(out, fuse_out_header.len, length);
    writeU32(out, fuse_out_header.error, 0);
    writeU64(out, fuse_out_header.unique, req.uniqueId);
    return this.send(req, out, length);
  }

  /** Sends a reply whose body is `data` (READ, READLINK, GETXATTR), without copying it. */
  data(req: FuseRequest, data: Buffer): boolean {
    if (data.length === 0) return this.body(req, 0);
    const header = this.header;
    writeU32(header, fuse_out_header.len, fuse_out_header.size + data.length);
    writeU32(header, fuse_out_header.error, 0);
    writeU64(header, fuse_out_header.unique, req.uniqueId);
    if (!this.claim(req)) return false;
    const written =
      req.ringEntry >= 0
        ? this.ringOf(req).replyTwo(req.ringEntry, header, data)
        : this.dev.writeTwo(header, data);
    return written >= 0 || this.writeFailed(req, written);
  }

  private send(req: FuseRequest, buf: Buffer, length: number): boolean {
    if (!this.claim(req)) return false;
    const written =
      req.ringEntry >= 0 ? this.ringOf(req).reply(req.ringEntry, buf, length) : this.dev.write(buf, length);
    return written >= 0 || this.writeFailed(req, written);
  }

  /** The ring a request came through; it lives until the session is closed, and closed sessions send nothing. */
  private ringOf(req: FuseRequest): FuseRing {
    const ring = this.ring();
    if (!ring) throw new Error(`fuse: BUG: request ${req.uniqueId} came through a ring that is gone`);
    return ring;
  }

  private claim(req: FuseRequest): boolean {
    if (req.replied) {
      this.log.error(`fuse: BUG: second reply to request ${req.uniqueId} (opcode ${req.opcode}) suppressed`);
      return false;
    }
    req.replied = true;
    return !this.isClosed();
  }

  private writeFailed(req: FuseRequest, negativeErrno: number): boolean {
    // ENOENT: the kernel gave up on the request (interrupted); ENODEV: unmounted meanwhile.
    if (negativeErrno !== -ENOENT && negativeErrno !== -ENODEV) {
      this.log.error(
        `fuse: writing the reply to request ${req.uniqueId} (opcode ${req.opcode}) failed: ${errnoName(-negativeErrno)}`,
      );
    }
    return false;
  }
}
