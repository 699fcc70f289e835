import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { asIno } from '../../src/common/index.js';
import { createDataPath } from '../../src/data/index.js';
import { seededRandom } from '../../src/object/wrappers/faults.js';
import { withFaults, withRetry } from '../../src/object/index.js';
import { SliceTable } from './meta-standin.js';
import { fileStore, isLongProfile, tempDirs, testSeed } from './helpers.js';

const dirs = tempDirs();
after(() => dirs.cleanup());

const BLOCK = 4096;
const CHUNK = 4 * BLOCK;
const MAX_FILE = 6 * CHUNK;

describe('data path under concurrency and a flaky store', () => {
  it('several files written, read and compacted at once through faults all match their models', async () => {
    const seed = testSeed('data path concurrency');
    const random = seededRandom(seed);
    const int = (below: number) => Math.floor(random() * below);
    const ids = new SliceTable(CHUNK, BLOCK);
    const faulty = withFaults(await fileStore(await dirs.make()), {
      seed,
      errorRate: 0.05,
      truncateRate: 0.05,
      corruptRate: 0.05,
      latencyMs: 1,
    });
    const data = createDataPath({
      store: withRetry(faulty, { baseDelayMs: 1, maxDelayMs: 5, maxAttempts: 30 }),
      blockSizeBytes: BLOCK,
      chunkSizeBytes: CHUNK,
      // Room for 6 blocks: 6 files with open slices keep pressure on all the time.
      memoryBudgetBytes: 6 * (BLOCK + 40),
      gcHeadroomBytes: 0,
      maxInFlightUploads: 3,
      maxInFlightFetches: 4,
      corruptRetries: 30,
      allocateSliceIds: ids.allocateSliceIds,
      diskCacheDir: await dirs.make(),
      diskCacheBytes: 12 * BLOCK,
    });
    const files = Array.from({ length: 6 }, (_, i) => ({
      ino: asIno(10 + i),
      table: new SliceTable(CHUNK, BLOCK),
      model: Buffer.alloc(MAX_FILE + 2 * CHUNK),
    }));
    const rounds = isLongProfile ? 60 : 15;
    for (let round = 0; round < rounds; round++) {
      // Plan every file's step first so the PRNG sequence does not depend on timing.
      const steps = files.map((file) => {
        const kind = random();
        const writes = Array.from({ length: 1 + int(5) }, () => {
          const offset = int(MAX_FILE);
          const bytes = Buffer.alloc(1 + int(2 * BLOCK));
          for (let j = 0; j < bytes.length; j++) bytes[j] = int(256);
          return { offset, bytes };
        });
        const reads = Array.from({ length: 3 }, () => ({ offset: int(MAX_FILE), length: 1 + int(CHUNK) }));
        return { file, kind, writes, reads, chunkIndex: int(MAX_FILE / CHUNK) };
      });
      await Promise.all(
        steps.map(async ({ file, kind, writes, reads, chunkIndex }) => {
          if (kind < 0.7) {
            const writer = data.openWriter(file.ino);
            // Writes of one handle go in parallel, as the kernel may send them.
            await Promise.all(writes.map((w) => writer.write(w.offset, w.bytes)));
            for (const w of writes) w.bytes.copy(file.model, w.offset);
            const end = writer.pendingEndBytes;
            file.table.commit(await writer.flush(), end);
          } else {
            const slices = file.table.chunks.get(chunkIndex) ?? [];
            file.table.chunks.set(chunkIndex, await data.compactChunk(slices, chunkIndex));
          }
          for (const r of reads) {
            const got = await data.read(
              file.ino,
              r.offset,
              r.length,
              file.table.chunkSlices,
              file.table.sizeBytes,
            );
            const want = file.model.subarray(
              r.offset,
              Math.max(r.offset, Math.min(r.offset + r.length, file.table.sizeBytes)),
            );
            assert.ok(
              got.equals(want),
              `round ${round}, inode ${file.ino}: read ${r.offset}+${r.length} differs`,
            );
          }
        }),
      );
    }
    const stats = data.stats();
    assert.ok(stats.memory.peakBytes <= stats.memory.limitBytes);
    assert.ok(
      faulty.stats.errors > 0 && faulty.stats.corrupted + faulty.stats.truncated > 0,
      'the faults never fired',
    );
    await data.close();
  });
});
