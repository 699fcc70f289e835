import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type SliceRef } from '../../src/common/index.js';
import { ChunkCoverage, coveredBytes } from '../../src/meta/allocation.js';
import { seededRandom } from '../rpc/helpers.js';

const piece = (id: number, chunkOffsetBytes: number, lengthBytes: number): SliceRef => ({
  id: asSliceId(id),
  sliceSizeBytes: lengthBytes,
  chunkOffsetBytes,
  sliceOffsetBytes: 0,
  lengthBytes,
  blockSizeBytes: 4096,
});

/** The reference: paint every byte, later slices on top; count bytes whose top slice has data. */
function naiveCovered(slices: readonly SliceRef[], chunkBytes: number): number {
  const top = new Uint8Array(chunkBytes);
  for (const s of slices)
    top.fill(s.id === 0 ? 1 : 2, s.chunkOffsetBytes, s.chunkOffsetBytes + s.lengthBytes);
  return top.reduce((sum, v) => sum + (v === 2 ? 1 : 0), 0);
}

describe('allocated bytes of a chunk (ChunkCoverage)', () => {
  it('counts data once, and a hole hides what lies under it but not what is laid after it', () => {
    assert.equal(coveredBytes([]), 0);
    assert.equal(coveredBytes([piece(1, 0, 100), piece(2, 50, 100)]), 150);
    assert.equal(coveredBytes([piece(1, 0, 100), piece(0, 20, 30)]), 70);
    assert.equal(coveredBytes([piece(1, 0, 100), piece(0, 20, 30), piece(2, 25, 10)]), 80);
    assert.equal(coveredBytes([piece(0, 0, 1000)]), 0);
    assert.equal(coveredBytes([piece(1, 10, 10), piece(2, 30, 10), piece(3, 20, 10)]), 30, 'gap filled');
    assert.equal(coveredBytes([piece(1, 0, 100), piece(0, 0, 100)]), 0);
  });

  it('appends laid one by one keep one range and count every byte', () => {
    const coverage = new ChunkCoverage();
    for (let at = 0; at < 64 * 4096; at += 4096) coverage.lay(piece(at + 1, at, 4096));
    assert.equal(coverage.coveredBytes, 64 * 4096);
  });

  it('matches painting byte by byte on random lists of writes and holes (seeded)', () => {
    const chunkBytes = 512;
    for (let seed = 1; seed <= 500; seed++) {
      const next = seededRandom(seed);
      const slices: SliceRef[] = [];
      const count = Math.floor(next() * 30);
      for (let i = 0; i < count; i++) {
        const from = Math.floor(next() * chunkBytes);
        const length = 1 + Math.floor(next() * (chunkBytes - from));
        slices.push(piece(next() < 0.3 ? 0 : i + 1, from, length));
      }
      const coverage = new ChunkCoverage();
      for (let i = 0; i < slices.length; i++) {
        coverage.lay(slices[i]);
        assert.equal(
          coverage.coveredBytes,
          naiveCovered(slices.slice(0, i + 1), chunkBytes),
          `seed ${seed}, after slice ${i}`,
        );
      }
    }
  });
});
