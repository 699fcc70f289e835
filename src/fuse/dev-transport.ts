import { constants } from 'node:os';
import { errnoName } from '../common/index.js';
import { fuse_in_header, Opcode } from './abi.js';
import { readU32 } from './codec.js';
import { loadFdPoll, replyWriters, type FdPoll, type FdWatcher } from './native.js';
import { PollSpinPolicy } from './poll-spin.js';

/** What the /dev/fuse transport hands its session. */
export interface DevRequestSink {
  /** False once the session stops taking requests (draining for a detach, or closed). */
  readonly acceptsRequests: boolean;
  /** Decodes and starts one request; true if its handler keeps `buf` (see `releaseBuffer`). */
  processRequest(buf: Buffer, length: number): boolean;
  /** The device ended the connection: `error` undefined for the normal end (unmount). */
  deviceEnded(error: Error | undefined): void;
}

const { EAGAIN, ENOENT, ENODEV } = constants.errno;
/**
 * Reads per poll wake-up at most while draining: requests that queued up (several
 * callers, readahead, fio jobs) then cost one wake-up of the event loop instead of one
 * each. The bound keeps timers and other I/O from starving under a flood.
 */
const MAX_READS_PER_WAKE = 32;
/**
 * When the device was found empty after the first request of the last wake-up, only
 * every this many wake-ups tries a second read: with a single caller waiting on each
 * answer (stat, create, a 1-job read) the second read only returns EAGAIN, a syscall
 * wasted per request (bench/fuse, RESULTS.md).
 */
const PROBE_EVERY_WAKES = 8;
/** Request buffers kept for reuse; beyond this they are left to the GC. */
const MAX_POOLED_BUFFERS = 32;

function isForget(buf: Buffer): boolean {
  const opcode = readU32(buf, fuse_in_header.opcode);
  return opcode === Opcode.FORGET || opcode === Opcode.BATCH_FORGET;
}

/**
 * The /dev/fuse transport: reads requests into pooled buffers when the event loop says the
 * fd is readable, and writes replies with write(2)/writev(2). It never closes the fd: the
 * session owns it (a detach hands it on).
 */
export class DevTransport {
  /** write(2) / writev(2) of a reply returning -errno instead of throwing (see `replyWriters`). */
  private readonly writeFrom: (fd: number, buf: Buffer, length: number) => number;
  private readonly writeFromTwo: (fd: number, header: Buffer, data: Buffer) => number;
  /** Loaded by `start()`: a session fed through `processRequest` needs no addon. */
  private fdpoll: FdPoll | undefined;
  /** The same addon when it can poll before sleeping (builds before that lack the two calls). */
  private spinner: Pick<Required<FdPoll>, 'spinReadable' | 'involuntarySwitches'> | undefined;
  private watcher: FdWatcher | undefined;
  private readonly pool: Buffer[] = [];
  /** The last draining wake-up found more than one request queued. */
  private queueSeen = false;
  private wakesSinceProbe = 0;
  /** A spin (see `idle`) is scheduled. */
  private spinScheduled = false;
  private readonly spinPolicy: PollSpinPolicy;
  /** This thread's involuntary context switches at the last sample (see PollSpinPolicy). */
  private switchesSeen = -1;
  /**
   * Idle moments that polled for a next request, by whether one came, and those that did not
   * poll, or whose poll was preempted, because the CPU was contended (metrics, benchmarks).
   */
  readonly spins = { found: 0, missed: 0, contended: 0 };

  constructor(
    private readonly fd: number,
    private readonly bufferSizeBytes: number,
    private readonly sink: DevRequestSink,
    /** How long to poll for the next request once every request read was answered (0: never). */
    spinUs: number,
  ) {
    [this.writeFrom, this.writeFromTwo] = replyWriters();
    this.spinPolicy = new PollSpinPolicy(spinUs);
  }

  /** Writes the reply `buf[0, length)`: the byte count, or a negative errno. */
  write(buf: Buffer, length: number): number {
    return this.writeFrom(this.fd, buf, length);
  }

  /** Writes the reply `header` + `data` in one writev(2): the byte count, or a negative errno. */
  writeTwo(header: Buffer, data: Buffer): number {
    return this.writeFromTwo(this.fd, header, data);
  }

