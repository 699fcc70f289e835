import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type SliceRef } from '../../src/common/index.js';
import { resolvePieces, type Piece } from '../../src/data/layout.js';

/** The painter's algorithm resolvePieces used before its sweep: each slice painted over the list. */
function paint(slices: readonly SliceRef[], start: number, end: number): Piece[] {
  let pieces: Piece[] = [
    { chunkOffsetBytes: start, lengthBytes: end - start, slice: null, covered: false, topIndex: -1 },
  ];
  slices.forEach((slice, index) => {
    const sliceStart = Math.max(start, slice.chunkOffsetBytes);
    const sliceEnd = Math.min(end, slice.chunkOffsetBytes + slice.lengthBytes);
    if (sliceEnd <= sliceStart) return;
    const top: Piece = {
      chunkOffsetBytes: sliceStart,
      lengthBytes: sliceEnd - sliceStart,
      slice: (slice.id as number) === 0 ? null : slice,
      covered: true,
      topIndex: index,
    };
    const next: Piece[] = [];
    let placed = false;
    for (const piece of pieces) {
      const pieceEnd = piece.chunkOffsetBytes + piece.lengthBytes;
      if (pieceEnd <= sliceStart || piece.chunkOffsetBytes >= sliceEnd) {
        if (!placed && piece.chunkOffsetBytes >= sliceEnd) {
          next.push(top);
          placed = true;
        }
        next.push(piece);
        continue;
      }
      if (piece.chunkOffsetBytes < sliceStart) {
        next.push({ ...piece, lengthBytes: sliceStart - piece.chunkOffsetBytes });
      }
      if (!placed) {
        next.push(top);
        placed = true;
      }
      if (pieceEnd > sliceEnd) {
        next.push({ ...piece, chunkOffsetBytes: sliceEnd, lengthBytes: pieceEnd - sliceEnd });
      }
    }
    if (!placed) next.push(top);
    pieces = next;
  });
  return pieces;
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
}

describe('resolvePieces', () => {
  it('matches painting each slice over the list, on random overlays (zero slices, edges, ranges)', () => {
    const seed = Number(process.env.STRATA_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = seeded(seed);
    const chunk = 4096;
    for (let round = 0; round < 2000; round++) {
      const count = Math.floor(random() * (round % 10 === 0 ? 200 : 12));
      const slices: SliceRef[] = Array.from({ length: count }, (_, i) => {
        const offset = Math.floor(random() * chunk);
        const length = 1 + Math.floor(random() * (chunk - offset));
        return {
          // One in five is a zero slice (a hole laid by truncate or punch).
          id: asSliceId(random() < 0.2 ? 0 : i + 1),
          sliceSizeBytes: length,
          chunkOffsetBytes: offset,
          sliceOffsetBytes: 0,
          lengthBytes: length,
          blockSizeBytes: 1024,
        };
      });
      const start = random() < 0.5 ? 0 : Math.floor(random() * chunk);
      const end = random() < 0.5 ? chunk : start + Math.floor(random() * (chunk - start + 1));
      assert.deepEqual(
        resolvePieces(slices, start, end),
        paint(slices, start, end),
        `seed ${seed} (replay with STRATA_SEED=${seed}), round ${round}: ${count} slices over [${start}, ${end})`,
      );
    }
  });
});
