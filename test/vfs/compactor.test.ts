import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Ino } from '../../src/common/index.js';
import { createDataPath, type DataPath } from '../../src/data/index.js';
import { formatVolume, openMetaService, type MetaService } from '../../src/meta/index.js';
import '../../src/meta/engines/sqlite/register.js';
import { openObjectStore, type ObjectStore } from '../../src/object/index.js';
import { Compactor } from '../../src/vfs/compactor.js';

// The compactor over the real metadata service (SQLite) and data path (file: store).
const dir = mkdtempSync('/tmp/strata-vfs-compactor-');
let meta: MetaService;
let store: ObjectStore;
let data: DataPath;
const THRESHOLD = 8;

before(async () => {
  const engineUrl = `sqlite:${join(dir, 'meta.db')}`;
  await formatVolume(engineUrl, {
    name: 'unit',
    storageUrl: `file:${join(dir, 'objects')}`,
    blockSizeBytes: 64 * 1024,
    chunkSizeBytes: 1024 * 1024,
  });
  meta = await openMetaService({ engineUrl });
  store = await openObjectStore(`file:${join(dir, 'objects')}`);
  const volume = await meta.volume();
  data = createDataPath({
    store,
    blockSizeBytes: volume.blockSizeBytes,
    chunkSizeBytes: volume.chunkSizeBytes,
    memoryBudgetBytes: 16 * 1024 * 1024,
    allocateSliceIds: (n: number) => meta.allocateSliceIds(n),
  });
});

after(async () => {
  await data?.close();
  await store?.close();
  await meta?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('commit counts of chunks written once stay bounded, while a chunk written often still reaches compaction', async () => {
  const compactor = new Compactor(meta, data, {
    attrTimeoutMs: 1000,
    entryTimeoutMs: 1000,
    lockRetryMaxMs: 20,
    heartbeatIntervalMs: 60_000,
    compactSlicesThreshold: THRESHOLD,
    mountpoint: dir,
    version: 'test',
    log: () => undefined,
  });
  try {
    // A mount that writes many files once each (and deletes them: the kernel's FORGET never
    // reaches the compactor) must not keep a count per file forever.
    let ino = 1_000_000;
    for (let i = 0; i < 20_000; i++) compactor.noteCommit(ino++ as Ino, 0);
    const bound = compactor.trackedChunks;
    assert.ok(bound < 20_000, `${bound} chunk counts kept after 20,000 single-commit files`);
    // A chunk committed again and again between a thousand others keeps its count...
    const hot = 7 as Ino;
    for (let n = 0; n < THRESHOLD - 1; n++) {
      compactor.noteCommit(hot, 0);
      for (let i = 0; i < 1000; i++) compactor.noteCommit(ino++ as Ino, 0);
    }
    assert.equal(compactor.trackedChunks, bound);
    // ...so its next commit queues it for compaction and its count goes.
    compactor.noteCommit(hot, 0);
    assert.equal(
      compactor.trackedChunks,
      bound - 1,
      'the often-written chunk was queued, not counted afresh',
    );
  } finally {
    await compactor.stop();
  }
});
