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
  /** The io_uring entry this request arrived in (its reply goes back there); -1: read from /dev/fuse. */
  ringEntry = -1;
  /** Where this request sits in the session's `InFlight` list; -1 when not in it. */
  slot = -1;
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

/**
 * The requests a session is serving, for INTERRUPT and shutdown. Adding and removing are
 * O(1) without allocation or hashing (every request passes through here, INTERRUPT is
 * rare and few requests are ever in flight, so finding one by id is a scan).
 */
export class InFlight {
  private items: Array<FuseRequest | undefined> = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(req: FuseRequest): void {
    req.slot = this.count;
    this.items[this.count++] = req;
  }

  remove(req: FuseRequest): void {
    const slot = req.slot;
    if (slot < 0) return;
    const last = this.items[--this.count] as FuseRequest;
    this.items[slot] = last;
    last.slot = slot;
    this.items[this.count] = undefined;
    req.slot = -1;
  }

  find(uniqueId: number): FuseRequest | undefined {
    for (let i = 0; i < this.count; i++) {
      const req = this.items[i] as FuseRequest;
      if (req.uniqueId === uniqueId) return req;
    }
    return undefined;
  }

  /** A copy, so callers may remove while iterating. */
  list(): FuseRequest[] {
    return this.items.slice(0, this.count) as FuseRequest[];
  }
}
