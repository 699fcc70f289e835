import { readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { errnoName } from '../common/index.js';
import { loadFdPoll } from './native.js';

/** The io_uring part of the `native/fdpoll` addon (furing.c). */
export interface RingAddon {
  create(devFd: number, queues: number, perQueue: number, payloadBytes: number): RingSetup;
  /** Submits REGISTER for every entry: the number submitted, or a negative errno. */
  register(ring: RingHandle): number;
  /** Queues REGISTER for one entry again (after a failed commit): 0 or a negative errno. */
  reregister(ring: RingHandle, entry: number): number;
  /** Polls the ring fd; `onCompletions(count, status)` finds `count` [entry, start, length] triples in `results`. */
  start(ring: RingHandle, results: Int32Array, onCompletions: (count: number, status: number) => void): void;
  /** Queues the reply `buffer[0, length)` (out header first) for `entry`: 0 or a negative errno. */
  commit(ring: RingHandle, entry: number, buffer: Buffer, length: number): number;
  /** Queues the reply `header` (16 bytes) + `data` for `entry`: 0 or a negative errno. */
  commitTwo(ring: RingHandle, entry: number, header: Buffer, data: Buffer): number;
  flush(ring: RingHandle): number;
  close(ring: RingHandle): void;
}

declare const ringBrand: unique symbol;
export type RingHandle = { readonly [ringBrand]: 'RingHandle' };

interface RingSetup {
  ring: RingHandle;
  memory: ArrayBuffer;
  ringFd: number;
  strideBytes: number;
  payloadOffset: number;
}

/** What the ring hands its session: a request laid out as read(2) would return it. */
export interface RingSink {
  processRequest(buf: Buffer, length: number, ringEntry: number): boolean;
  /** A command the kernel failed: the connection ends (ENOTCONN) or it refused io_uring. */
  ringFailed(errno: number, message: string): void;
}

const { ENOTCONN, ECANCELED, ECONNABORTED, EPROTO } = constants.errno;
const ENABLE_URING_PARAMETER = '/sys/module/fuse/parameters/enable_uring';
/** Completions handed to JavaScript per callback at most; the rest wait for the next turn. */
const MAX_COMPLETIONS_PER_CALL = 256;
/** Failures in a row after which an entry is given up rather than registered again. */
const MAX_ENTRY_FAILURES = 3;

/** The addon's io_uring functions; throws with the build command when the addon predates them. */
export function loadRingAddon(): RingAddon {
  const addon = (loadFdPoll() as unknown as { ring?: RingAddon }).ring;
  if (!addon)
    throw new Error(
      'the native addon predates io_uring support: run "npx node-gyp rebuild --directory native/fdpoll"',
    );
  return addon;
}

/** The queue count the kernel expects: one per possible CPU (fuse_uring_create uses num_possible_cpus). */
export function possibleCpuCount(): number {
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let highest = 0;
  for (const range of text.split(',')) {
    const last = Number(range.split('-').pop());
    if (Number.isInteger(last) && last > highest) highest = last;
  }
  return highest + 1;
}

/**
 * Makes the kernel offer FUSE_OVER_IO_URING at INIT: the fuse module parameter
 * enable_uring (root only; it applies to connections initialised afterwards, machine-wide).
 * Returns what happened, for one log line; throws with a message a person can act on.
 */
export function enableKernelUring(): 'already' | 'enabled' {
  let current: string;
  try {
    current = readFileSync(ENABLE_URING_PARAMETER, 'utf8').trim();
  } catch (error) {
    throw new Error(
      `${ENABLE_URING_PARAMETER} is missing (${(error as Error).message}): this kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING, Linux 6.14+)`,
    );
  }
  if (current === 'Y') return 'already';
  try {
    writeFileSync(ENABLE_URING_PARAMETER, 'Y');
  } catch (error) {
    throw new Error(`cannot write Y to ${ENABLE_URING_PARAMETER} (${(error as Error).message}); run as root`);
  }
  return 'enabled';
}

/** Reads the module parameter: true if the kernel currently offers io_uring to new connections. */
export function kernelUringEnabled(): boolean {
  try {
    return readFileSync(ENABLE_URING_PARAMETER, 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}

/** Sets the module parameter back (tests restore what they found). */
export function setKernelUring(enabled: boolean): void {
  writeFileSync(ENABLE_URING_PARAMETER, enabled ? 'Y' : 'N');
}

/**
 * The FUSE-over-io_uring transport of one connection: ring entries registered with the
 * kernel, each a header buffer and a payload buffer the kernel fills with one request;
 * the reply goes back through the same entry together with the fetch of the next
 * request. Completions are dispatched from the event loop; the replies of one loop
 * turn are submitted together (see furing.c). INTERRUPT, FORGET and notifications
 * still use /dev/fuse, as the kernel routes them there.
 */
export class FuseRing {
  readonly entries: number;
  /** Requests that arrived through the ring (for tests and `strata status`). */
  requestsServed = 0;
  private readonly addon: RingAddon;
  private readonly handle: RingHandle;
  private readonly views: Buffer[] = [];
  private readonly results = new Int32Array(3 * MAX_COMPLETIONS_PER_CALL);
  /** Failed commands in a row per entry (reset by a request arriving in it). */
  private readonly failures: Uint8Array;
  private closed = false;

  constructor(
    devFd: number,
    queues: number,
    perQueue: number,
    payloadBytes: number,
    private readonly sink: RingSink,
  ) {
    const addon = loadRingAddon();
    this.addon = addon;
    const setup = addon.create(devFd, queues, perQueue, payloadBytes);
    this.handle = setup.ring;
    this.entries = queues * perQueue;
    this.failures = new Uint8Array(this.entries);
    for (let i = 0; i < this.entries; i++)
      this.views.push(Buffer.from(setup.memory, i * setup.strideBytes, setup.strideBytes));
  }

  /** Registers every entry and starts dispatching requests. Throws if the kernel refuses at once. */
  start(): void {
    this.addon.start(this.handle, this.results, this.onCompletions);
    const submitted = this.addon.register(this.handle);
    if (submitted < 0) {
      this.close();
      throw new Error(`submitting the ring entries failed: ${errnoName(-submitted)}`);
    }
  }

  /** Queues the reply `buf[0, length)` for the request that arrived in `entry`: 0 or a negative errno. */
  reply(entry: number, buf: Buffer, length: number): number {
    return this.addon.commit(this.handle, entry, buf, length);
  }

  replyTwo(entry: number, header: Buffer, data: Buffer): number {
    return this.addon.commitTwo(this.handle, entry, header, data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.handle);
  }

  private readonly onCompletions = (count: number, status: number): void => {
    if (status < 0) {
      this.sink.ringFailed(EPROTO, `polling the io_uring fd failed with libuv status ${status}`);
      return;
    }
    const results = this.results;
    for (let i = 0; i < count && !this.closed; i++) {
      const entry = results[3 * i];
      const start = results[3 * i + 1];
      const length = results[3 * i + 2];
      if (start < 0) {
        this.failed(entry, -start, length);
        continue;
      }
      const view = this.views[entry];
      this.requestsServed++;
      this.failures[entry] = 0;
      this.sink.processRequest(view.subarray(start, start + length), length, entry);
    }
  };

  private failed(entry: number, errno: number, length: number): void {
    if (errno === ENOTCONN || errno === ECANCELED || errno === ECONNABORTED) {
      // The connection is going away (unmount, abort): /dev/fuse reports the end.
      this.sink.ringFailed(errno, 'the kernel tore down the ring');
      return;
    }
    if (errno === EPROTO) {
      this.sink.ringFailed(
        errno,
        `ring entry ${entry} held a request of ${length} bytes that does not fit; answered EIO`,
      );
      return;
    }
    if (this.requestsServed === 0) {
      // A REGISTER the kernel rejected: it then serves the connection over /dev/fuse.
      this.sink.ringFailed(
        errno,
        `the kernel rejected ring entry ${entry} (${errnoName(errno)}); serving over /dev/fuse`,
      );
      return;
    }
    // A failed COMMIT_AND_FETCH leaves the entry out of its queue: put it back, so that
    // lost entries cannot starve a queue, but never loop on one the kernel keeps refusing.
    const failures = ++this.failures[entry];
    const again = failures <= MAX_ENTRY_FAILURES ? this.addon.reregister(this.handle, entry) : -1;
    this.sink.ringFailed(
      errno,
      `ring entry ${entry} failed (${errnoName(errno)}); ` +
        (again === 0 ? 'registered it again' : `given up after ${failures} failures`),
    );
  }
}
