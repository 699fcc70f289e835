import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { asSliceId } from '../../src/common/index.js';
import { SLICE_RECORD_BYTES, decodeSlices, encodeSlices } from '../../src/meta/slice-codec.js';

describe('slice list codec', () => {
  it('round-trips any slice list, ids up to 2^53', () => {
    const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
    const sliceArb = fc.record({
      id: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).map(asSliceId),
      sliceSizeBytes: u32,
      chunkOffsetBytes: u32,
      sliceOffsetBytes: u32,
      lengthBytes: u32,
      blockSizeBytes: u32,
    });
    fc.assert(
      fc.property(fc.array(sliceArb, { maxLength: 20 }), (slices) => {
        const blob = encodeSlices(slices);
        assert.equal(blob.length, slices.length * SLICE_RECORD_BYTES);
        assert.deepEqual(
          decodeSlices(blob),
          slices.map((s) => ({ ...s })),
        );
      }),
    );
  });

  it('rejects a blob that is not a whole number of records', () => {
    assert.throws(() => decodeSlices(Buffer.alloc(SLICE_RECORD_BYTES + 1)), /corrupt chunk slice list/);
  });
});
