import { Errno, isFsError, type Ino } from '../common/index.js';
import type { FillSink } from '../data/index.js';
import type { LentBytes } from '../fuse/index.js';

/** The kernel's page cache as a FUSE session reaches it (NOTIFY_STORE). */
export interface PageStore {
  /** Puts `data` into the page cache of `ino` at `offsetBytes`; resolves when the kernel took it. */
  store(ino: Ino, offsetBytes: number, data: Buffer): Promise<void>;
}

/**
 * What an open file offers: its bytes that are verified in memory already, never fetched, lent
 * until the push is done with them.
 */
export interface PushSource {
  cachedRange(offsetBytes: number, lengthBytes: number): Promise<LentBytes | null>;
}

interface InodeState {
  /**
   * Taken from one counter for all inodes, so a state dropped and made again never repeats an
   * earlier value: a push read under an older generation is recognised as stale.
   */
  generation: number;
  /** Handles open for writing or changes under way (truncate): nothing is pushed meanwhile. */
  writers: number;
  /** Pushes handed to the kernel and not yet taken. */
  inFlight: number;
  /** Handles that read through the page cache (not direct_io): whole-file pushes only for them. */
  bufferedHandles: number;
  /** Changes waiting for inFlight to drain before they are answered. */
  waiters: (() => void)[];
  source: PushSource | undefined;
}

interface Push {
  ino: Ino;
  generation: number;
  offsetBytes: number;
  data: Buffer;
  /** Told when the push was taken by the kernel, failed or was dropped; set for whole-file pushes only. */
  settled?: () => void;
  /** Gives back the cache memory `data` is a view of (windows from PushSource), at the same moments. */
  done?: () => void;
}

/**
 * One 64 KiB window (the data path's verification segment) answers 16 page reads: a read smaller
 * than it makes the whole aligned window around it a candidate for the page cache.
 */
export const PUSH_WINDOW_BYTES = 64 * 1024;
/**
 * Pushes written at once unless the owner says otherwise: each holds a libuv pool thread until
 * the kernel takes it, and the kernel holds it while a READ of the same pages is unanswered. A
 * mount gives them nearly all of the session's notification slots (volume/client.ts): with 2,
 * buffered random reads over S3 dropped 60% of their windows for a full queue (bench/RESULTS.md,
 * S3 backend, session 23).
 */
const DEFAULT_PUSHES_IN_FLIGHT = 2;
/**
 * Pushes waiting beyond this many bytes are dropped: the page cache is a hint, memory is not
 * (a push holds a view of data the memory budget may already have given back).
 */
const MAX_QUEUED_PUSH_BYTES = 8 * 1024 * 1024;
const PAGE_BYTES = 4096;
/** Inode states kept when idle; the oldest idle ones go beyond this. */
const MAX_IDLE_STATES = 4096;

export interface PageCacheStats {
  /** Pushes the kernel took (or refused with ENOENT: it had forgotten the inode). */
  pushes: number;
  pushedBytes: number;
  /** Of pushedBytes, those a whole-file disk-cache copy verified (see fillSink). */
  fillPushedBytes: number;
  /** Pushes not sent: a change since the read, a writer, a full queue, or no data in memory. */
  dropped: number;
  failed: number;
}

/**
 * Pushes data a read verified into the kernel's page cache (FUSE NOTIFY_STORE), so later reads of
 * the neighbouring pages never leave the kernel; and keeps that from ever putting older bytes over
 * newer ones.
 *
 * The invariant: the kernel's page cache never holds bytes that differ from the file's content as
 * this mount serves it. A push is built from bytes read under one generation of its inode and is
 * written only if the generation is unchanged and nobody on this mount writes the file:
 * - every content change (local truncate, fallocate, copy into the file, a write, another
 *   mount's change seen at open or pushed by the server) moves the generation before it is
 *   answered, and waits (settle) for pushes already written, so none lands after it;
 * - a handle open for writing blocks pushes until it is released: the kernel copies write(2)
 *   data into its cached pages before the WRITE request reaches us, so a push in flight could
 *   land on top of them with nothing here to notice. Opening such a handle waits for pushes in
 *   flight, so none is left when the first write can happen.
 * The check and the count of pushes in flight both happen on the main thread, right before the
 * write to the device is handed to the pool: nothing changes between them.
 */
export class PageCache {
  readonly stats: PageCacheStats = { pushes: 0, pushedBytes: 0, fillPushedBytes: 0, dropped: 0, failed: 0 };
  private readonly states = new Map<Ino, InodeState>();
  private readonly queue: Push[] = [];
  private queuedBytes = 0;
  private inFlight = 0;
  private counter = 0;
  private pumpScheduled = false;
  private loggedFailure = false;

