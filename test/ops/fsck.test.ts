// strata fsck on a real volume: written through a `strata up` mount, checked
// with the volume stopped, then damaged on purpose (metadata and objects).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { openEngine, type Engine } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { fsck } from '../../src/ops/index.js';
import { startStrata, strataUnavailable } from '../reliability/strata-mount.js';

describe('strata fsck', { skip: strataUnavailable() }, () => {
  let work: string;
  let engine: Engine | undefined;
  let store: ObjectStore;

  before(async () => {
    work = mkdtempSync('/tmp/strata-rel-fsck-');
    const dataDir = join(work, 'data');
    const mount = await startStrata({ dataDir, mountpoint: join(work, 'mnt') });
    try {
      const root = mount.mountpoint;
      mkdirSync(join(root, 'd1/d2'), { recursive: true });
      writeFileSync(join(root, 'd1/small'), 'hello');
      writeFileSync(join(root, 'd1/d2/big'), Buffer.alloc(5 * 1024 * 1024 + 123, 7)); // two blocks
      linkSync(join(root, 'd1/small'), join(root, 'hardlink'));
      symlinkSync('d1/small', join(root, 'sym'));
      writeFileSync(join(root, 'gone'), 'x');
      unlinkSync(join(root, 'gone'));
    } finally {
      await mount.stop();
    }
    engine = await openEngine(`sqlite:${join(dataDir, 'meta.db')}`);
    store = await openObjectStore(`file:${join(dataDir, 'objects')}`, { retry: false });
  });
  after(async () => {
    await engine?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('a volume written through the mount is clean', async () => {
    assert.ok(engine);
    const report = await fsck({ engine, store });
    assert.deepEqual(report.problems, []);
    assert.equal(report.inodes, 6); // root, d1, d2, small (= hardlink), big, sym; nothing of "gone"
    assert.ok(report.blocksChecked >= 3, `${report.blocksChecked} blocks checked`);
  });

  test('a wrong link count and counter are reported, repaired, and then clean', async () => {
    assert.ok(engine);
    const small = await engine.read(async (tx) => {
      const d1 = await tx.lookup(1 as never, 'd1');
      assert.ok(d1);
      const entry = await tx.lookup(d1.ino, 'small');
      assert.ok(entry);
      return tx.getInode(entry.ino);
    });
    assert.ok(small);
    await engine.write(async (tx) => {
      await tx.putInode({ ...small, nlink: 5 });
      await tx.addCounter('inodes_used', 3);
    });
    const found = await fsck({ engine, store, skipObjects: true });
    assert.deepEqual(found.problems.map((p) => p.code).sort(), ['counter', 'link-count']);
    assert.match(found.problems.find((p) => p.code === 'link-count')?.message ?? '', /nlink 5 but 2/);
    const repaired = await fsck({ engine, store, repair: true, skipObjects: true });
    assert.ok(repaired.problems.every((p) => p.repaired));
    assert.deepEqual((await fsck({ engine, store })).problems, []);
  });

  test('allocated bytes that disagree with the chunks are reported with the used-bytes counter, and repaired', async () => {
    assert.ok(engine);
    const big = await engine.read(async (tx) => {
      const d1 = await tx.lookup(1 as never, 'd1');
      const d2 = d1 && (await tx.lookup(d1.ino, 'd2'));
      const entry = d2 && (await tx.lookup(d2.ino, 'big'));
      assert.ok(entry);
      return tx.getInode(entry.ino);
    });
    assert.ok(big);
    assert.equal(big.allocatedBytes, 5 * 1024 * 1024 + 123, 'the mount wrote every byte');
    await engine.write(async (tx) => {
      await tx.putInode({ ...big, allocatedBytes: 10 * 1024 * 1024 * 1024 });
      await tx.addCounter('used_bytes', 10 * 1024 * 1024 * 1024);
    });
    const found = await fsck({ engine, store, skipObjects: true });
    assert.deepEqual(found.problems.map((p) => p.code).sort(), ['allocated-bytes', 'counter']);
    assert.match(
      found.problems.find((p) => p.code === 'allocated-bytes')?.message ?? '',
      new RegExp(`records 10737418240 allocated bytes but its chunks cover ${5 * 1024 * 1024 + 123}`),
    );
    const repaired = await fsck({ engine, store, repair: true, skipObjects: true });
    assert.ok(repaired.problems.every((p) => p.repaired));
    assert.deepEqual((await fsck({ engine, store })).problems, []);
    assert.equal((await engine.read((tx) => tx.getInode(big.ino)))?.allocatedBytes, 5 * 1024 * 1024 + 123);
  });

  test('a block missing from the object store is reported, with no repair claimed', async () => {
    assert.ok(engine);
    const objects = join(work, 'data', 'objects');
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else files.push(join(dir, e.name));
      }
    };
    walk(objects);
    const victim = files.find((f) => f.includes('chunks/'));
    assert.ok(victim, `no block objects under ${objects}: ${files.join(', ')}`);
    rmSync(victim);
    const report = await fsck({ engine, store, repair: true });
    const missing = report.problems.filter((p) => p.code === 'missing-object');
    assert.equal(missing.length, 1, JSON.stringify(report.problems));
    assert.equal(missing[0].repaired, false);
    assert.match(missing[0].suggestion, /restore/);
  });
});
