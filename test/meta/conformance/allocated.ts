import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asSliceId, type Ino } from '../../../src/common/index.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  coveredBytes,
  type MetaService,
} from '../../../src/meta/index.js';
import { ROOT, file, root, withVolume, type EngineFixture } from './fixture.js';
import { CHUNK, slice, smallChunks, write } from './slices.js';

const USAGE_ALIGN = 4096;

/** The file's allocated bytes as getattr answers them, and the volume's used bytes. */
async function usage(svc: MetaService, ino: Ino): Promise<{ allocated: number | undefined; used: number }> {
  return { allocated: (await svc.getattr(ino)).allocatedBytes, used: (await svc.statfs()).usedBytes };
}

const aligned = (bytes: number) => Math.ceil(bytes / USAGE_ALIGN) * USAGE_ALIGN;

/**
 * Allocated bytes (st_blocks): what a file's data map covers with data, kept exact through every
 * change of a chunk list, and the volume's used bytes (statfs) as their sum in 4 KiB units.
 */
export function allocatedTests(fx: EngineFixture): void {
  describe(`${fx.name}: allocated bytes`, () => {
    it('writes count the bytes they cover once: an overwrite adds nothing, a sparse write only its bytes', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          assert.equal(f.allocatedBytes, 0);
          assert.equal((await write(svc, f.ino, 0, slice(1, 0, 8192))).allocatedBytes, 8192);
          assert.equal((await write(svc, f.ino, 0, slice(2, 4096, 2048))).allocatedBytes, 8192, 'overwrite');
          assert.equal((await write(svc, f.ino, 0, slice(3, 8192, 100))).allocatedBytes, 8292, 'append');
          // One byte far past the end: the size jumps, the allocation grows by one byte.
          const sparse = await write(svc, f.ino, 5, slice(4, 777, 1));
          assert.equal(sparse.sizeBytes, 5 * CHUNK + 778);
          assert.equal(sparse.allocatedBytes, 8293);
          assert.deepEqual(await usage(svc, f.ino), { allocated: 8293, used: aligned(8293) });
          // Several slices in one commit, over two chunks, overlapping each other.
          const many = await svc.commitWrites(
            root,
            f.ino,
            [
              { chunkIndex: 1, slice: slice(5, 0, 1000) },
              { chunkIndex: 1, slice: slice(6, 500, 1000) },
              { chunkIndex: 0, slice: slice(7, 0, 10_000) },
            ],
            0,
            { sec: 1, nsec: 0 },
          );
          assert.equal(many.allocatedBytes, 10_000 + 1500 + 1);
        },
        smallChunks,
      ));

    it('punch hole and zero range take their bytes out; zero range past the end adds size, not data', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, CHUNK));
          await write(svc, f.ino, 1, slice(2, 0, CHUNK));
          const punched = await svc.fallocate(
            root,
            f.ino,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            4096,
            4096,
          );
          assert.equal(punched.allocatedBytes, 2 * CHUNK - 4096);
          // Punching the hole again changes nothing; a whole chunk punched drops it.
          await svc.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096);
          const whole = await svc.fallocate(
            root,
            f.ino,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            CHUNK,
            CHUNK,
          );
          assert.equal(whole.allocatedBytes, CHUNK - 4096);
          const zeroed = await svc.fallocate(root, f.ino, FALLOC_FL_ZERO_RANGE, CHUNK - 1000, 1000);
          assert.equal(zeroed.allocatedBytes, CHUNK - 5096);
          const grown = await svc.fallocate(root, f.ino, FALLOC_FL_ZERO_RANGE, 3 * CHUNK, 5000);
          assert.equal(grown.sizeBytes, 3 * CHUNK + 5000);
          assert.equal(grown.allocatedBytes, CHUNK - 5096);
          // Plain allocation reserves nothing in an object store: size only.
          const plain = await svc.fallocate(root, f.ino, 0, 0, 5 * CHUNK);
          assert.equal(plain.allocatedBytes, CHUNK - 5096);
          // A write into a punched hole fills it again.
          assert.equal((await write(svc, f.ino, 0, slice(3, 0, 8192))).allocatedBytes, CHUNK - 1000);
          assert.deepEqual(await usage(svc, f.ino), { allocated: CHUNK - 1000, used: aligned(CHUNK - 1000) });
        },
        smallChunks,
      ));

    it('truncate down drops what lies past the size; truncate up adds a hole, not data', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          for (let i = 0; i < 3; i++) await write(svc, f.ino, i, slice(i + 1, 0, CHUNK));
          assert.equal((await svc.getattr(f.ino)).allocatedBytes, 3 * CHUNK);
          const down = await svc.setattr(root, f.ino, { sizeBytes: CHUNK + 100 });
          assert.equal(down.allocatedBytes, CHUNK + 100);
          const up = await svc.setattr(root, f.ino, { sizeBytes: 10 * 1024 * CHUNK });
          assert.equal(up.sizeBytes, 10 * 1024 * CHUNK);
          assert.equal(up.allocatedBytes, CHUNK + 100);
          assert.deepEqual(await usage(svc, f.ino), { allocated: CHUNK + 100, used: aligned(CHUNK + 100) });
          // Data kept past the size (fallocate KEEP_SIZE cannot add any here, but a truncate
          // to 0 must leave nothing whatever the list held).
          assert.equal((await svc.setattr(root, f.ino, { sizeBytes: 0 })).allocatedBytes, 0);
          assert.equal((await svc.statfs()).usedBytes, 0);
        },
        smallChunks,
      ));

    it('copy_file_range by reference counts what it lays down, holes of the source as holes', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const src = await file(svc, ROOT, 'src');
          const dst = await file(svc, ROOT, 'dst');
          await write(svc, src.ino, 0, slice(1, 0, 8192));
          await write(svc, src.ino, 0, slice(2, 16384, 8192));
          await write(svc, dst.ino, 1, slice(3, 0, CHUNK));
          // dst [CHUNK - 4096, CHUNK + 20480) becomes 8 KiB data, 8 KiB hole, 8 KiB data; the
          // hole lies over dst's own data in chunk 1.
          const r = await svc.copyFileRange(root, src.ino, 0, dst.ino, CHUNK - 4096, 24576);
          assert.equal(r.attr.allocatedBytes, CHUNK - 4096);
          assert.equal((await svc.getattr(src.ino)).allocatedBytes, 16384, 'the source is unchanged');
          // Copying the whole source to an empty file gives it the same allocation.
          const copy = await file(svc, ROOT, 'copy');
          const whole = await svc.copyFileRange(root, src.ino, 0, copy.ino, 0, 24576);
          assert.equal(whole.attr.allocatedBytes, 16384);
          assert.equal(
            (await svc.statfs()).usedBytes,
            aligned(16384) + aligned(CHUNK - 4096) + aligned(16384),
          );
        },
        smallChunks,
      ));

    it('compaction moves the count only when the merged list covers other bytes', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 8192));
          await svc.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2048, 2048);
          const before = await svc.getattr(f.ino);
          assert.equal(before.allocatedBytes, 6144);
          const ids = (await svc.readSlices(f.ino, 0, 0)).get(0)!.map((s) => s.id);
          // The same bytes in one new slice, the hole kept as a gap: nothing moves, not even ctime.
          const merged = [slice(9, 0, 2048), slice(9, 4096, 4096, 4096)].map((s) => ({
            ...s,
            sliceSizeBytes: 8192,
          }));
          assert.equal(await svc.replaceChunkSlices(f.ino, 0, ids, merged), true);
          const same = await svc.getattr(f.ino);
          assert.equal(same.allocatedBytes, 6144);
          assert.deepEqual(same.ctime, before.ctime);
          // A merge that writes the hole's zeros as data covers the whole range.
          assert.equal(
            await svc.replaceChunkSlices(f.ino, 0, [asSliceId(9), asSliceId(9)], [slice(10, 0, 8192)]),
            true,
          );
          assert.deepEqual(await usage(svc, f.ino), { allocated: 8192, used: 8192 });
        },
        smallChunks,
      ));

    it('hard links share one count; the volume gives it back when the last name goes', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 5000));
          const other = await file(svc, ROOT, 'other');
          await write(svc, other.ino, 0, slice(2, 0, 100));
          const linked = await svc.link(root, f.ino, ROOT, 'g');
          assert.equal(linked.allocatedBytes, 5000);
          assert.equal((await svc.statfs()).usedBytes, 8192 + 4096, 'a link adds no usage');
          await svc.unlink(root, ROOT, 'f');
          assert.equal((await svc.getattr(f.ino)).allocatedBytes, 5000);
          assert.equal((await svc.statfs()).usedBytes, 8192 + 4096);
          await svc.unlink(root, ROOT, 'g');
          assert.equal((await svc.statfs()).usedBytes, 4096);
          await svc.unlink(root, ROOT, 'other');
          assert.equal((await svc.statfs()).usedBytes, 0);
        },
        smallChunks,
      ));

    it('as-of getattr answers the allocation the file had then', () =>
      withVolume(
        fx,
        async ({ svc, clock }) => {
          const f = await file(svc, ROOT, 'f');
          await write(svc, f.ino, 0, slice(1, 0, 65536));
          clock.advanceMs(1000);
          const t1 = clock.nowUs();
          clock.advanceMs(1000);
          await svc.fallocate(root, f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 32768);
          clock.advanceMs(1000);
          const t2 = clock.nowUs();
          clock.advanceMs(1000);
          await svc.setattr(root, f.ino, { sizeBytes: 0 });
          assert.equal((await svc.getattr(f.ino, { asOfUs: t1 })).allocatedBytes, 65536);
          assert.equal((await svc.getattr(f.ino, { asOfUs: t2 })).allocatedBytes, 32768);
          assert.equal((await svc.getattr(f.ino)).allocatedBytes, 0);
        },
        smallChunks,
      ));

    it('random writes, holes, truncates and copies keep the count equal to what the chunks cover (seeded)', () =>
      withVolume(
        fx,
        async ({ svc }) => {
          const seed = Number(process.env.STRATA_TEST_SEED ?? 20261126);
          let state = seed >>> 0;
          const next = () => {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            return state / 4294967296;
          };
          const span = 3 * CHUNK;
          const at = () => Math.floor(next() * span);
          const files = [(await file(svc, ROOT, 'a')).ino, (await file(svc, ROOT, 'b')).ino];
          let id = 100;
          for (let step = 0; step < 120; step++) {
            const ino = files[Math.floor(next() * 2)];
            const other = files[0] === ino ? files[1] : files[0];
            const offset = at();
            const length = 1 + Math.floor(next() * (span - offset));
            const kind = Math.floor(next() * 6);
            const what = `seed ${seed} step ${step} kind ${kind} on ${ino} at ${offset}+${length}`;
            if (kind <= 1) {
              // A write, split at chunk boundaries as a mount commits it.
              const writes = [];
              for (let pos = offset; pos < offset + length;) {
                const chunkIndex = Math.floor(pos / CHUNK);
                const n = Math.min(offset + length - pos, (chunkIndex + 1) * CHUNK - pos);
                writes.push({ chunkIndex, slice: slice(id++, pos - chunkIndex * CHUNK, n) });
                pos += n;
              }
              await svc.commitWrites(root, ino, writes, offset + length, { sec: 1, nsec: 0 });
            } else if (kind === 2) {
              await svc.fallocate(root, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
            } else if (kind === 3) {
              await svc.fallocate(
                root,
                ino,
                FALLOC_FL_ZERO_RANGE | (next() < 0.5 ? FALLOC_FL_KEEP_SIZE : 0),
                offset,
                length,
              );
            } else if (kind === 4) {
              await svc.setattr(root, ino, { sizeBytes: offset });
            } else {
              await svc.copyFileRange(root, other, at(), ino, offset, length);
            }
            let used = 0;
            for (const f of files) {
              let expected = 0;
              for (const slices of (await svc.readSlices(f, 0, 1000)).values())
                expected += coveredBytes(slices);
              assert.equal((await svc.getattr(f)).allocatedBytes, expected, `${what}: inode ${f}`);
              used += aligned(expected);
            }
            assert.equal((await svc.statfs()).usedBytes, used, what);
          }
        },
        smallChunks,
      ));

    it('directories, symlinks and special files allocate nothing', () =>
      withVolume(fx, async ({ svc }) => {
        const d = await svc.mkdir(root, ROOT, 'd', 0o755, 0);
        const l = await svc.symlink(root, ROOT, 'l', 'a-target-of-some-length');
        const p = await svc.mknod(root, ROOT, 'p', 0o010644, 0, 0);
        for (const a of [d, l, p]) assert.equal(a.allocatedBytes, 0);
      }));
  });
}
