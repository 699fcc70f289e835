import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSizeBytes, parseDurationMs, formatBytes, FsError, Errno } from '../../src/common/index.js';

test('sizes with binary and decimal suffixes parse to bytes', () => {
  assert.equal(parseSizeBytes('512M'), 512 * 1024 * 1024);
  assert.equal(parseSizeBytes('10G'), 10 * 1024 ** 3);
  assert.equal(parseSizeBytes('4KiB'), 4096);
  assert.equal(parseSizeBytes('1kb'), 1000);
  assert.equal(parseSizeBytes('1000'), 1000);
  assert.equal(parseSizeBytes('1.5K'), 1536);
});

test('a malformed size names the flag and says how to write one', () => {
  assert.throws(
    () => parseSizeBytes('ten gigs', '--cache-size'),
    /invalid --cache-size "ten gigs".*e\.g\. 512M/,
  );
  assert.throws(() => parseSizeBytes('5X'), /invalid size/);
});

test('durations parse to milliseconds, a bare number being seconds', () => {
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('7d'), 7 * 86_400_000);
  assert.equal(parseDurationMs('3'), 3000);
  assert.throws(() => parseDurationMs('soon'), /invalid duration/);
});

test('byte counts format for people', () => {
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(10), '10 B');
});

test('FsError carries its errno and symbolic code', () => {
  const error = new FsError(Errno.ENOENT, 'no entry "a" in directory 1');
  assert.equal(error.errno, Errno.ENOENT);
  assert.equal(error.code, 'ENOENT');
});
