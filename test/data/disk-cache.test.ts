import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DiskBlockCache } from '../../src/data/disk-cache.js';

const BODY_BYTES = 64 * 1024;
const CAPACITY_BYTES = 4 * BODY_BYTES;

/** Bytes of every file under `dir`, as the disk sees them (what the limit is about). */
function filesBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

test('concurrent stores and background puts keep the disk cache within its size limit', async () => {
  const dir = mkdtempSync('/tmp/strata-data-diskcache-');
  const cache = new DiskBlockCache(join(dir, 'cache'), CAPACITY_BYTES);
  try {
    // Whole-file fills store many blocks at once: each used to make room for itself alone.
    const stored = await Promise.all(
      Array.from({ length: 12 }, (_, i) => cache.store(`s/${i}`, Buffer.alloc(BODY_BYTES, i))),
    );
    assert.ok(stored.every(Boolean), 'each body fits the cache on its own and is stored');
    assert.ok(
      cache.sizeBytes <= CAPACITY_BYTES,
      `index holds ${cache.sizeBytes} bytes, limit ${CAPACITY_BYTES}`,
    );
    assert.ok(
      filesBytes(join(dir, 'cache')) <= CAPACITY_BYTES,
      `${filesBytes(join(dir, 'cache'))} bytes on disk`,
    );
    // Reads fill the cache in the background, up to 8 writes at a time.
    for (let i = 0; i < 8; i++) cache.put(`p/${i}`, Buffer.alloc(BODY_BYTES, 100 + i));
    await cache.drain();
    assert.ok(cache.sizeBytes <= CAPACITY_BYTES, `index holds ${cache.sizeBytes} bytes after puts`);
    assert.ok(
      filesBytes(join(dir, 'cache')) <= CAPACITY_BYTES,
      `${filesBytes(join(dir, 'cache'))} bytes on disk after puts`,
    );
    // What is kept reads back whole.
    let kept = 0;
    for (let i = 0; i < 8; i++) {
      if (!cache.has(`p/${i}`)) continue;
      kept++;
      const body = await cache.get(`p/${i}`);
      assert.ok(body?.equals(Buffer.alloc(BODY_BYTES, 100 + i)), `p/${i} reads back`);
    }
    assert.ok(kept > 0, 'some of the bodies put are kept');
  } finally {
    await cache.drain();
    rmSync(dir, { recursive: true, force: true });
  }
});