  /**
   * @param maxPushesInFlight pushes written at once; the session's notification slots (NotifyGate
   *   in fuse/notify.ts) bound them too, and keep half the pool free for the data path.
   */
  constructor(
    private readonly kernel: PageStore,
    private readonly log: (message: string) => void,
    private readonly maxPushesInFlight = DEFAULT_PUSHES_IN_FLIGHT,
  ) {
    if (!Number.isSafeInteger(maxPushesInFlight) || maxPushesInFlight < 1) {
      throw new Error(`maxPushesInFlight ${maxPushesInFlight} must be a whole number >= 1`);
    }
  }

  private state(ino: Ino): InodeState {
    let state = this.states.get(ino);
    if (state === undefined) {
      state = {
        generation: ++this.counter,
        writers: 0,
        inFlight: 0,
        bufferedHandles: 0,
        waiters: [],
        source: undefined,
      };
      this.states.set(ino, state);
      // Mostly the kernel's FORGET drops states; this bounds them when it holds many inodes.
      if (this.states.size > 2 * MAX_IDLE_STATES) this.prune();
    }
    return state;
  }

  /** The generation a read starting now sees; a push of its bytes must find it unchanged. */
  capture(ino: Ino): number {
    return this.state(ino).generation;
  }

  /** The current generation, 0 if nothing is tracked for the inode. */
  generationOf(ino: Ino): number {
    return this.states.get(ino)?.generation ?? 0;
  }

  /** The content of `ino` changed (or may have): bytes read before now must not be pushed. */
  changed(ino: Ino): void {
    const state = this.states.get(ino);
    if (state !== undefined) state.generation = ++this.counter;
  }

  /** Changes may have been missed (lost server connection): nothing read before now is pushed. */
  changedAll(): void {
    for (const state of this.states.values()) state.generation = ++this.counter;
  }

  /** A handle that may write (or a change such as a truncate) begins: no pushes until it ends. */
  beginWrite(ino: Ino): void {
    const state = this.state(ino);
    state.writers++;
    state.generation = ++this.counter;
  }

  /** That handle was released or the change answered; reads from before it are stale. */
  endWrite(ino: Ino): void {
    const state = this.states.get(ino);
    if (state === undefined) return;
    state.writers = Math.max(0, state.writers - 1);
    state.generation = ++this.counter;
  }

  /** A handle that reads through the page cache (not direct_io) was opened, or released. */
  bufferedHandle(ino: Ino, opened: boolean): void {
    if (opened) this.state(ino).bufferedHandles++;
    else {
      const state = this.states.get(ino);
      if (state !== undefined) state.bufferedHandles = Math.max(0, state.bufferedHandles - 1);
    }
  }

  /**
   * The data path starts copying the whole file (`fileSizeBytes` now) into its disk cache because
   * it is read at random all over: where the blocks it verifies on the way go. The read pattern
   * that started the copy justifies caching the file in the kernel too, but only for handles
   * that read through the page cache, and only while nothing changes the file (the generation
   * is taken now: the slice lists the copy uses are at least this new).
   */
  fillSink(ino: Ino, fileSizeBytes: number): FillSink | null {
    const state = this.states.get(ino);
    if (state === undefined || state.bufferedHandles === 0 || state.writers > 0) return null;
    const generation = state.generation;
    return (fileOffsetBytes, data) => {
      // Whole pages only (the kernel marks a partly written page as not up to date anyway),
      // except the file's last one.
      const start = Math.ceil(fileOffsetBytes / PAGE_BYTES) * PAGE_BYTES;
      const dataEnd = Math.min(fileOffsetBytes + data.length, fileSizeBytes);
      const end = dataEnd === fileSizeBytes ? dataEnd : Math.floor(dataEnd / PAGE_BYTES) * PAGE_BYTES;
      if (end <= start || !this.mayPush(state, generation) || state.bufferedHandles === 0) {
        this.stats.dropped++;
        return Promise.resolve();
      }
      const bytes = data.subarray(start - fileOffsetBytes, end - fileOffsetBytes);
      // Not held to the queue's byte bound: the copy keeps these bytes charged to the memory
      // budget until the push settles, and has a bounded number of blocks in flight.
      return new Promise<void>((settled) =>
        this.enqueue({ ino, generation, offsetBytes: start, data: bytes, settled }),
      );
    };
  }

