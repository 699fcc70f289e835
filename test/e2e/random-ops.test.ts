import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { cleanup, isLongProfile, startUp, tempDir, type StrataProcess } from './harness.js';

// A seeded random sequence of writes, reads, truncates, fsyncs and reopens, applied to the
// mount and to a local directory side by side: every read and the final contents must agree.
const root = tempDir('random');
const mnt = join(root, 'mnt');
const local = join(root, 'local');
let up: StrataProcess | undefined;

before(async () => {
  mkdirSync(local);
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a random read/write/truncate sequence matches the same sequence on a local directory', () => {
  const seed = Number(process.env.STRATA_TEST_SEED ?? 20261125);
  const ops = Number(process.env.STRATA_TEST_OPS ?? (isLongProfile ? 100_000 : 4_000));
  console.log(`random ops: seed ${seed}, ${ops} operations (rerun with STRATA_TEST_SEED/STRATA_TEST_OPS)`);
  const random = rng(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const files = 6;
  // Spans two 64 MiB chunks for some files so chunk boundaries are crossed.
  const spanBytes = (i: number): number => (i === 0 ? 70 * 1024 * 1024 : 3 * 1024 * 1024);
  const fds: { mnt: number; local: number }[] = [];
  const openBoth = (i: number): { mnt: number; local: number } => ({
    mnt: openSync(join(mnt, `f${i}`), 'r+'),
    local: openSync(join(local, `f${i}`), 'r+'),
  });
  for (let i = 0; i < files; i++) {
    closeSync(openSync(join(mnt, `f${i}`), 'w'));
    closeSync(openSync(join(local, `f${i}`), 'w'));
    fds.push(openBoth(i));
  }
  const scratchA = Buffer.alloc(256 * 1024);
  const scratchB = Buffer.alloc(256 * 1024);
  try {
    for (let op = 0; op < ops; op++) {
      const i = int(files);
      const fd = fds[i];
      const kind = random();
      const where = `op ${op} (seed ${seed}) on f${i}`;
      if (kind < 0.45) {
        const length = 1 + int(random() < 0.8 ? 8192 : 200_000);
        const offset = int(spanBytes(i));
        const data = Buffer.alloc(length, (op % 251) + 1);
        // Stamp the op number somewhere in it, so misplaced bytes show which write they came from.
        if (length >= 4) data.writeUInt32LE(op, int(length - 3));
        assert.equal(writeSync(fd.mnt, data, 0, length, offset), length, where);
        writeSync(fd.local, data, 0, length, offset);
      } else if (kind < 0.85) {
        const length = 1 + int(random() < 0.8 ? 8192 : scratchA.length - 1);
        const offset = int(spanBytes(i) + 100_000);
        const a = readSync(fd.mnt, scratchA, 0, length, offset);
        const b = readSync(fd.local, scratchB, 0, length, offset);
        assert.equal(a, b, `${where}: read length at ${offset}`);
        assert.ok(scratchA.subarray(0, a).equals(scratchB.subarray(0, b)), `${where}: bytes at ${offset}`);
      } else if (kind < 0.92) {
        const size = int(spanBytes(i));
        ftruncateSync(fd.mnt, size);
        ftruncateSync(fd.local, size);
      } else if (kind < 0.96) {
        fsyncSync(fd.mnt);
        assert.equal(fstatSync(fd.mnt).size, fstatSync(fd.local).size, `${where}: size after fsync`);
      } else {
        closeSync(fd.mnt);
        closeSync(fd.local);
        fds[i] = openBoth(i);
        assert.equal(fstatSync(fds[i].mnt).size, fstatSync(fds[i].local).size, `${where}: size after reopen`);
      }
    }
  } finally {
    for (const fd of fds) {
      closeSync(fd.mnt);
      closeSync(fd.local);
    }
  }
  for (let i = 0; i < files; i++) {
    const a = readFileSync(join(mnt, `f${i}`));
    const b = readFileSync(join(local, `f${i}`));
    assert.equal(a.length, b.length, `final size of f${i}`);
    assert.ok(a.equals(b), `final contents of f${i} (seed ${seed})`);
  }
});