  /** Starts polling the fd. Only after the mount exists: before it, the device polls as an error. */
  start(): void {
    const fdpoll = loadFdPoll();
    this.fdpoll = fdpoll;
    const { spinReadable, involuntarySwitches } = fdpoll;
    if (spinReadable !== undefined && involuntarySwitches !== undefined) {
      this.spinner = { spinReadable, involuntarySwitches };
    }
    fdpoll.setNonBlocking(this.fd);
    this.watcher = fdpoll.start(this.fd, this.onReadable);
  }

  /** Stops reading; the fd stays open. Idempotent. */
  stop(): void {
    if (this.watcher) this.fdpoll?.stop(this.watcher);
    this.watcher = undefined;
  }

  /**
   * Every request read so far has been answered: poll the device for the next one for a few
   * microseconds, once the event loop has run what the replies queued (setImmediate), instead
   * of going to sleep in epoll at once.
   */
  idle(): void {
    if (this.spinScheduled || this.watcher === undefined || this.spinner === undefined) return;
    const skipped = this.spinPolicy.skip();
    if (skipped === 'contended') this.spins.contended++;
    if (skipped !== undefined) return;
    this.spinScheduled = true;
    setImmediate(this.spin);
  }

  private readonly spin = (): void => {
    this.spinScheduled = false;
    const spinner = this.spinner;
    if (this.watcher === undefined || spinner === undefined || !this.sink.acceptsRequests) return;
    const switches = spinner.involuntarySwitches();
    const preempted = switches !== this.switchesSeen;
    this.switchesSeen = switches;
    if (!this.spinPolicy.sampled(preempted)) {
      this.spins.contended++;
      return;
    }
    const found = spinner.spinReadable(this.fd, this.spinPolicy.spinUs);
    const switchesAfter = spinner.involuntarySwitches();
    const spinPreempted = switchesAfter !== switches;
    this.switchesSeen = switchesAfter;
    this.spinPolicy.spun(found, spinPreempted);
    if (spinPreempted) this.spins.contended++;
    else if (found) this.spins.found++;
    else this.spins.missed++;
    if (found) this.onReadable(0);
  };

  /** Gives back a request buffer once its handler is done with it. */
  releaseBuffer(buf: Buffer): void {
    if (this.pool.length < MAX_POOLED_BUFFERS) this.pool.push(buf);
  }

  private readonly onReadable = (status: number): void => {
    if (status < 0) {
      // libuv reports the device's POLLERR as EBADF and stops polling. That is how an
      // unmount looks: a read then says ENODEV. Anything else is a real failure.
      this.sink.deviceEnded(
        this.probeEnd() ? undefined : new Error(`polling /dev/fuse failed with libuv status ${status}`),
      );
      return;
    }
    const readInto = (this.fdpoll as FdPoll).readInto;
    const draining = this.queueSeen || ++this.wakesSinceProbe >= PROBE_EVERY_WAKES;
    if (draining) this.wakesSinceProbe = 0;
    let limit = draining ? MAX_READS_PER_WAKE : 1;
    let reads = 0;
    while (reads < limit && this.sink.acceptsRequests) {
      const buf = this.pool.pop() ?? Buffer.allocUnsafe(this.bufferSizeBytes);
      const length = readInto(this.fd, buf);
      if (length < 0) {
        this.pool.push(buf);
        if (length === -EAGAIN) break;
        // ENOENT: the request was interrupted and withdrawn between poll and read.
        if (length === -ENOENT) continue;
        // ENODEV: unmounted (or the connection was aborted): the normal end of a session.
        this.sink.deviceEnded(
          length === -ENODEV ? undefined : new Error(`reading /dev/fuse failed: ${errnoName(-length)}`),
        );
        return;
      }
      reads++;
      // A FORGET is not answered, so its sender is not waiting on us: the kernel queues
      // it as an unlink or eviction completes, and the caller's next request usually
      // follows at once (1-process unlink: one wake-up in four saved, bench/fuse).
      if (reads === limit && limit < MAX_READS_PER_WAKE && isForget(buf)) limit++;
      if (!this.sink.processRequest(buf, length)) this.releaseBuffer(buf);
    }
    // Draining pays while it finds queues; a lone request per wake-up means one caller.
    if (draining) this.queueSeen = reads > 1;
  };

  /** After a poll error: true if the device says the connection is gone (ENODEV), the normal end. */
  private probeEnd(): boolean {
    const buf = this.pool.pop() ?? Buffer.allocUnsafe(this.bufferSizeBytes);
    const ended = (this.fdpoll as FdPoll).readInto(this.fd, buf) === -ENODEV;
    this.pool.push(buf);
    return ended;
  }
}
