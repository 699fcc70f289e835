import { Worker } from 'node:worker_threads';
import { bodyBytes, sealBlock } from './block-format.js';
import { adoptMemory, ownsItsMemory } from './block-memory.js';
import type { BlockRef } from './layout.js';

/** What the main thread sends the seal worker: the block's whole memory, transferred. */
export interface SealRequest {
  id: number;
  memory: ArrayBuffer;
  /** Where in `memory` the block starts (aligned buffers start past its beginning). */
  offset: number;
  block: BlockRef;
}

export interface SealReply {
  id: number;
  memory: ArrayBuffer;
  error?: string;
}

/** The worker's first message: its module loaded (the 'online' event comes before that). */
export interface SealReady {
  ready: true;
}

/**
 * Below this the thread hop (~25 µs each way here) costs more than checksumming in place. Streams
 * seal full 4 MiB blocks, whose SHA-256 (format SFB2) took ~12% of the main thread while writing;
 * their CRC-32 (SFB3) costs about a third of that, still worth keeping off the FUSE thread.
 */
const OFFLOAD_MIN_BYTES = 256 * 1024;
/**
 * What the thread costs in RSS: ~10 MiB measured alone (its V8 heap and malloc arena), while the
 * volume benchmark's mount peaked 31-35 MiB higher with it than without (648-652 vs 617 MiB of
 * the 662 allowed). The data path holds this much of its memory budget back for it.
 */
export const SEALER_THREAD_BYTES = 32 * 1024 * 1024;
/** Without work for this long the thread stops; restarting it takes ~20 ms. */
const IDLE_STOP_MS = 2000;
/**
 * After a thread could not start (a thread costs ~4 descriptors: a process at its `ulimit -n`
 * got EMFILE), blocks are sealed in place this long before starting one is tried again.
 */
const START_RETRY_MS = 5000;

/** Whether blocks of this size are sealed on the thread (so its memory needs a place in the budget). */
export function sealsOnThread(blockSizeBytes: number): boolean {
  return blockSizeBytes >= OFFLOAD_MIN_BYTES;
}

interface Waiter {
  resolve: (body: Buffer) => void;
  reject: (error: Error) => void;
  /** Where the block starts in the memory that comes back. */
  offset: number;
  bodyLength: number;
}

/** A block waiting for the thread to be ready: its memory is still on this thread. */
interface Queued {
  buffer: Buffer;
  block: BlockRef;
  resolve: (body: Buffer) => void;
  reject: (error: Error) => void;
}

/**
 * Seals blocks (checksum trailer, block-format.ts) for the uploader. Large blocks are sealed on
 * one worker thread, so the event loop that serves FUSE requests keeps copying the next writes
 * while the last block is hashed: their memory is transferred there and back, never copied.
 * The returned body is the same memory as the given buffer, which is unusable (detached)
 * meanwhile; the caller must keep using the returned body only.
 */
export class BlockSealer {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  private closed = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /**
   * Blocks given while the thread starts. Their memory moves only once it says it is ready: a
   * thread that fails to start (out of descriptors) would take it along, and the data with it.
   */
  private starting: Queued[] | null = null;
  private startRetryAtMs = 0;

  /** Whether the sealing thread is running (tests, stats). */
  get threadRunning(): boolean {
    return this.worker !== null;
  }

  /** Seals `buffer[0, block.blockLengthBytes)` as `block` (its identity is part of the checks). */
  seal(buffer: Buffer, block: BlockRef): Promise<Buffer> {
    const dataLength = block.blockLengthBytes;
    // Only a buffer that owns its ArrayBuffer can be transferred (small ones live in a pool).
    if (this.closed || dataLength < OFFLOAD_MIN_BYTES || !ownsItsMemory(buffer)) {
      return Promise.resolve(sealBlock(buffer, block));
    }
    const worker = this.ensureWorker();
    if (worker === null) return Promise.resolve(sealBlock(buffer, block));
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    return new Promise<Buffer>((resolve, reject) => {
      if (this.starting !== null) {
        this.starting.push({ buffer, block, resolve, reject });
        worker.ref();
        return;
      }
      this.post(worker, buffer, block, resolve, reject);
    });
  }

