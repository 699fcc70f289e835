import { FRAME_HEADER_BYTES } from './codec.js';

const INITIAL_POOL_BYTES = 16 * 1024;
/** A pool grown past this for one big frame is dropped afterwards rather than kept per connection. */
const KEEP_POOL_BYTES = 256 * 1024;

/** Thrown by FrameDecoder.push when a header announces a frame over the limit: the stream is unusable. */
export class FrameTooLargeError extends Error {
  constructor(
    readonly frameBytes: number,
    readonly maxFrameBytes: number,
  ) {
    super(`frame of ${frameBytes} bytes exceeds the ${maxFrameBytes}-byte limit`);
  }
}

/**
 * Splits a byte stream into length-prefixed frames. Frames that arrive whole inside one chunk
 * are handed out as subarrays of that chunk (no copy); only a frame split across chunks is
 * assembled in a pooled buffer. The payload passed to `onFrame` is valid only during the call.
 */
export class FrameDecoder {
  private pool: Buffer | null = null;
  private pooledBytes = 0;
  /** Payload length of the frame being assembled in the pool, -1 while its header is incomplete. */
  private pooledFrameBytes = -1;
  private stopped = false;

  constructor(
    private maxFrameBytes: number,
    private readonly onFrame: (payload: Buffer) => void,
  ) {}

  /** Changes the limit for frames whose header has not been read yet (e.g. once authenticated). */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Stops delivering frames, also the rest of the current chunk (the connection is closing). */
  stop(): void {
    this.stopped = true;
    this.pool = null;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    if (this.pooledBytes > 0) {
      offset = this.continuePooled(chunk);
      if (this.pooledBytes > 0) return; // the chunk was used up by the pooled frame
    }
    const end = chunk.length;
    while (!this.stopped && end - offset >= FRAME_HEADER_BYTES) {
      const frameBytes = chunk.readUInt32BE(offset);
      if (frameBytes > this.maxFrameBytes) throw new FrameTooLargeError(frameBytes, this.maxFrameBytes);
      const frameEnd = offset + FRAME_HEADER_BYTES + frameBytes;
      if (frameEnd > end) break;
      this.onFrame(chunk.subarray(offset + FRAME_HEADER_BYTES, frameEnd));
      offset = frameEnd;
    }
    if (!this.stopped && offset < end) this.startPooled(chunk, offset);
  }

  private startPooled(chunk: Buffer, offset: number): void {
    const bytes = chunk.length - offset;
    let frameBytes = -1;
    if (bytes >= FRAME_HEADER_BYTES) {
      frameBytes = chunk.readUInt32BE(offset);
      if (frameBytes > this.maxFrameBytes) throw new FrameTooLargeError(frameBytes, this.maxFrameBytes);
    }
    this.ensurePool(Math.max(bytes, frameBytes + FRAME_HEADER_BYTES));
    chunk.copy(this.pool as Buffer, 0, offset);
    this.pooledBytes = bytes;
    this.pooledFrameBytes = frameBytes;
  }

  /** Feeds the pooled frame from the chunk; returns how many bytes of the chunk it took. */
  private continuePooled(chunk: Buffer): number {
    let offset = 0;
    let pool = this.pool as Buffer;
    if (this.pooledFrameBytes < 0) {
      const headerBytes = Math.min(FRAME_HEADER_BYTES - this.pooledBytes, chunk.length);
      chunk.copy(pool, this.pooledBytes, 0, headerBytes);
      this.pooledBytes += headerBytes;
      offset = headerBytes;
      if (this.pooledBytes < FRAME_HEADER_BYTES) return offset;
      const frameBytes = pool.readUInt32BE(0);
      if (frameBytes > this.maxFrameBytes) throw new FrameTooLargeError(frameBytes, this.maxFrameBytes);
      this.pooledFrameBytes = frameBytes;
      pool = this.ensurePool(frameBytes + FRAME_HEADER_BYTES);
    }
    const frameEnd = FRAME_HEADER_BYTES + this.pooledFrameBytes;
    const take = Math.min(frameEnd - this.pooledBytes, chunk.length - offset);
    chunk.copy(pool, this.pooledBytes, offset, offset + take);
    this.pooledBytes += take;
    offset += take;
    if (this.pooledBytes === frameEnd) {
      this.pooledBytes = 0;
      this.pooledFrameBytes = -1;
      this.onFrame(pool.subarray(FRAME_HEADER_BYTES, frameEnd));
      if (pool.length > KEEP_POOL_BYTES) this.pool = null;
    }
    return offset;
  }

  /** Makes the pool hold at least `bytes`, keeping what is already assembled. */
  private ensurePool(bytes: number): Buffer {
    const pool = this.pool;
    if (pool && pool.length >= bytes) return pool;
    const grown = Buffer.allocUnsafe(Math.max(bytes, INITIAL_POOL_BYTES, pool ? pool.length * 2 : 0));
    if (pool && this.pooledBytes > 0) pool.copy(grown, 0, 0, this.pooledBytes);
    this.pool = grown;
    return grown;
  }
}
