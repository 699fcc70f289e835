import {
  Errno,
  FsError,
  fsError,
  isOutOfSpace,
  type Ino,
  type SliceId,
  type SliceWrite,
} from '../common/index.js';
import { bodyBytes } from './block-format.js';
import { allocBlockBuffer } from './block-memory.js';
import type { MemoryBudget } from './budget.js';
import type { BlockBufferPool } from './buffer-pool.js';
import type { FileWriter } from './api.js';
import type { SliceIdPool, Uploader } from './uploader.js';

/**
 * First buffer of a slice's first block (one page); small files stay small, streams grow fast.
 * A larger one costs small files in garbage collection: block memory lies outside the
 * JavaScript heap, and with a 64 KiB first buffer for each of thousands of 4 KiB files V8 ran a
 * full collection every ~120 files instead of its cheap young-generation scavenges, 18-26% of the
 * mount's CPU per file (bench/RESULTS.md, Mounted volume, session 22).
 */
const FIRST_BUFFER_BYTES = 4 * 1024;

/** File offsets are JS numbers: exact up to 2^53 - 1, so no byte of a file may lie past that. */
const MAX_FILE_END_BYTES = Number.MAX_SAFE_INTEGER;

/** A run of a slice's bytes that lands at one place in the chunk. */
interface Segment {
  chunkOffsetBytes: number;
  sliceOffsetBytes: number;
  lengthBytes: number;
}

/**
 * A slice being written: the bytes of one chunk's writes, in the order they came, uploaded
 * block by block. Each segment is where a run of them lands in the chunk.
 */
interface OpenSlice {
  chunkIndex: number;
  segments: Segment[];
  lengthBytes: number;
  id: Promise<SliceId> | null;
  /** The block being filled, with room for its trailer; null between blocks. */
  buffer: Buffer | null;
  /** Data bytes `buffer` can hold. */
  capacityBytes: number;
  chargedBytes: number;
  blockIndex: number;
  fillBytes: number;
}

export interface WriterContext {
  budget: MemoryBudget;
  /** Full-size block buffers to reuse (each with its charge) before allocating new ones. */
  pool: BlockBufferPool;
  uploader: Uploader;
  ids: SliceIdPool;
  blockSizeBytes: number;
  chunkSizeBytes: number;
  storeDescription: string;
  /** Tells the data path this writer holds partial blocks that pressure may force out. */
  holdsBuffers(writer: Writer, holds: boolean): void;
  /** Told why a flush lost data (the mount log, rate-limited); the caller gets the error too. */
  reportLoss?: (message: string) => void;
}

/**
 * Buffers one handle's writes per chunk. Every write appends its bytes to the chunk's open
 * slice: a contiguous one extends the last segment, any other starts a new segment. At flush
 * each segment becomes one reference into the same slice, committed in write order so later
 * writes overlay earlier ones. So scattered small writes (databases, random I/O, a file written
 * backwards) share block objects instead of costing one object each, and objects are still
 * never rewritten. Full blocks upload at once; the last partial block of a slice waits for
 * flush() or for memory pressure.
 */
export class Writer implements FileWriter {
  private readonly open = new Map<number, OpenSlice>();
  private slices: OpenSlice[] = [];
  private readonly uploads = new Set<Promise<void>>();
  /** Blocks handed to the uploader since the last flush: deleted if that flush fails. */
  private sealedBlocks: { sliceId: Promise<SliceId>; blockIndex: number; blockLengthBytes: number }[] = [];
  private firstError: unknown = null;
  /** Memory acquired while waiting, not yet turned into a buffer. */
  private reserveBytes = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private pendingEnd = 0;

  constructor(
    readonly ino: Ino,
    private readonly ctx: WriterContext,
  ) {}

  get pendingBytes(): number {
    return this.pending;
  }

  get pendingEndBytes(): number {
    return this.pendingEnd;
  }

