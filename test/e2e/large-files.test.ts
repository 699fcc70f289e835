import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, isLongProfile, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// Big and sparse files, and concurrent writers, on one embedded volume.
const root = tempDir('large');
const mnt = join(root, 'mnt');
let up: StrataProcess | undefined;

before(async () => {
  up = await startUp(join(root, 'data'), mnt);
});

after(async () => {
  await cleanup([up], [mnt], [root]);
});

test('a large file written sequentially reads back with the same sha256', () => {
  // 2 GiB in the long profile (the figure); 512 MiB keeps the default run short.
  const mib = isLongProfile ? 2048 : 512;
  const file = join(mnt, 'big.bin');
  // A reproducible stream, checksummed on its way in (tee) and again after dropping caches.
  const expected = sh(
    `set +o pipefail; yes 'StrataFS large file line with some entropy 0123456789abcdef' | head -c ${mib}M | tee ${file} | sha256sum`,
  ).split(' ')[0];
  assert.equal(statSync(file).size, mib * 1024 * 1024);
  sh(`echo 3 > /proc/sys/vm/drop_caches`);
  const actual = sh(`sha256sum ${file}`).split(' ')[0];
  assert.equal(actual, expected);
});

test('a sparse file with a hole past 4 GiB reads zeros in the hole and data at both ends', () => {
  const file = join(mnt, 'sparse.bin');
  sh(
    `printf head > ${file} && printf tail | dd of=${file} bs=1 seek=$((5 * 1024 * 1024 * 1024)) conv=notrunc status=none`,
  );
  assert.equal(statSync(file).size, 5 * 1024 ** 3 + 4);
  assert.equal(sh(`head -c 4 ${file}`), 'head');
  assert.equal(sh(`tail -c 4 ${file}`), 'tail');
  // Reads spread over the hole, including across the 4 GiB boundary, are all zeros.
  for (const offsetMiB of [1, 1000, 4095, 4096, 4097, 5119]) {
    const bytes = sh(`dd if=${file} bs=1M skip=${offsetMiB} count=1 status=none | tr -d '\\0' | wc -c`);
    assert.equal(bytes.trim(), '0', `non-zero bytes in the hole at ${offsetMiB} MiB`);
  }
  sh(`truncate -s 4100M ${file}`);
  assert.equal(statSync(file).size, 4100 * 1024 ** 2);
  assert.equal(sh(`head -c 4 ${file}`), 'head');
});

test('8 concurrent writers on distinct files each get their own bytes back', () => {
  const mib = isLongProfile ? 128 : 16;
  sh(`mkdir -p ${mnt}/conc ${root}/ref`);
  // Each writer's content depends on its index, so a mix-up between files shows in the checksum.
  sh(
    `for i in $(seq 1 8); do (set +o pipefail; yes "writer $i" | head -c ${mib}M > ${mnt}/conc/w$i) & done; wait`,
  );
  for (let i = 1; i <= 8; i++) {
    const expected = sh(`set +o pipefail; yes "writer ${i}" | head -c ${mib}M | sha256sum`).split(' ')[0];
    assert.equal(sh(`sha256sum ${mnt}/conc/w${i}`).split(' ')[0], expected, `file w${i}`);
  }
});
