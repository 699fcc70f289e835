// Object-store faults under a mount: the store fails requests and cuts read
// bodies short at a set rate; applications must see neither errors nor
// corruption (the retry policy absorbs them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fillPattern } from './crash.js';
import { runDifferential } from './differential.js';
import { startFaultyMount, type FaultCounts, type FaultyMount } from './faults.js';
import { STRATA_KNOWN, strataUnavailable } from './strata-mount.js';
import { longProfile, mountTmpfs, type TempMount } from './tmpfs.js';

const OPS = longProfile() ? 50_000 : 2_000;
const BIG_FILES = longProfile() ? 20 : 5;
const SEED = Number(process.env.STRATA_REL_SEED ?? 0xfa17);
const RATE = 0.1;

describe('object-store faults under a mount', { skip: strataUnavailable() }, () => {
  let mount: FaultyMount | undefined;
  let reference: TempMount | undefined;
  let faults: FaultCounts | undefined;
  before(async () => {
    reference = mountTmpfs('ref');
    mount = await startFaultyMount({ seed: SEED, errorRate: RATE, truncateRate: RATE });
  });
  after(async () => {
    faults = await mount?.stop();
    reference?.dispose();
    // Checked here because the counts only come out when the mount stops.
    assert.ok(
      faults && faults.errors + faults.truncated > 0,
      `no faults were injected: ${JSON.stringify(faults)}`,
    );
  });

  test('random operations behave as on tmpfs while the store fails 10% of requests', async () => {
    assert.ok(mount && reference);
    const result = await runDifferential({
      targetRoot: mount.mountpoint,
      referenceRoot: reference.path,
      seed: SEED,
      opCount: OPS,
      largeOffsets: true,
      ...STRATA_KNOWN,
    });
    assert.equal(result.failure, undefined, result.failure?.script);
  });

  test('multi-block files written with fsync read back intact, uncached, twice', () => {
    assert.ok(mount);
    const sums: string[] = [];
    for (let i = 0; i < BIG_FILES; i++) {
      const data = fillPattern(8 * 1024 * 1024 + i * 1000, SEED + i);
      const fd = openSync(join(mount.mountpoint, `big${i}`), 'w');
      try {
        writeSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      sums.push(createHash('sha256').update(data).digest('hex'));
    }
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < BIG_FILES; i++) {
        // O_DIRECT: past the kernel's page cache, so reads reach the data path and the store.
        const path = join(mount.mountpoint, `big${i}`);
        const out = execFileSync('sh', ['-c', `dd if="${path}" iflag=direct bs=1M status=none | sha256sum`], {
          encoding: 'utf8',
        });
        assert.equal(out.split(' ')[0], sums[i], `big${i} differs on read ${round + 1}`);
      }
    }
  });
});