  /** Writes and flushes of one handle run one at a time: the kernel may send them in parallel. */
  private serialize<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.tail.then(operation);
    this.tail = run.catch(() => undefined);
    return run;
  }

  write(offset: number, data: Buffer): Promise<void> {
    if (data.length === 0) return Promise.resolve();
    if (offset < 0 || !Number.isInteger(offset)) {
      return Promise.reject(fsError.EINVAL(`write at invalid offset ${offset} of inode ${this.ino}`));
    }
    // Offsets are exact only below 2^53: past that a write would land on the wrong bytes. Linux
    // says EFBIG for writes past a file system's largest file, and programs (fio, dd) expect it.
    if (offset + data.length > MAX_FILE_END_BYTES) {
      return Promise.reject(
        fsError.EFBIG(
          `writing ${data.length} bytes at offset ${offset} of inode ${this.ino} would pass the largest ` +
            `file size StrataFS keeps (2^53-1 bytes)`,
        ),
      );
    }
    return this.serialize(async () => {
      // The data since the last flush is lost already: say so now, as a full local disk does,
      // rather than buffer and upload more for nothing. flush() reports it again.
      if (this.firstError !== null) throw this.uploadFailure(this.firstError);
      try {
        await this.append(offset, data);
      } finally {
        if (this.reserveBytes > 0) {
          this.ctx.budget.release(this.reserveBytes);
          this.reserveBytes = 0;
        }
      }
      this.pending += data.length;
      this.pendingEnd = Math.max(this.pendingEnd, offset + data.length);
    });
  }

  private async append(offset: number, data: Buffer): Promise<void> {
    const { chunkSizeBytes, blockSizeBytes } = this.ctx;
    let done = 0;
    while (done < data.length) {
      const fileOffset = offset + done;
      const chunkIndex = Math.floor(fileOffset / chunkSizeBytes);
      const inChunk = fileOffset - chunkIndex * chunkSizeBytes;
      let slice = this.open.get(chunkIndex);
      // A slice holds at most a chunk's worth of bytes, as the metadata service requires.
      if (slice && slice.lengthBytes >= chunkSizeBytes) {
        this.sealSlice(slice);
        slice = undefined;
      }
      if (!slice) {
        slice = {
          chunkIndex,
          segments: [],
          lengthBytes: 0,
          id: null,
          buffer: null,
          capacityBytes: 0,
          chargedBytes: 0,
          blockIndex: 0,
          fillBytes: 0,
        };
        this.open.set(chunkIndex, slice);
        this.slices.push(slice);
      }
      const count = Math.min(
        data.length - done,
        chunkSizeBytes - inChunk,
        chunkSizeBytes - slice.lengthBytes,
        blockSizeBytes - slice.fillBytes,
      );
      if (!this.ensureCapacity(slice, slice.fillBytes + count)) {
        // Wait for memory, then look again: while we waited, pressure may have sealed the slice.
        const missing = this.growthBytes(slice, slice.fillBytes + count) - this.reserveBytes;
        const charged = this.ctx.budget.charged(missing);
        await this.ctx.budget.acquire(missing);
        this.reserveBytes += charged;
        continue;
      }
      // Wait first, then look at the segments: pressure may have sealed the slice meanwhile.
      const last = slice.segments[slice.segments.length - 1];
      if (
        last !== undefined &&
        last.chunkOffsetBytes + last.lengthBytes === inChunk &&
        last.sliceOffsetBytes + last.lengthBytes === slice.lengthBytes
      ) {
        last.lengthBytes += count;
      } else {
        slice.segments.push({
          chunkOffsetBytes: inChunk,
          sliceOffsetBytes: slice.lengthBytes,
          lengthBytes: count,
        });
      }
      data.copy(slice.buffer!, slice.fillBytes, done, done + count);
      slice.fillBytes += count;
      slice.lengthBytes += count;
      done += count;
      if (slice.fillBytes === blockSizeBytes) this.sealBlock(slice);
    }
  }

  /** The data capacity (trailer room comes on top) to hold `neededBytes` of the current block. */
  private capacityFor(slice: OpenSlice, neededBytes: number): number {
    const { blockSizeBytes } = this.ctx;
    // Past the first block the slice is a stream: take whole blocks, no regrowth copies.
    // So does a slice whose first write already fills a quarter block (1 MiB FUSE writes).
    if (slice.blockIndex > 0 || neededBytes * 4 >= blockSizeBytes) return blockSizeBytes;
    let capacity = Math.max(FIRST_BUFFER_BYTES, slice.capacityBytes);
    while (capacity < neededBytes) capacity *= 2;
    return Math.min(capacity, blockSizeBytes);
  }

  private growthBytes(slice: OpenSlice, neededBytes: number): number {
    return bodyBytes(this.capacityFor(slice, neededBytes)) - slice.chargedBytes;
  }

  /** Grows the block buffer if needed, with memory from the reserve or the budget; false if it must wait. */
  private ensureCapacity(slice: OpenSlice, neededBytes: number): boolean {
    if (slice.buffer && slice.capacityBytes >= neededBytes) return true;
    const capacity = this.capacityFor(slice, neededBytes);
    const pooled = bodyBytes(capacity) === this.ctx.pool.bufferBytes ? this.ctx.pool.take() : null;
    if (pooled !== null) {
      // Its charge comes with it: the smaller buffer's (if any) goes back.
      if (slice.chargedBytes > 0) this.ctx.budget.release(slice.chargedBytes);
      this.useBuffer(slice, pooled, capacity);
      return true;
    }
    const delta = bodyBytes(capacity) - slice.chargedBytes;
    if (this.reserveBytes >= delta) {
      this.reserveBytes -= delta;
    } else if (!this.ctx.budget.tryAcquire(delta - this.reserveBytes)) {
      return false;
    } else {
      this.reserveBytes = 0;
    }
    this.useBuffer(slice, allocBlockBuffer(bodyBytes(capacity)), capacity);
    return true;
  }

  /** Makes `grown` (charged `bodyBytes(capacity)`) the slice's block buffer. */
  private useBuffer(slice: OpenSlice, grown: Buffer, capacity: number): void {
    if (slice.buffer) slice.buffer.copy(grown, 0, 0, slice.fillBytes);
    else this.ctx.holdsBuffers(this, true);
    slice.buffer = grown;
    slice.capacityBytes = capacity;
    slice.chargedBytes = bodyBytes(capacity);
  }

  private sealBlock(slice: OpenSlice): void {
    if (!slice.buffer || slice.fillBytes === 0) return;
    slice.id ??= this.ctx.ids.take();
    const upload = this.ctx.uploader.upload(
      slice.id,
      slice.blockIndex,
      slice.buffer,
      slice.fillBytes,
      slice.chargedBytes,
    );
    this.uploads.add(upload);
    this.sealedBlocks.push({
      sliceId: slice.id,
      blockIndex: slice.blockIndex,
      blockLengthBytes: slice.fillBytes,
    });
    upload.then(
      () => this.uploads.delete(upload),
      (error: unknown) => {
        this.firstError ??= error;
        this.uploads.delete(upload);
      },
    );
    slice.buffer = null;
    slice.capacityBytes = 0;
    slice.chargedBytes = 0;
    slice.blockIndex++;
    slice.fillBytes = 0;
  }

  private sealSlice(slice: OpenSlice): void {
    this.sealBlock(slice);
    if (this.open.get(slice.chunkIndex) === slice) this.open.delete(slice.chunkIndex);
    if (this.open.size === 0) this.ctx.holdsBuffers(this, false);
  }

  /** Called under memory pressure: uploads every partial block now (ending those slices). */
  sealAll(): number {
    let sealedBytes = 0;
    for (const slice of [...this.open.values()]) {
      sealedBytes += slice.chargedBytes;
      this.sealSlice(slice);
    }
    return sealedBytes;
  }

  /** Bytes held in partial block buffers. */
  get bufferedBytes(): number {
    let bytes = 0;
    for (const slice of this.open.values()) bytes += slice.chargedBytes;
    return bytes;
  }

  flush(): Promise<SliceWrite[]> {
    return this.serialize(async () => {
      this.sealAll();
      while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
      const slices = this.slices;
      this.slices = [];
      this.pending = 0;
      this.pendingEnd = 0;
      const error = this.firstError;
      this.firstError = null;
      const sealed = this.sealedBlocks;
      this.sealedBlocks = [];
      if (error !== null) {
        this.ctx.uploader.discard(sealed);
        await this.releaseIds(slices);
        const failure = this.uploadFailure(error);
        this.ctx.reportLoss?.(failure.message);
        throw failure;
      }
      const writes: SliceWrite[] = [];
      for (const slice of slices) {
        // A slice that pressure sealed before its first byte landed holds nothing.
        if (slice.lengthBytes === 0) {
          await this.releaseIds([slice]);
          continue;
        }
        const id = await slice.id!;
        for (const segment of slice.segments) {
          writes.push({
            chunkIndex: slice.chunkIndex,
            slice: {
              id,
              sliceSizeBytes: slice.lengthBytes,
              chunkOffsetBytes: segment.chunkOffsetBytes,
              sliceOffsetBytes: segment.sliceOffsetBytes,
              lengthBytes: segment.lengthBytes,
              blockSizeBytes: this.ctx.blockSizeBytes,
            },
          });
        }
      }
      return writes;
    });
  }

  /**
   * What write/flush report after an upload failed: ENOSPC when the store's disk is full (what
   * programs expect from a full disk, and what tells the user to free space), EIO otherwise.
   */
  private uploadFailure(error: unknown): FsError {
    const reason = error instanceof Error ? error.message : String(error);
    if (isOutOfSpace(error)) {
      return new FsError(
        Errno.ENOSPC,
        `writing inode ${this.ino}: ${this.ctx.storeDescription} is out of space (${reason}); data written ` +
          `since the last successful fsync/close was not saved: free space there and write it again`,
        { cause: error },
      );
    }
    return fsError.EIO(
      `writing inode ${this.ino}: uploading data to ${this.ctx.storeDescription} failed (${reason}); ` +
        `data written since the last successful fsync/close was not saved`,
      error,
    );
  }

  /** Given-up slices no longer hold this mount's slice floor down (SliceIdPool). */
  private async releaseIds(slices: readonly OpenSlice[]): Promise<void> {
    const taken = await Promise.allSettled(slices.flatMap((s) => (s.id === null ? [] : [s.id])));
    this.ctx.ids.release(taken.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])));
  }

  abort(): Promise<void> {
    return this.serialize(async () => {
      for (const slice of this.open.values()) {
        if (slice.chargedBytes > 0) this.ctx.budget.release(slice.chargedBytes);
        slice.buffer = null;
        slice.capacityBytes = 0;
        slice.chargedBytes = 0;
      }
      this.open.clear();
      this.ctx.holdsBuffers(this, false);
      while (this.uploads.size > 0) await Promise.allSettled([...this.uploads]);
      this.ctx.uploader.discard(this.sealedBlocks);
      this.sealedBlocks = [];
      await this.releaseIds(this.slices);
      this.slices = [];
      this.firstError = null;
      this.pending = 0;
      this.pendingEnd = 0;
    });
  }
}
