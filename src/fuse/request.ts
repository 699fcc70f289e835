import type { Ino } from '../common/index.js';
import type { RequestContext } from './filesystem.js';

/**
 * One kernel request in flight. It is the `RequestContext` handed to the file system;
 * the AbortController behind `signal` is created only if someone asks for the signal,
 * since most requests finish long before anyone could interrupt them.
 */
export class FuseRequest implements RequestContext {
  umask = 0;
  /** Set once a reply was written (or deliberately skipped); replies happen exactly once. */
  replied = false;
  /** The request buffer holds data the file system reads after the first await (WRITE, SETXATTR). */
  retainsBuffer = false;
  private interrupted = false;
  private controller: AbortController | undefined;

  constructor(
    readonly buf: Buffer,
    /** Total length of the request, header included. */
    readonly end: number,
    readonly opcode: number,
    /** The kernel's request id as a number (ids are a counter, exact far below 2^53). */
    readonly uniqueId: number,
    readonly nodeid: Ino,
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
  ) {}

  get unique(): bigint {
    return BigInt(this.uniqueId);
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.interrupted) this.controller.abort(interruptReason(this.uniqueId));
    }
    return this.controller.signal;
  }

  get isInterrupted(): boolean {
    return this.interrupted;
  }

  /** FUSE_INTERRUPT (or session shutdown) for this request. */
  interrupt(why: string): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.controller?.abort(interruptReason(this.uniqueId, why));
  }
}

function interruptReason(uniqueId: number, why = 'interrupted by the kernel'): Error {
  const error = new Error(`request ${uniqueId} ${why}`);
  error.name = 'AbortError';
  return error;
}
