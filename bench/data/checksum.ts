// Why blocks carry CRC-32 (format SFB3, src/data/block-format.ts; SHA-256 in SFB2 before):
// throughput of the candidate checksums on 4 MiB buffers in this Node, and of sealing a whole
// 4 MiB block (64 segment checks plus the trailer), with the CRC-32 block-format.ts picked
// (native/crc32 unless STRATA_NATIVE_CRC32=0). "cold": 4 MiB pieces of a 512 MiB buffer, out of
// the CPU's caches as a block just read from disk mostly is. Run: node DIST/bench/data/checksum.js
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { asSliceId, loadNativeAddon } from '../../src/common/index.js';
import { bodyBytes, sealBlock } from '../../src/data/block-format.js';

const sizeBytes = 4 * 1024 * 1024;
const buffer = Buffer.alloc(sizeBytes);
for (let i = 0; i < buffer.length; i++) buffer[i] = (i * 31 + 7) & 255;

// CRC32C (Castagnoli), slice-by-8 table driven: the best a plain-JS CRC gets without SIMD.
const tables = Array.from({ length: 8 }, () => new Int32Array(256));
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  tables[0][i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let k = 1; k < 8; k++) tables[k][i] = (tables[k - 1][i] >>> 8) ^ tables[0][tables[k - 1][i] & 255];
}
const [t0, t1, t2, t3, t4, t5, t6, t7] = tables;
function crc32c(b: Buffer): number {
  let c = -1;
  let i = 0;
  for (const n = b.length - 7; i < n; i += 8) {
    const a = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) ^ c;
    c =
      t7[a & 255] ^
      t6[(a >>> 8) & 255] ^
      t5[(a >>> 16) & 255] ^
      t4[a >>> 24] ^
      t3[b[i + 4]] ^
      t2[b[i + 5]] ^
      t1[b[i + 6]] ^
      t0[b[i + 7]];
  }
  for (; i < b.length; i++) c = t0[(c ^ b[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}

function measure(name: string, run: () => unknown): void {
  run();
  const rounds = 48;
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `${name.padEnd(20)} ${((rounds * sizeBytes) / seconds / 2 ** 20).toFixed(0).padStart(6)} MiB/s`,
  );
}

for (const algorithm of ['sha256', 'sha1', 'md5', 'blake2b512', 'sha512-256']) {
  measure(algorithm, () => createHash(algorithm).update(buffer).digest());
}
measure('crc32c (JS)', () => crc32c(buffer));
measure('crc32 (zlib)', () => crc32(buffer));
const nativeCrc32 = loadNativeAddon<{ crc32?: (data: Uint8Array, value: number) => number }>('crc32')?.crc32;
if (nativeCrc32) measure('crc32 (native)', () => nativeCrc32(buffer, 0));
else console.log('crc32 (native): not built, or this CPU has no PCLMULQDQ');
const cold = Buffer.alloc(512 * 1024 * 1024, 0x5a);
let coldAt = 0;
const coldPiece = (): Buffer => {
  coldAt = (coldAt + sizeBytes) % cold.length;
  return cold.subarray(coldAt, coldAt + sizeBytes);
};
measure('crc32 (zlib, cold)', () => crc32(coldPiece()));
if (nativeCrc32) measure('crc32 (native, cold)', () => nativeCrc32(coldPiece(), 0));
const blockBuffer = Buffer.alloc(bodyBytes(sizeBytes));
buffer.copy(blockBuffer);
const block = { sliceId: asSliceId(12345), blockIndex: 2, blockLengthBytes: sizeBytes };
measure('sealBlock', () => sealBlock(blockBuffer, block));
