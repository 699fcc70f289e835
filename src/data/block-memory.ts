import { allocDirectBuffer } from '../object/index.js';

/**
 * ArrayBuffers that belong to one block buffer alone: its memory may be transferred to the seal
 * thread and back without taking anything else along. A buffer spanning its whole ArrayBuffer is
 * such a buffer too; allocDirectBuffer's are not recognisable that way (the block starts on a
 * 4 KiB boundary inside slightly larger memory), so their memory is remembered here, and so is
 * the memory that comes back from a transfer.
 */
const ownedMemory = new WeakSet<ArrayBuffer>();

/**
 * Memory for a block buffer of `bytes`: the file store can read whole objects into it past the
 * page cache (allocDirectBuffer), and the seal thread may take it.
 */
export function allocBlockBuffer(bytes: number): Buffer {
  const buffer = allocDirectBuffer(bytes);
  ownedMemory.add(buffer.buffer as ArrayBuffer);
  return buffer;
}

/** Whether nothing but `buffer` uses its memory (allocBlockBuffer's, or all of an ArrayBuffer). */
export function ownsItsMemory(buffer: Buffer): boolean {
  const memory = buffer.buffer;
  if (!(memory instanceof ArrayBuffer)) return false;
  return ownedMemory.has(memory) || (buffer.byteOffset === 0 && buffer.byteLength === memory.byteLength);
}

/** Memory back from a transfer of a buffer that owned it: owned by the buffer made over it. */
export function adoptMemory(memory: ArrayBuffer): void {
  ownedMemory.add(memory);
}
