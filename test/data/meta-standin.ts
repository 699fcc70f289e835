import { asSliceId, type SliceId, type SliceRef, type SliceWrite } from '../../src/common/index.js';
import { resolvePieces, type Piece } from '../../src/data/layout.js';

/**
 * A tiny stand-in for the metadata service's data maps: per-chunk slice lists in overlay
 * order, a file size, and the slice-id allocator. Tests apply SliceWrites exactly as the
 * VFS would commit them.
 */
export class SliceTable {
  readonly chunks = new Map<number, SliceRef[]>();
  sizeBytes = 0;
  private nextId = 1;
  allocations = 0;

  constructor(
    readonly chunkSizeBytes: number,
    readonly blockSizeBytes: number,
  ) {}

  readonly allocateSliceIds = async (count: number): Promise<SliceId> => {
    this.allocations++;
    const first = this.nextId;
    this.nextId += count;
    return asSliceId(first);
  };

  readonly chunkSlices = async (chunkIndex: number): Promise<SliceRef[]> => this.chunks.get(chunkIndex) ?? [];

  commit(writes: SliceWrite[], endBytes: number): void {
    for (const write of writes) {
      const list = this.chunks.get(write.chunkIndex) ?? [];
      list.push(write.slice);
      this.chunks.set(write.chunkIndex, list);
    }
    this.sizeBytes = Math.max(this.sizeBytes, endBytes);
  }

  /** Adds `slice`-shaped pieces for [start, end) of the file, split at chunk boundaries. */
  private overlay(
    start: number,
    end: number,
    make: (chunkIndex: number, from: number, to: number) => SliceRef[],
  ): void {
    for (let pos = start; pos < end;) {
      const chunkIndex = Math.floor(pos / this.chunkSizeBytes);
      const chunkBase = chunkIndex * this.chunkSizeBytes;
      const to = Math.min(end, chunkBase + this.chunkSizeBytes);
      const list = this.chunks.get(chunkIndex) ?? [];
      list.push(...make(chunkIndex, pos - chunkBase, to - chunkBase));
      this.chunks.set(chunkIndex, list);
      pos = to;
    }
  }

  truncate(newSizeBytes: number): void {
    // Shrinking lays zeros over the cut part, so growing again reads zeros.
    if (newSizeBytes < this.sizeBytes) {
      this.overlay(newSizeBytes, this.sizeBytes, (_chunk, from, to) => [this.zero(from, to)]);
    }
    this.sizeBytes = newSizeBytes;
  }

  private zero(from: number, to: number): SliceRef {
    return {
      id: asSliceId(0),
      sliceSizeBytes: to - from,
      chunkOffsetBytes: from,
      sliceOffsetBytes: 0,
      lengthBytes: to - from,
      blockSizeBytes: this.blockSizeBytes,
    };
  }

  /**
   * Copies [srcOffset, +length) to dstOffset by reference, as MetaApi.copyFileRange does: the
   * destination gets SliceRefs into the source's slices (non-zero sliceOffsetBytes).
   */
  copyRange(srcOffset: number, dstOffset: number, length: number): void {
    const pieces: Array<{ fileOffset: number; piece: Piece }> = [];
    for (let pos = srcOffset; pos < srcOffset + length;) {
      const chunkIndex = Math.floor(pos / this.chunkSizeBytes);
      const chunkBase = chunkIndex * this.chunkSizeBytes;
      const to = Math.min(srcOffset + length, chunkBase + this.chunkSizeBytes);
      for (const piece of resolvePieces(this.chunks.get(chunkIndex) ?? [], pos - chunkBase, to - chunkBase)) {
        pieces.push({ fileOffset: chunkBase + piece.chunkOffsetBytes, piece });
      }
      pos = to;
    }
    for (const { fileOffset, piece } of pieces) {
      const dst = dstOffset + (fileOffset - srcOffset);
      const ref = piece.slice;
      this.overlay(dst, dst + piece.lengthBytes, (chunkIndex, from, to) => {
        if (!ref) return [this.zero(from, to)];
        const intoPiece = chunkIndex * this.chunkSizeBytes + from - dst;
        return [
          {
            ...ref,
            chunkOffsetBytes: from,
            sliceOffsetBytes:
              ref.sliceOffsetBytes + (piece.chunkOffsetBytes - ref.chunkOffsetBytes) + intoPiece,
            lengthBytes: to - from,
          },
        ];
      });
    }
    this.sizeBytes = Math.max(this.sizeBytes, dstOffset + length);
  }
}
