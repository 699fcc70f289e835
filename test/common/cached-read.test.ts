import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadNativeAddon, nativeAddonPath, readIfCached } from '../../src/common/index.js';
import { MAX_CACHED_READ_BYTES } from '../../src/common/cached-read.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-cached-read-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Drops the file's pages from the page cache (posix_fadvise DONTNEED; Node has no call for it). */
function dropFromPageCache(path: string): void {
  const result = spawnSync(
    'python3',
    [
      '-c',
      'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)',
      path,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(result.status, 0, result.stderr);
}

describe('readIfCached (native/cachedread)', () => {
  it('is built', () => {
    assert.ok(
      loadNativeAddon('cachedread'),
      `${nativeAddonPath('cachedread')} is missing: run npm run build`,
    );
  });

  it('reads what the page cache holds, nothing once it was dropped, and stops at the end of the file', () => {
    const path = join(dir, 'file');
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 255;
    writeFileSync(path, data);
    const fd = openSync(path, 'r');
    try {
      const part = Buffer.alloc(64 * 1024);
      assert.equal(readIfCached(fd, part, 4096), part.length, 'just written: cached');
      assert.ok(part.equals(data.subarray(4096, 4096 + part.length)));
      assert.equal(readIfCached(fd, part, data.length - 100), 100, 'cut at the end of the file');
      assert.equal(readIfCached(fd, part, data.length + 10), 0, 'past the end');
      fsyncSync(fd);
      dropFromPageCache(path);
      assert.equal(readIfCached(fd, part, 4096), 0, 'dropped: nothing read, nothing waited for');
      assert.equal(readIfCached(fd, Buffer.alloc(0), 0), 0);
      readFileSync(path);
      assert.equal(readIfCached(fd, part, 0), part.length, 'cached again');
      assert.equal(
        readIfCached(fd, Buffer.alloc(MAX_CACHED_READ_BYTES + 1), 0),
        0,
        'too large: left to the pool',
      );
    } finally {
      closeSync(fd);
    }
  });

  it('reads nothing from a descriptor that is not open, leaving the error to the thread pool read', () => {
    assert.equal(readIfCached(1_000_000, Buffer.alloc(16), 0), 0);
  });
});
