import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { seededRandom } from '../../src/object/wrappers/faults.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, isLongProfile, tempDirs, testSeed } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

interface Geometry {
  BLOCK: number;
  CHUNK: number;
  MAX_FILE: number;
  rounds: number;
}

/** Reads [offset, offset + length) and compares it with the model, with a message that helps. */
async function check(
  data: DataPath,
  table: SliceTable,
  model: Buffer,
  offset: number,
  length: number,
  step: string,
): Promise<void> {
  const got = await data.read(asIno(7), offset, length, table.chunkSlices, table.sizeBytes);
  const end = Math.min(offset + length, table.sizeBytes);
  const want = model.subarray(offset, Math.max(offset, end));
  if (!got.equals(want)) {
    let at = 0;
    while (at < got.length && got[at] === want[at]) at++;
    assert.fail(
      `${step}: read [${offset}, +${length}) differs from the model at file offset ${offset + at} (got ${got.length} bytes, want ${want.length})`,
    );
  }
}

// Small blocks stress slice/block/chunk arithmetic; 256 KiB blocks (4 segments) also exercise
// partial (segment) fetches of random reads.
const geometries: Geometry[] = [
  { BLOCK: 4096, CHUNK: 4 * 4096, MAX_FILE: 10 * 4 * 4096 + 123, rounds: isLongProfile ? 400 : 80 },
  {
    BLOCK: 256 * 1024,
    CHUNK: 1024 * 1024,
    MAX_FILE: 5 * 1024 * 1024 + 123,
    rounds: isLongProfile ? 120 : 25,
  },
];

describe('data path against a plain Buffer model', () => {
  for (const geometry of geometries) {
    it(`random writes, overwrites, truncates, reference copies and compactions read back exactly (${geometry.BLOCK}-byte blocks)`, async () => {
      await differential(geometry);
    });
  }
});

async function differential(geometry: Geometry): Promise<void> {
  const { BLOCK, CHUNK, MAX_FILE, rounds } = geometry;
  {
    const seed = testSeed(`data path differential, ${BLOCK}-byte blocks`);
    const random = seededRandom(seed);
    const int = (below: number) => Math.floor(random() * below);
    const table = new SliceTable(CHUNK, BLOCK);
    const store = await fileStore(await dirs.make());
    const data = createDataPath({
      store,
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      memoryBudgetBytes: 8 * (BLOCK + 64),
      allocateSliceIds: table.allocateSliceIds,
      maxInFlightUploads: 3,
      diskCacheDir: await dirs.make(),
      diskCacheBytes: 16 * BLOCK,
    });
    const model = Buffer.alloc(MAX_FILE * 2);
    for (let round = 0; round < rounds; round++) {
      const kind = random();
      let step: string;
      if (kind < 0.55) {
        const writer = data.openWriter(asIno(7));
        const writes = 1 + int(6);
        let end = 0;
        const parts: string[] = [];
        for (let i = 0; i < writes; i++) {
          // Half the writes continue the previous one: streams and random writes both.
          const offset = i > 0 && random() < 0.5 ? end : int(MAX_FILE);
          const length = 1 + int(random() < 0.2 ? 3 * CHUNK : BLOCK + 100);
          const bytes = Buffer.alloc(length);
          for (let j = 0; j < length; j++) bytes[j] = int(256);
          await writer.write(offset, bytes);
          bytes.copy(model, offset);
          end = offset + length;
          parts.push(`${offset}+${length}`);
        }
        const pendingEnd = writer.pendingEndBytes;
        table.commit(await writer.flush(), pendingEnd);
        step = `round ${round}: write ${parts.join(' ')}`;
      } else if (kind < 0.7) {
        const size = int(MAX_FILE);
        if (size < table.sizeBytes) model.fill(0, size, table.sizeBytes);
        table.truncate(size);
        step = `round ${round}: truncate ${size}`;
      } else if (kind < 0.85) {
        const src = int(MAX_FILE);
        const dst = int(MAX_FILE);
        const length = 1 + int(2 * CHUNK);
        const copy = Buffer.alloc(length);
        model.copy(copy, 0, src, Math.min(src + length, table.sizeBytes));
        // Bytes past the source's size copy as zeros, as the reference copy makes them.
        table.copyRange(src, dst, length);
        copy.copy(model, dst);
        step = `round ${round}: copy ${src}+${length} -> ${dst}`;
      } else {
        const chunkIndex = int(Math.ceil(MAX_FILE / CHUNK));
        const slices = table.chunks.get(chunkIndex) ?? [];
        table.chunks.set(chunkIndex, await data.compactChunk(slices, chunkIndex));
        step = `round ${round}: compact chunk ${chunkIndex} (${slices.length} slices)`;
      }
      for (let i = 0; i < 3; i++) {
        // Small reads (random ones fetch single segments) and big ones (many blocks).
        const length = random() < 0.5 ? 1 + int(8192) : 1 + int(2 * CHUNK);
        await check(data, table, model, int(table.sizeBytes + 10), length, step);
      }
    }
    await check(data, table, model, 0, table.sizeBytes + 100, 'final full read');
    const stats = data.stats();
    assert.ok(
      stats.memory.peakBytes <= stats.memory.limitBytes,
      `memory peak ${stats.memory.peakBytes} over the budget`,
    );
    await data.close();
  }
}
