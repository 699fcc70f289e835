// Object GC through a real `strata up` mount and its file object store: with history off the
// background GC gives the space of deleted, truncated and copied-then-deleted files back
// (du of the object directory drops), data still referenced stays readable, a kill -9 in the
// middle of a pass loses nothing referenced and the next run finishes; with history on,
// nothing of a deleted file goes. `strata fsck` is clean after each.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openEngine } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore } from '../../src/object/index.js';
import { fsck } from '../../src/ops/index.js';
import { startStrata, strataUnavailable, type StrataMount } from '../reliability/strata-mount.js';
import { storedObjects, waitUntil } from './harness.js';

const MiB = 1024 * 1024;

/** Objects under the volume's store and their bytes (what du counts, without directories). */
const objectUsage = (dataDir: string): { objects: number; bytes: number } =>
  storedObjects(join(dataDir, 'objects'));

function duKiB(dataDir: string): number {
  const out = spawnSync('du', ['-sk', join(dataDir, 'objects')], { encoding: 'utf8' });
  return Number(out.stdout.split('\t')[0]);
}

async function fsckClean(dataDir: string): Promise<void> {
  const engine = await openEngine(`sqlite:${join(dataDir, 'meta.db')}`);
  const store = await openObjectStore(`file:${join(dataDir, 'objects')}`, { retry: false });
  try {
    const report = await fsck({ engine, store });
    assert.deepEqual(report.problems, [], 'fsck finds no problem (every referenced block exists)');
  } finally {
    await store.close();
    await engine.close();
  }
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function pattern(sizeBytes: number, seed: number): Buffer {
  const data = Buffer.alloc(sizeBytes);
  for (let i = 0; i + 4 <= sizeBytes; i += 4) data.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return data;
}

/** copy_file_range(2) by the kernel's own call: StrataFS copies by reference (shared slices). */
function copyFileRange(from: string, to: string): void {
  const out = spawnSync(
    'python3',
    [
      '-c',
      'import os,sys\n' +
        's=os.open(sys.argv[1],os.O_RDONLY); d=os.open(sys.argv[2],os.O_WRONLY|os.O_CREAT,0o644)\n' +
        'n=os.fstat(s).st_size\nwhile n>0:\n  k=os.copy_file_range(s,d,n)\n  assert k>0\n  n-=k\n' +
        'os.fsync(d); os.close(s); os.close(d)',
      from,
      to,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(out.status, 0, out.stderr);
}

describe('object GC through strata up', { skip: strataUnavailable() }, () => {
  let work: string;
  const savedEnv = { interval: process.env.STRATA_GC_INTERVAL, margin: process.env.STRATA_GC_SAFETY_MARGIN };
  /** Mounts started by the running test; stopped in its finally, even when it fails. */
  const mounts: StrataMount[] = [];
  const up = async (dataDir: string, mountpoint: string, args: string[]): Promise<StrataMount> => {
    const m = await startStrata({ dataDir, mountpoint, extraArgs: args });
    mounts.push(m);
    return m;
  };
  const stopAll = async (): Promise<void> => {
    for (const m of mounts.splice(0)) await m.stop();
  };

  before(() => {
    work = mkdtempSync('/tmp/strata-gc-e2e-');
    process.env.STRATA_GC_INTERVAL = '1s';
    process.env.STRATA_GC_SAFETY_MARGIN = '0s';
  });
  after(async () => {
    await stopAll();
    process.env.STRATA_GC_INTERVAL = savedEnv.interval;
    process.env.STRATA_GC_SAFETY_MARGIN = savedEnv.margin;
    if (savedEnv.interval === undefined) delete process.env.STRATA_GC_INTERVAL;
    if (savedEnv.margin === undefined) delete process.env.STRATA_GC_SAFETY_MARGIN;
    rmSync(work, { recursive: true, force: true });
  });

  test('with history off, deleted and truncated data is freed; copied data stays readable', async () => {
    const dataDir = join(work, 'off');
    try {
      const root = (await up(dataDir, join(work, 'mnt-off'), ['--retention', '0'])).mountpoint;
      const keep = pattern(3 * MiB, 1);
      writeFileSync(join(root, 'keep'), keep);
      const big = pattern(9 * MiB + 77, 2);
      writeFileSync(join(root, 'big'), big);
      writeFileSync(join(root, 'shared-src'), pattern(5 * MiB, 3));
      copyFileRange(join(root, 'shared-src'), join(root, 'shared-copy'));
      writeFileSync(join(root, 'trunc'), pattern(6 * MiB, 4));
      const full = objectUsage(dataDir);
      const fullDu = duKiB(dataDir);

      unlinkSync(join(root, 'big'));
      unlinkSync(join(root, 'shared-src'));
      truncateSync(join(root, 'trunc'), 0);
      // big: 3 blocks, trunc: 2 blocks (4 MiB blocks); the copy keeps the shared slice.
      await waitUntil(
        () => objectUsage(dataDir).objects === full.objects - 5,
        'the objects of big and trunc are deleted',
        30_000,
        200,
      );
      const freed = objectUsage(dataDir);
      assert.ok(full.bytes - freed.bytes >= big.length + 6 * MiB, `${full.bytes - freed.bytes} bytes freed`);
      assert.ok(duKiB(dataDir) < fullDu - 14 * 1024, `du ${fullDu} KiB -> ${duKiB(dataDir)} KiB`);
      assert.equal(sha(readFileSync(join(root, 'shared-copy'))), sha(pattern(5 * MiB, 3)));
      assert.equal(sha(readFileSync(join(root, 'keep'))), sha(keep));

      unlinkSync(join(root, 'shared-copy'));
      await waitUntil(
        () => objectUsage(dataDir).objects === freed.objects - 2,
        'the shared slice goes with its last file',
        30_000,
        200,
      );
    } finally {
      await stopAll();
    }
    await fsckClean(dataDir);
  });

  test('a kill -9 in the middle of a pass deletes nothing referenced; the next run finishes', async () => {
    const dataDir = join(work, 'crash');
    const mountpoint = join(work, 'mnt-crash');
    // Small blocks, and a slow pace (10 deletes a second): the pass is still running at the kill.
    const args = ['--retention', '0', '--block-size', '64K'];
    process.env.STRATA_GC_RATE = '10';
    try {
      const first = await up(dataDir, mountpoint, args);
      const keep = pattern(2 * MiB, 5);
      writeFileSync(join(mountpoint, 'keep'), keep);
      writeFileSync(join(mountpoint, 'doomed'), pattern(4 * MiB, 6)); // 64 objects
      const full = objectUsage(dataDir);
      unlinkSync(join(mountpoint, 'doomed'));
      await waitUntil(() => objectUsage(dataDir).objects < full.objects, 'the pass has started', 30_000, 200);
      assert.ok(objectUsage(dataDir).objects > full.objects - 64, 'the kill lands mid-pass');
      first.child.kill('SIGKILL');
      await stopAll();
      await up(dataDir, mountpoint, args);
      await waitUntil(
        () => objectUsage(dataDir).objects === full.objects - 64,
        'the next run deletes the rest',
        30_000,
        200,
      );
      assert.equal(sha(readFileSync(join(mountpoint, 'keep'))), sha(keep));
    } finally {
      delete process.env.STRATA_GC_RATE;
      await stopAll();
    }
    await fsckClean(dataDir);
  });

  test('with history on, nothing of a deleted file goes', async () => {
    const dataDir = join(work, 'on');
    try {
      const root = (await up(dataDir, join(work, 'mnt-on'), ['--retention', '1h'])).mountpoint;
      writeFileSync(join(root, 'f'), pattern(5 * MiB, 7));
      const full = objectUsage(dataDir);
      unlinkSync(join(root, 'f'));
      await new Promise((resolve) => setTimeout(resolve, 3000)); // three passes
      assert.deepEqual(objectUsage(dataDir), full);
    } finally {
      await stopAll();
    }
    await fsckClean(dataDir);
  });
});