  /** Resolves once no push of `ino` is on its way to the kernel (call after `changed`). */
  settle(ino: Ino): Promise<void> {
    const state = this.states.get(ino);
    if (state === undefined || state.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => state.waiters.push(resolve));
  }

  /** An open file now serves reads of `ino`. */
  attach(ino: Ino, source: PushSource): void {
    this.state(ino).source = source;
  }

  /** The open file of `ino` was closed. */
  detach(ino: Ino, source: PushSource): void {
    const state = this.states.get(ino);
    if (state?.source === source) state.source = undefined;
  }

  /** The kernel forgot the inode: nothing of it is cached there any more. */
  forget(ino: Ino): void {
    const state = this.states.get(ino);
    if (state !== undefined && this.isIdle(state)) this.states.delete(ino);
  }

  /**
   * A read of [offset, offset + length) under `generation` was answered: push the aligned window
   * around it, if the read is smaller than a window. Larger reads are the kernel's readahead of
   * a stream, whose pages it caches by itself: pushing their surroundings would only copy bytes
   * the stream reads next anyway. The push goes out after the answer (setImmediate runs after
   * the reply was written).
   */
  afterRead(ino: Ino, generation: number, offsetBytes: number, lengthBytes: number): void {
    if (lengthBytes === 0 || lengthBytes >= PUSH_WINDOW_BYTES) return;
    const start = offsetBytes - (offsetBytes % PUSH_WINDOW_BYTES);
    const end = Math.ceil((offsetBytes + lengthBytes) / PUSH_WINDOW_BYTES) * PUSH_WINDOW_BYTES;
    const state = this.states.get(ino);
    const source = state?.source;
    if (state === undefined || source === undefined || !this.mayPush(state, generation)) return;
    source.cachedRange(start, end - start).then(
      (lent) => {
        if (lent === null || lent.data.length === 0) {
          lent?.done();
          this.stats.dropped++;
        } else this.enqueue({ ino, generation, offsetBytes: start, data: lent.data, done: lent.done });
      },
      () => this.stats.dropped++, // the read itself succeeded; the window is only a hint
    );
  }

  private mayPush(state: InodeState, generation: number): boolean {
    return state.generation === generation && state.writers === 0;
  }

  private enqueue(push: Push): void {
    if (push.settled === undefined && this.queuedBytes + push.data.length > MAX_QUEUED_PUSH_BYTES) {
      this.stats.dropped++;
      push.done?.();
      return;
    }
    this.queue.push(push);
    if (push.settled === undefined) this.queuedBytes += push.data.length;
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    while (this.inFlight < this.maxPushesInFlight && this.queue.length > 0) {
      const push = this.queue.shift()!;
      if (push.settled === undefined) this.queuedBytes -= push.data.length;
      const state = this.states.get(push.ino);
      // Checked here, on the main thread, right before the write goes to the pool.
      if (state === undefined || !this.mayPush(state, push.generation)) {
        this.stats.dropped++;
        push.settled?.();
        push.done?.();
        continue;
      }
      state.inFlight++;
      this.inFlight++;
      this.kernel.store(push.ino, push.offsetBytes, push.data).then(
        () => this.done(state, push, true),
        (error: unknown) => {
          this.done(state, push, false);
          // ENOTCONN: the session ended (unmount); nothing is cached any more.
          if (isFsError(error) && error.errno === Errno.ENOTCONN) return;
          if (!this.loggedFailure) {
            this.loggedFailure = true;
            this.log(`pushing read data into the kernel page cache failed (logged once): ${String(error)}`);
          }
        },
      );
    }
  };

  private done(state: InodeState, push: Push, ok: boolean): void {
    state.inFlight--;
    this.inFlight--;
    if (ok) {
      this.stats.pushes++;
      this.stats.pushedBytes += push.data.length;
      if (push.settled !== undefined) this.stats.fillPushedBytes += push.data.length;
    } else {
      this.stats.failed++;
    }
    push.settled?.();
    push.done?.();
    if (state.inFlight === 0 && state.waiters.length > 0) {
      const waiters = state.waiters;
      state.waiters = [];
      for (const resolve of waiters) resolve();
    }
    if (this.queue.length > 0) this.pump();
    this.prune();
  }

  private isIdle(state: InodeState): boolean {
    return (
      state.writers === 0 && state.inFlight === 0 && state.source === undefined && state.bufferedHandles === 0
    );
  }

  private prune(): void {
    if (this.states.size <= MAX_IDLE_STATES) return;
    for (const [ino, state] of this.states) {
      if (this.states.size <= MAX_IDLE_STATES) break;
      if (this.isIdle(state)) this.states.delete(ino);
    }
  }
}
