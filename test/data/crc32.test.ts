import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { asSliceId, loadNativeAddon, nativeAddonPath } from '../../src/common/index.js';
import { bodyBytes, SEGMENT_BYTES, sealBlock } from '../../src/data/block-format.js';
import { testSeed } from './helpers.js';

type Crc32 = (data: Uint8Array, value: number) => number;

const cpuCanFold = /\bpclmulqdq\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) && process.arch === 'x64';

function nativeCrc32(): Crc32 {
  const addon = loadNativeAddon<{ crc32?: Crc32 }>('crc32');
  assert.ok(addon, `native/crc32 is not built (${nativeAddonPath('crc32')}): run npm run build`);
  assert.ok(addon.crc32, 'the addon left crc32 out on a CPU with PCLMULQDQ');
  return addon.crc32;
}

describe('native CRC-32 (native/crc32)', { skip: cpuCanFold ? false : 'the CPU has no PCLMULQDQ' }, () => {
  it('gives zlib.crc32 results for every length up to 600 bytes, at odd alignments, with any start value', () => {
    const crc32 = nativeCrc32();
    const source = randomBytes(4096);
    for (let length = 0; length <= 600; length++) {
      for (const offset of [0, 1, 7, 15]) {
        const data = source.subarray(offset, offset + length);
        const start = (length * 2654435761) >>> 0;
        assert.equal(crc32(data, start), zlibCrc32(data, start), `length ${length} at offset ${offset}`);
        assert.equal(crc32(data, 0), zlibCrc32(data), `length ${length} at offset ${offset}, from 0`);
      }
    }
  });

  it('gives zlib.crc32 results for segments, whole blocks and random pieces', () => {
    const crc32 = nativeCrc32();
    const block = randomBytes(4 * 1024 * 1024 + 1000);
    for (const length of [SEGMENT_BYTES, SEGMENT_BYTES + 1, 1024 * 1024 - 3, block.length]) {
      assert.equal(
        crc32(block.subarray(0, length), 0xdeadbeef),
        zlibCrc32(block.subarray(0, length), 0xdeadbeef),
      );
    }
    fc.assert(
      fc.property(fc.nat(block.length), fc.nat(200_000), fc.nat(0xffff_ffff), (offset, length, start) => {
        const data = block.subarray(offset, offset + length);
        return crc32(data, start) === zlibCrc32(data, start);
      }),
      { seed: testSeed('native crc32 pieces'), numRuns: 300 },
    );
  });

  it('chains like zlib.crc32: the CRC of a whole equals the CRC of its second part started from the first', () => {
    const crc32 = nativeCrc32();
    const data = randomBytes(300_000);
    for (const split of [0, 1, 63, 64, 65_536, 299_999]) {
      assert.equal(crc32(data.subarray(split), crc32(data.subarray(0, split), 0)), zlibCrc32(data));
    }
  });

  it('refuses what is not bytes with a TypeError', () => {
    const crc32 = nativeCrc32() as unknown as (data: unknown, value?: unknown) => number;
    assert.throws(() => crc32('text', 0), TypeError);
    assert.throws(() => crc32(new Uint16Array(4), 0), TypeError);
    assert.throws(() => crc32(Buffer.alloc(4), 'x'), TypeError);
  });

  it('loads and computes in a worker thread too (the sealing thread seals blocks there)', async () => {
    const path = nativeAddonPath('crc32');
    const data = randomBytes(100_000);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       parentPort.postMessage(require(workerData.path).crc32(workerData.data, 0));`,
      { eval: true, workerData: { path, data } },
    );
    const result = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(result, zlibCrc32(data));
  });

  it('leaves the block format as it was: sealed slots are zlib CRC-32s of identity and segment', () => {
    const data = randomBytes(3 * SEGMENT_BYTES + 123);
    const buffer = Buffer.alloc(bodyBytes(data.length));
    data.copy(buffer);
    const block = { sliceId: asSliceId(0x1_2345_6789), blockIndex: 5, blockLengthBytes: data.length };
    const body = sealBlock(buffer, block);
    for (let s = 0; s < 4; s++) {
      const identity = Buffer.alloc(16);
      identity.writeUInt32LE(0x2345_6789, 0);
      identity.writeUInt32LE(1, 4);
      identity.writeUInt32LE(5, 8);
      identity.writeUInt32LE(s, 12);
      const segment = data.subarray(s * SEGMENT_BYTES, (s + 1) * SEGMENT_BYTES);
      assert.equal(
        body.readUInt32LE(data.length + s * 16),
        zlibCrc32(segment, zlibCrc32(identity)),
        `segment ${s}`,
      );
    }
  });
});
