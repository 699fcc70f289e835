import type { SliceId } from './types.js';

/**
 * One piece of a chunk's data map. A chunk is a fixed-size window of a file (volume
 * `chunkSizeBytes`); its content is the overlay of its slices in order, later ones on top.
 * Bytes no slice covers read as zeros.
 */
export interface SliceRef {
  /** 0 means "zeros" (a punched hole or a truncate-then-extend), no object behind it. */
  id: SliceId;
  /** Length of the whole immutable slice object data (all its blocks), in bytes. */
  sliceSizeBytes: number;
  /** Where in the chunk this piece starts. */
  chunkOffsetBytes: number;
  /** Where in the slice's data this piece starts (non-zero after a partial overwrite or a reference copy). */
  sliceOffsetBytes: number;
  lengthBytes: number;
  /** The block size the slice was written with (blocks are objects of at most this size). */
  blockSizeBytes: number;
}

/** A write the VFS has uploaded and now commits: slice `slice` becomes the top layer of `chunkIndex`. */
export interface SliceWrite {
  chunkIndex: number;
  slice: SliceRef;
}