  private post(
    worker: Worker,
    buffer: Buffer,
    block: BlockRef,
    resolve: (body: Buffer) => void,
    reject: (error: Error) => void,
  ): void {
    const id = this.nextId++;
    // Read before the transfer detaches the buffer (a detached view's offset is 0).
    const offset = buffer.byteOffset;
    try {
      // seal() let only buffers owning their ArrayBuffer come this far.
      const memory = buffer.buffer as ArrayBuffer;
      worker.postMessage({ id, memory, offset, block } satisfies SealRequest, [memory]);
    } catch {
      // Not transferable after all (an ArrayBuffer Node marked as such): seal it here.
      resolve(sealBlock(buffer, block));
      return;
    }
    this.waiting.set(id, {
      resolve,
      reject,
      offset,
      bodyLength: bodyBytes(block.blockLengthBytes),
    });
    if (this.waiting.size === 1) worker.ref();
  }

  /** Seals the blocks that waited for a thread here instead (it failed to start, or close()). */
  private sealStartingInPlace(): void {
    const queued = this.starting ?? [];
    this.starting = null;
    for (const q of queued) {
      try {
        q.resolve(sealBlock(q.buffer, q.block));
      } catch (error) {
        q.reject(error as Error);
      }
    }
  }

  /** The running thread, one starting now, or null while starting one is not to be tried. */
  private ensureWorker(): Worker | null {
    if (this.worker !== null) return this.worker;
    if (Date.now() < this.startRetryAtMs) return null;
    const worker = new Worker(new URL('./seal-worker.js', import.meta.url));
    // Idle, it must not keep the process alive; while blocks are out it must (see seal).
    worker.unref();
    this.starting = [];
    worker.on('message', (reply: SealReply | SealReady) => {
      if ('ready' in reply) {
        if (this.worker !== worker) return;
        const queued = this.starting ?? [];
        this.starting = null;
        for (const q of queued) this.post(worker, q.buffer, q.block, q.resolve, q.reject);
        if (this.waiting.size === 0) worker.unref();
        return;
      }
      const waiter = this.waiting.get(reply.id);
      if (waiter === undefined) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) {
        worker.unref();
        this.idleTimer = setTimeout(() => this.stopIdle(worker), IDLE_STOP_MS);
        this.idleTimer.unref();
      }
      if (reply.error !== undefined) waiter.reject(new Error(`sealing a block failed: ${reply.error}`));
      else {
        adoptMemory(reply.memory);
        waiter.resolve(Buffer.from(reply.memory, waiter.offset, waiter.bodyLength));
      }
    });
    const fail = (error: Error): void => {
      // A thread stopped on purpose (idle, close) is no longer this.worker: nothing waits on it.
      if (this.worker !== worker) return;
      this.worker = null;
      if (this.starting !== null) {
        // It never got ready: nothing was transferred, and the blocks can be sealed here.
        this.startRetryAtMs = Date.now() + START_RETRY_MS;
        this.sealStartingInPlace();
      }
      this.rejectAll(`the block sealing thread stopped: ${error.message}`);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private rejectAll(message: string): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiters) w.reject(new Error(message));
  }

  private stopIdle(worker: Worker): void {
    this.idleTimer = null;
    if (this.worker !== worker || this.waiting.size > 0) return;
    this.worker = null;
    void worker.terminate();
  }

  /** Stops the worker; blocks still being sealed fail. Later calls seal on the calling thread. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    this.sealStartingInPlace();
    if (worker !== null) await worker.terminate();
    this.rejectAll('the data path was closed while a block was being sealed');
  }
}
