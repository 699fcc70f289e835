import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, sh, startUp, tempDir, type StrataProcess } from './harness.js';

// `strata up --io-uring`: the embedded volume served over FUSE-over-io_uring. Mounting turns
// the fuse module parameter enable_uring on (machine-wide); this file puts back what it found.
const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring';
const kernelHasUring = existsSync(ENABLE_URING);
const uringWasEnabled = kernelHasUring && readFileSync(ENABLE_URING, 'utf8').trim() === 'Y';
const root = tempDir('io-uring');
const mnt = join(root, 'mnt');
const dataDir = join(root, 'data');
const procs: StrataProcess[] = [];

after(async () => {
  await cleanup(procs, [mnt], [root]);
  if (kernelHasUring && !uringWasEnabled) writeFileSync(ENABLE_URING, 'N');
});

test(
  'strata up --io-uring serves the volume over io_uring; what it wrote reads back over /dev/fuse after a restart',
  {
    skip: kernelHasUring
      ? false
      : 'this kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING, Linux 6.14+)',
  },
  async () => {
    const up = await startUp(dataDir, mnt, ['--io-uring']);
    procs.push(up);
    assert.match(up.output, /serving over io_uring/, up.output);
    // A tree through tar, a 20 MiB file through cp, renames and a removal: many request kinds.
    sh(`mkdir -p ${root}/src/a/b && head -c 20971520 /dev/urandom > ${root}/src/big`);
    sh(`for i in $(seq 1 200); do echo "file $i" > ${root}/src/a/b/f$i; done`);
    sh(`tar -C ${root}/src -cf - . | tar -C ${mnt} -xf -`);
    sh(`mv ${mnt}/a/b/f1 ${mnt}/a/b/renamed && rm ${mnt}/a/b/f2`);
    const expected = sh(
      `cd ${root}/src && mv a/b/f1 a/b/renamed && rm a/b/f2 && find . -type f | sort | xargs sha256sum`,
    );
    assert.equal(sh(`cd ${mnt} && find . -type f | sort | xargs sha256sum`), expected);
    assert.equal(await up.stop(), 0, up.output);
    assert.doesNotMatch(up.output, /BUG|failed unexpectedly/, up.output);

    const again = await startUp(dataDir, mnt);
    procs.push(again);
    assert.doesNotMatch(again.output, /io_uring/);
    assert.equal(sh(`cd ${mnt} && find . -type f | sort | xargs sha256sum`), expected);
  },
);
